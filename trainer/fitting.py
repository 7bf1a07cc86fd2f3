"""`trainer fit`: a seeded random split by item (never an ordered one), early stopping on a validation split, the
held-out residuals its prediction intervals rest on (trainer.intervals), and a predictor directory written at the
end."""

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_agent.errors import InputError
from trainer.dataset import Dataset
from trainer.encoding_cache import EncodingCache
from trainer.examples import Example, encode_examples, load_examples
from trainer.intervals import interval_record, should_cross_fit
from trainer.predictors import predictor_class
from trainer.predictors.base import FitHistory, Predictor, ProgressFn
from trainer.predictors.store import save_predictor

VAL_FRACTION = 0.1


@dataclass(frozen=True)
class FitResult:
    predictor: Predictor
    history: FitHistory
    train_items: List[str]
    val_items: List[str]
    unused_items: int
    intervals: Dict[str, Any]  # the config's "intervals" entry (trainer.intervals)


def split_items(item_ids: Sequence[str], train_size: Optional[int], seed: int) -> Tuple[List[str], List[str]]:
    """(fit, validation) item ids drawn at random for the seed; train_size counts both (default: 80 % of items)."""
    items = sorted(set(item_ids))
    order = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
    size = int(round(0.8 * len(items))) if train_size is None else train_size
    if size < 2 or size > len(items):
        raise InputError("--train-size {} is out of range: the devices have {} distinct items".format(size, len(items)))
    chosen = order[:size]
    val = max(1, int(round(VAL_FRACTION * size))) if size >= 10 else 0
    return chosen[val:], chosen[:val]


def fit(dataset: Dataset, devices: Sequence[str], kind: str, train_size: Optional[int], seed: int,
        hyper: Optional[Dict[str, object]], out_dir: Optional[Path], progress: Optional[ProgressFn] = None,
        encode_progress: Optional[Callable[[], None]] = None, vocabulary: Optional[Sequence[str]] = None,
        items: Optional[Sequence[str]] = None) -> FitResult:
    """Kinds with one head per device (multi_device) learn every device's ratio of an item at once; the others
    learn one device. `vocabulary` picks the input mode (default: the kind's ONNX-level one; a cell-level one from
    trainer.cell_encoding). `items`: learn from these item ids only (a benchmark's training set)."""
    examples = load_examples(dataset, devices)
    if items is not None:
        examples = [e for e in examples if e.item_id in set(items)]
    cls = predictor_class(kind)
    if not examples and not getattr(cls, "kernels_suffice", False):
        raise InputError("no valid measurements for device(s) {}".format(", ".join(devices)))
    # a kernel LUT of a device without whole-model measurements: the uncalibrated kernel sum
    train_ids, val_ids = split_items([e.item_id for e in examples], train_size, seed) if examples else ([], [])
    multi = getattr(cls, "multi_device", False)
    options = {"vocabulary": tuple(vocabulary)} if vocabulary else {}
    predictor = cls(dict(hyper or {}, heads=len(devices)) if multi else hyper, **options)
    predictor.prepare(dataset, devices)
    if len(devices) > 1 and not multi:
        raise InputError("predictor kind {!r} learns one device; give one --device".format(kind))
    cache = EncodingCache(dataset.encodings_dir, predictor.vocabulary)
    train_x, train_y = _item_matrix(examples, train_ids, devices, dataset, cache, encode_progress)
    val_x, val_y = _item_matrix(examples, val_ids, devices, dataset, cache, encode_progress)
    template = copy.deepcopy(predictor) if should_cross_fit(predictor, train_y) else None  # unfitted, to refit
    column = slice(None) if multi else 0
    history = predictor.fit(train_x, train_y[:, column], val_x, val_y[:, column], seed, progress)
    references = _references(examples, devices)
    intervals = interval_record(predictor, template, train_x, train_y, val_x, val_y, devices, references, seed)
    if out_dir is not None:
        save_predictor(predictor, out_dir, _training_record(references, devices, train_ids, val_ids, seed, history),
                       intervals)
    used = set(train_ids) | set(val_ids)
    return FitResult(predictor, history, train_ids, val_ids, len({e.item_id for e in examples} - used), intervals)


def _item_matrix(examples: Sequence[Example], item_ids: Sequence[str], devices: Sequence[str], dataset: Dataset,
                 cache: EncodingCache, encode_progress) -> Tuple[List, np.ndarray]:
    """(one encoding per item, ratios [items, devices] with NaN where a device did not measure the item)."""
    row = {item: i for i, item in enumerate(item_ids)}
    column = {device: j for j, device in enumerate(devices)}
    y = np.full((len(item_ids), len(devices)), np.nan)
    first: Dict[str, Example] = {}
    for example in examples:
        if example.item_id in row:
            y[row[example.item_id], column[example.device]] = example.ratio
            first.setdefault(example.item_id, example)
    return encode_examples([first[item] for item in item_ids], dataset, cache, encode_progress), y


def _references(examples: Sequence[Example], devices: Sequence[str]) -> Dict[str, float]:
    """Each training device's reference latency (a device without whole-model examples has none)."""
    return {device: next(e.reference_ms for e in examples if e.device == device)
            for device in devices if any(e.device == device for e in examples)}


def _training_record(reference: Dict[str, float], devices: Sequence[str], train_ids: List[str], val_ids: List[str],
                     seed: int, history: FitHistory) -> Dict[str, object]:
    return {"devices": list(devices), "reference_ms": reference, "item_ids": sorted(train_ids + val_ids),
            "validation_item_ids": sorted(val_ids), "seed": seed, "train_size": len(train_ids) + len(val_ids),
            "epochs": history.epochs, "best_epoch": history.best_epoch,
            "best_val_error": min(history.val_errors) if history.val_errors else None}
