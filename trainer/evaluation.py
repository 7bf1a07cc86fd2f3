"""`trainer evaluate`: score a predictor on one device's measurements it did not train on."""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from edge_agent.errors import InputError
from trainer.adapting import DevicePool, device_pool
from trainer.dataset import Dataset
from trainer.examples import load_examples
from trainer.intervals import (DEFAULT_COVERAGE, Interval, adapted_interval, check_coverage, coverage_report,
                               interval_for)
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
    # trainer.intervals.coverage_report and each item's bounds; None for a predictor without interval residuals
    interval: Optional[Dict[str, Any]] = None
    low_ms: Optional[np.ndarray] = None
    high_ms: Optional[np.ndarray] = None


MEASURED_ABSOLUTE = "absolute"
MEASURED_RATIO = "ratio"
SHOT_SELECTIONS = ("chosen", "random")


def evaluate(predictor: Predictor, config: Dict[str, Any], dataset: Dataset, device: str, shots: int = 0,
             seed: int = 0, measured: str = MEASURED_ABSOLUTE, shot_selection: str = "chosen",
             candidates: Optional[int] = None, coverage: float = DEFAULT_COVERAGE) -> Evaluation:
    """`measured="ratio"` scores against the drift-free measurement, the item's interleaved ratio times the device's
    reference latency, instead of the item's absolute median, which carries the machine's drift between items.
    `shot_selection="chosen"` measures the K items `choose_shots` picks from the predictor alone (what a user
    calibrating a new board would be asked to profile), among `candidates` items drawn with `seed` if given (as
    `trainer calibration-set --candidates` samples the space); "random" draws them with `seed`. Each prediction's
    interval at `coverage` is scored too: how many items it holds, against the nominal share."""
    if shot_selection not in SHOT_SELECTIONS:
        raise InputError("shot selection must be one of {}, not {!r}".format(", ".join(SHOT_SELECTIONS), shot_selection))
    check_coverage(coverage)
    training = config.get("training", {})
    seen = device in training.get("devices", [])
    examples = load_examples(dataset, [device])
    reference_ms = examples[0].reference_ms if examples else 0.0
    trained = set(training.get("item_ids", [])) if seen else set()
    # The reference is never scored: its ratio is 1 by definition and its latency is an input of the prediction.
    pool = [e for e in examples if e.item_id not in trained and not e.is_reference]
    if not seen:
        predictor.bind_device(dataset, device)
    if shots < 0 or shots >= len(pool):
        raise InputError("--shots {} leaves nothing to score ({} unseen items on {})".format(shots, len(pool), device))
    points = device_pool(predictor, dataset, pool, examples)
    picked = _pick_shots(predictor, points, shots, shot_selection, candidates, seed)
    shot_index = {int(i) for i in picked}
    scored_index = [i for i in range(len(pool)) if i not in shot_index]
    if seen and hasattr(predictor, "select_device"):
        predictor.select_device(training["devices"].index(device))
    elif not seen:
        points.adapt(predictor, picked, seed)
    scored = [pool[i] for i in scored_index]
    encodings = [points.encodings[i] for i in scored_index]
    predicted = predictor.predict(encodings)
    if predictor.target == "ratio":
        predicted = predicted * reference_ms
    if measured == MEASURED_RATIO:
        truth = np.asarray([e.ratio * reference_ms for e in scored], dtype=np.float64)
    else:
        truth = np.asarray([e.latency_ms for e in scored], dtype=np.float64)
    interval = _interval(predictor, config, device, seen, points, picked, seed, coverage)
    novel = interval.novel(encodings, predictor.vocabulary) if interval else None
    low, high = interval.bounds(predicted, novel) if interval else (None, None)
    return Evaluation(device, "training device (unseen items)" if seen else "new device", shots, reference_ms,
                      [e.item_id for e in scored], truth, predicted, score(truth, predicted),
                      coverage_report(interval, truth, predicted, novel) if interval else None, low, high)


def random_shots(pool_size: int, shots: int, seed: int) -> np.ndarray:
    """Indices of the `shots` items `--shot-selection random` draws with `seed` from a pool of a device's unseen
    items (benchmarks that pair other predictors with these shots draw them here too)."""
    return np.random.default_rng(seed).permutation(pool_size)[:shots]


def _pick_shots(predictor: Predictor, points: DevicePool, shots: int, shot_selection: str,
                candidates: Optional[int], seed: int) -> np.ndarray:
    """Indices of the pool items that adapt the predictor (see `evaluate`)."""
    if shot_selection == "random" or not shots:
        return random_shots(len(points.items), shots, seed)
    among = None
    if candidates is not None and candidates < len(points.items):
        among = np.random.default_rng(seed).choice(len(points.items), max(candidates, shots), replace=False)
    return points.choose(predictor, shots, among)


def _interval(predictor: Predictor, config: Dict[str, Any], device: str, seen: bool, points: DevicePool,
              picked: np.ndarray, seed: int, coverage: float) -> Optional[Interval]:
    """A training device's own residuals (pooled when too few); a new device's, the source devices' widened by
    the adaptation's own on its shots, as `trainer adapt` records them."""
    record = config.get("intervals")
    if not record:
        return None
    if seen:
        return interval_for(config, device, coverage)
    return adapted_interval(record, points.shot_residuals(predictor, [int(i) for i in picked], seed), coverage)


def metric_rows(metrics: Dict[str, float]) -> List[Tuple[str, str]]:
    """The metrics as (name, formatted value), in the order `trainer evaluate` and `trainer report` show them."""
    m = metrics
    return [("items scored", "{}".format(m["n"])), ("within ±10 %", "{:.1%}".format(m["within_10"])),
            ("within ±5 %", "{:.1%}".format(m["within_5"])), ("mean accuracy", "{:.2%}".format(m["mean_accuracy"])),
            ("mean gap (ms)", "{:.4g}".format(m["mean_gap_ms"])), ("RMSE (ms)", "{:.4g}".format(m["rmse_ms"])),
            ("MAPE (%)", "{:.2f}".format(m["mape_pct"])), ("Spearman ρ", "{:.4f}".format(m["spearman"])),
            ("Kendall τ", "{:.4f}".format(m["kendall"]))]


def interval_rows(report: Optional[Dict[str, Any]]) -> List[Tuple[str, str]]:
    """The interval's figures as (name, formatted value) for `trainer evaluate`: the nominal coverage beside the
    share of scored items inside their interval, and the width relative to the prediction."""
    if report is None:
        return [("interval", "none recorded (refit)")]
    nominal = "{:.1%}".format(report["coverage"])
    if report["mean_relative_width"] is None:
        return [("coverage, nominal", nominal), ("interval", "unbounded: too few held-out residuals")]
    return [("coverage, nominal", nominal), ("coverage, empirical", "{:.1%}".format(report["empirical_coverage"])),
            ("interval width", "{:.1%} of the prediction".format(report["mean_relative_width"])),
            ("interval from", "{} residuals ({})".format(report["residuals"], report["basis"]))]
