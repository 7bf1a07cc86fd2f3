"""A new device from its reference and a few measured models: which K models to measure (`trainer calibration-set`),
and a predictor adapted to what was measured (`trainer adapt`). `trainer evaluate --shots K` scores the same two
steps, so it calls the same functions."""

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from edge_agent.errors import InputError
from trainer.dataset import Dataset
from trainer.encoding import GraphEncoding
from trainer.encoding_cache import EncodingCache
from trainer.examples import Example, encode_examples, load_examples, ratios
from trainer.intervals import with_adaptation
from trainer.predictors.base import Predictor
from trainer.predictors.heads import HeadsPredictor, choose_shots, shot_design
from trainer.predictors.store import CONFIG, WEIGHTS, save_predictor

MIN_ITEMS = 2
# Cross-validating the adaptation on its shots: leave-one-out for up to this many, this many folds above (adapting
# to all of a device's items could be hundreds of refits otherwise).
SHOT_FOLDS = 10


@dataclass(frozen=True)
class Adaptation:
    device: str
    reference_ms: float
    reference_item_id: str
    item_ids: List[str]  # the measured items the predictor was adapted to (the reference besides)
    available: int  # measured items of the device in the dataset
    shot_residuals: List[float]  # DevicePool.shot_residuals of those items


def chosen_shots(predictor: Predictor, encodings: Sequence[GraphEncoding],
                 reference_encodings: Sequence[GraphEncoding], k: int) -> np.ndarray:
    """Indices of the k items whose measurement pins down the adaptation best; the reference is measured anyway."""
    known = shot_design(predictor, reference_encodings) if len(reference_encodings) else None
    return choose_shots(shot_design(predictor, encodings), k, known,
                        criterion=getattr(predictor, "shot_criterion", "determinant"))


def adapt_predictor(predictor: Predictor, points: Sequence[Example], encodings: Sequence[GraphEncoding],
                    seed: int) -> None:
    """A ratio predictor adapts to the K samples and the reference (ratio 1 by definition; always measured); a
    cell-level mix of heads then refits with its per-op correction, counted from the reference. An absolute one (lut)
    adapts to the K samples' latencies only."""
    if predictor.target == "ratio":
        targets = ratios(points)
    else:
        keep = [i for i, e in enumerate(points) if not e.is_reference]
        points, encodings = [points[i] for i in keep], [encodings[i] for i in keep]
        targets = np.asarray([e.latency_ms for e in points], dtype=np.float64)
    if points:
        predictor.adapt(encodings, targets, seed)
    references = [encodings[i] for i, e in enumerate(points) if e.is_reference]
    if isinstance(predictor, HeadsPredictor) and references:
        predictor.correct(encodings, targets, references[0])


@dataclass(frozen=True)
class DevicePool:
    """A device's measured items that may adapt a predictor, and its reference measurement (none or one)."""

    items: List[Example]
    encodings: List[GraphEncoding]
    references: List[Example]
    reference_encodings: List[GraphEncoding]

    def choose(self, predictor: Predictor, k: int, among: Optional[Sequence[int]] = None) -> np.ndarray:
        """`chosen_shots` over all items, or over the `among` ones only (a candidate pool)."""
        among = np.arange(len(self.items)) if among is None else np.asarray(among, dtype=np.int64)
        return among[chosen_shots(predictor, [self.encodings[i] for i in among], self.reference_encodings, k)]

    def adapt(self, predictor: Predictor, picked: Sequence[int], seed: int) -> None:
        """Adapt to the picked items and the reference."""
        adapt_predictor(predictor, [self.items[i] for i in picked] + self.references,
                        [self.encodings[i] for i in picked] + self.reference_encodings, seed)

    def shot_residuals(self, predictor: Predictor, picked: Sequence[int], seed: int) -> List[float]:
        """|log p - log t| of each picked item, predicted by a copy of the predictor adapted to the other picked
        items (in seeded folds: leave-one-out up to SHOT_FOLDS items) and the reference: the adaptation's own error
        on items it did not see, which the device's prediction interval rests on (trainer.intervals)."""
        picked = list(picked)
        if not picked:
            return []
        folds = np.random.default_rng(seed).permutation(len(picked)) % min(len(picked), SHOT_FOLDS)
        residuals: List[float] = []
        for fold in range(min(len(picked), SHOT_FOLDS)):
            held = [i for i, f in zip(picked, folds) if f == fold]
            model = copy.deepcopy(predictor)
            self.adapt(model, [i for i, f in zip(picked, folds) if f != fold], seed)
            predicted = model.predict([self.encodings[i] for i in held])
            truth = [self.items[i].ratio if model.target == "ratio" else self.items[i].latency_ms for i in held]
            residuals += np.abs(np.log(np.maximum(predicted, 1e-12)) - np.log(truth)).tolist()
        return residuals


def device_pool(predictor: Predictor, dataset: Dataset, items: Sequence[Example], examples: Sequence[Example]
                ) -> DevicePool:
    """`items` encoded for the predictor, with the reference among the device's `examples`."""
    cache = EncodingCache(dataset.encodings_dir, predictor.vocabulary)
    references = [e for e in examples if e.is_reference][:1]
    return DevicePool(list(items), encode_examples(items, dataset, cache), references,
                      encode_examples(references, dataset, cache))


def calibration_specs(predictor: Predictor, space_name: str, k: int, candidates: int, seed: int,
                      progress: Optional[Callable[[], None]] = None) -> List[Dict[str, Any]]:
    """The k subnet specs, out of `candidates` sampled from the space with `seed`, that a new device should measure
    (besides the reference) to adapt the predictor: the ones `trainer evaluate --shot-selection chosen` would pick."""
    from kernels.spaces import get_space
    from trainer.predicting import encode_space_sample

    cache = EncodingCache(None, predictor.vocabulary)
    pool, encodings = encode_space_sample(cache, space_name, candidates, seed, progress)
    if not 1 <= k <= len(pool):
        raise InputError("--k {} is out of range: {} candidate subnet(s) of {}".format(k, len(pool), space_name))
    reference = cache.for_spec(get_space(space_name).reference_spec().to_dict())
    return [pool[i] for i in chosen_shots(predictor, encodings, [reference], k)]


def adapt_to_device(predictor: Predictor, dataset: Dataset, device: str, shots: Optional[int],
                    seed: int = 0) -> Adaptation:
    """Fit the predictor's few-shot adaptation to the device's measured items (all, or the `shots` of them
    `chosen_shots` prefers) and its reference, as `trainer evaluate --shots` does before scoring."""
    if predictor.target != "ratio":
        raise InputError("a {!r} predictor predicts its own device's absolute latency and cannot adapt to another "
                         "device; fit one on that device instead".format(predictor.kind))
    examples = load_examples(dataset, [device])
    pool = [e for e in examples if not e.is_reference]
    if not any(e.is_reference for e in examples):
        raise InputError("device {!r} has no measurement of the reference model to adapt to".format(device))
    if len(pool) < MIN_ITEMS:
        raise InputError("device {!r} has {} measured item(s) besides the reference; adapting needs at least {}"
                         .format(device, len(pool), MIN_ITEMS))
    predictor.bind_device(dataset, device)
    points = device_pool(predictor, dataset, pool, examples)
    picked = list(range(len(pool)))
    if shots is not None and shots < len(pool):
        picked = [int(i) for i in points.choose(predictor, shots)]
    points.adapt(predictor, picked, seed)
    reference = points.references[0]
    return Adaptation(device, reference.reference_ms, reference.item_id, sorted(pool[i].item_id for i in picked),
                      len(pool), points.shot_residuals(predictor, picked, seed))


def predictor_id(pred_dir: Path) -> str:
    """sha256 over the predictor's config and weights: names exactly the predictor an adapted one came from."""
    digest = hashlib.sha256()
    for name in (CONFIG, WEIGHTS):
        digest.update((Path(pred_dir) / name).read_bytes())
    return digest.hexdigest()


def save_adapted(predictor: Predictor, config: Dict[str, Any], source_dir: Path, adaptation: Adaptation,
                 seed: int, out_dir: Path) -> None:
    """The source's training record, with the adapted device's reference as the one `trainer predict` defaults to
    (the source's references move under "adaptation")."""
    if Path(out_dir).resolve() == Path(source_dir).resolve():
        raise InputError("--out {} is the source predictor; write the adapted one elsewhere".format(out_dir))
    training = dict(config.get("training", {}))
    record = {"device": adaptation.device, "reference_ms": adaptation.reference_ms,
              "reference_item_id": adaptation.reference_item_id, "item_ids": adaptation.item_ids,
              "available_items": adaptation.available, "seed": seed, "source_predictor": str(source_dir),
              "source_predictor_id": predictor_id(source_dir),
              "source_reference_ms": training.get("reference_ms", {})}
    training.update(reference_ms={adaptation.device: adaptation.reference_ms}, adaptation=record)
    save_predictor(predictor, out_dir, training,
                   with_adaptation(config.get("intervals"), adaptation.device, adaptation.shot_residuals))
