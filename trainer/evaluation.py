"""`trainer evaluate`: score a predictor on one device's measurements it did not train on."""

from dataclasses import dataclass
from typing import Any, Dict, List

import numpy as np

from edge_agent.errors import InputError
from trainer.dataset import Dataset
from trainer.encoding_cache import EncodingCache
from trainer.examples import encode_examples, load_examples, ratios
from trainer.metrics import score
from trainer.predictors.base import Predictor


@dataclass(frozen=True)
class Evaluation:
    device: str
    mode: str  # "training device (unseen items)" | "new device"
    shots: int
    reference_ms: float
    ids: List[str]
    measured_ms: np.ndarray
    predicted_ms: np.ndarray
    metrics: Dict[str, float]


MEASURED_ABSOLUTE = "absolute"
MEASURED_RATIO = "ratio"


def evaluate(predictor: Predictor, config: Dict[str, Any], dataset: Dataset, device: str, shots: int = 0,
             seed: int = 0, measured: str = MEASURED_ABSOLUTE) -> Evaluation:
    """`measured="ratio"` scores against the drift-free measurement, the item's interleaved ratio times the device's
    reference latency, instead of the item's absolute median, which carries the machine's drift between items."""
    training = config.get("training", {})
    seen = device in training.get("devices", [])
    examples = load_examples(dataset, [device])
    reference_ms = examples[0].reference_ms if examples else 0.0
    trained = set(training.get("item_ids", [])) if seen else set()
    # The reference is never scored: its ratio is 1 by definition and its latency is an input of the prediction.
    pool = [e for e in examples if e.item_id not in trained and not e.is_reference]
    if shots < 0 or shots >= len(pool):
        raise InputError("--shots {} leaves nothing to score ({} unseen items on {})".format(shots, len(pool), device))
    order = np.random.default_rng(seed).permutation(len(pool))
    shot_set = [pool[i] for i in order[:shots]]
    scored = [pool[i] for i in sorted(order[shots:])]
    cache = EncodingCache(dataset.encodings_dir, predictor.vocabulary)
    if seen and hasattr(predictor, "select_device"):
        predictor.select_device(training["devices"].index(device))
    elif not seen:
        _adapt(predictor, examples, shot_set, dataset, cache, seed)
    predicted = predictor.predict(encode_examples(scored, dataset, cache))
    if predictor.target == "ratio":
        predicted = predicted * reference_ms
    if measured == MEASURED_RATIO:
        truth = np.asarray([e.ratio * reference_ms for e in scored], dtype=np.float64)
    else:
        truth = np.asarray([e.latency_ms for e in scored], dtype=np.float64)
    return Evaluation(device, "training device (unseen items)" if seen else "new device", shots, reference_ms,
                      [e.item_id for e in scored], truth, predicted, score(truth, predicted))


def _adapt(predictor: Predictor, examples, shot_set, dataset: Dataset, cache: EncodingCache, seed: int) -> None:
    """A ratio predictor adapts to the K samples and the reference (ratio 1 by definition; always measured);
    an absolute one (lut) to the K samples' latencies."""
    points = list(shot_set)
    if predictor.target == "ratio":
        points += [e for e in examples if e.is_reference][:1]
        targets = ratios(points)
    else:
        targets = np.asarray([e.latency_ms for e in points], dtype=np.float64)
    if points:
        predictor.adapt(encode_examples(points, dataset, cache), targets, seed)
