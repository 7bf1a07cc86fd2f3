"""Training and scoring examples from dataset rows: one per (device, item), labelled with the ratio to the same
device's reference latency."""

import json
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from edge_agent.errors import InputError
from trainer.dataset import MODEL_KINDS, Dataset
from trainer.encoding import GraphEncoding
from trainer.encoding_cache import EncodingCache


EXAMPLE_COLUMNS = ["device", "item_id", "item_kind", "valid", "ratio", "latency_ms", "reference_latency_ms",
                   "reference_item_id", "model_sha256", "spec_json"]


@dataclass(frozen=True)
class Example:
    device: str
    item_id: str
    ratio: float
    latency_ms: float
    reference_ms: float  # the device's reference latency this example's ratio belongs to
    model_sha256: Optional[str]
    spec_json: Optional[str]
    is_reference: bool


def reference_latency_ms(rows: Sequence[Dict[str, object]], device: str) -> float:
    """The device's reference latency: the median of its standalone reference measurements, else of the references
    interleaved with its items."""
    own = [r["latency_ms"] for r in rows if r["device"] == device and r["valid"] and r["item_kind"] == "reference"]
    # Kernel rows are interleaved with the reference kernel, not the reference model: they say nothing here.
    interleaved = [r["reference_latency_ms"] for r in rows
                   if r["device"] == device and r["valid"] and r["reference_latency_ms"]
                   and r["item_kind"] in MODEL_KINDS]
    values = own or interleaved
    if not values:
        raise InputError("device {!r} has no valid reference measurement".format(device))
    return float(statistics.median(values))


def load_examples(dataset: Dataset, devices: Sequence[str]) -> List[Example]:
    """Valid whole-model examples of the devices; repeated measurements of an item are merged (median)."""
    known = set(dataset.devices())
    for device in devices:
        if device not in known:
            raise InputError("device {!r} is not in the dataset (known: {})".format(device, ", ".join(sorted(known))))
    examples = []
    for device in devices:
        # One device's rows at a time, only the columns used: memory follows the largest device, not the dataset.
        rows = dataset.rows([device], columns=EXAMPLE_COLUMNS)
        groups: Dict[str, List[Dict[str, object]]] = {}
        for row in rows:
            if row["valid"] and row["item_kind"] in MODEL_KINDS and row["ratio"]:
                groups.setdefault(str(row["item_id"]), []).append(row)
        reference_ms = reference_latency_ms(rows, device) if groups else 0.0  # a kernel-only device has none
        for item_id, group in sorted(groups.items()):
            examples.append(Example(
                device, item_id, float(statistics.median(r["ratio"] for r in group)),
                float(statistics.median(r["latency_ms"] for r in group)), reference_ms,
                group[0]["model_sha256"], group[0]["spec_json"],
                any(r["item_kind"] == "reference" or r["item_id"] == r["reference_item_id"] for r in group)))
    return examples


def encode_examples(examples: Sequence[Example], dataset: Dataset, cache: EncodingCache,
                    progress=None) -> List[GraphEncoding]:
    """Encodings of the examples' models (dataset model file by sha256, else rebuilt from the spec)."""
    encodings: Dict[str, GraphEncoding] = {}
    out = []
    for example in examples:
        key = example.model_sha256 or example.spec_json or example.item_id
        if key not in encodings:
            encodings[key] = _encode(example, dataset, cache)
        out.append(encodings[key])
        if progress is not None:
            progress()
    cache.flush()
    return out


def _encode(example: Example, dataset: Dataset, cache: EncodingCache) -> GraphEncoding:
    if cache.cell_space and example.spec_json:
        return cache.for_spec(json.loads(example.spec_json))
    if example.model_sha256:
        cached = cache.get(example.model_sha256)
        if cached is not None:
            return cached
        path = dataset.model_path(example.model_sha256)
        if path is not None:
            return cache.for_file(path)
    if example.spec_json:
        return cache.for_spec(json.loads(example.spec_json))
    raise InputError("item {} on {} has neither a stored model nor a spec to rebuild it".format(
        example.item_id, example.device))


def ratios(examples: Sequence[Example]) -> np.ndarray:
    return np.asarray([e.ratio for e in examples], dtype=np.float64)
