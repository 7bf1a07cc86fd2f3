"""Adaptive kernel sampling (nn-Meter): start from the prior plus uniform coverage, fit a regressor (the LUT's
roofline, with a bagged forest of trees on its residual: the LUT's own trees, lut.forest, are fitted on the
workstation and give no out-of-bag errors), take each measured config's out-of-bag error, and sample near the configs
predicted worse than the threshold (channels x[0.5, 1.2), other dims kept), most of each batch near the worst.

The loop only sees `measure(kernel_type, configs) -> latencies_ns`, so it runs the same on the board (where a
resumed run answers already-measured configs from the bundle) and on a synthetic cost function in tests.
scikit-learn (the `agent-sampling` extra) gives a faster random forest for the out-of-bag errors; without it the
numpy forest of edge_agent.kernelprof.regressor gives the same kind of estimate.
"""

import json
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_agent.kernelprof import regressor
from edge_agent.kernelprof.space import cost, draw, sample_near, sample_prior, sample_uniform

Measure = Callable[[str, List[Dict[str, object]]], List[float]]
MIN_POINTS = 5


@dataclass
class RoundReport:
    round: int
    measured: int
    accuracy: float  # share of measured configs whose cross-validated error is within the threshold
    new: int


@dataclass
class SamplingState:
    kernel_type: str
    configs: List[Dict[str, object]] = field(default_factory=list)
    latencies_ns: List[float] = field(default_factory=list)
    rounds: List[RoundReport] = field(default_factory=list)

    def add(self, configs: Sequence[Dict[str, object]], latencies: Sequence[float]) -> None:
        for config, latency in zip(configs, latencies):
            if latency is not None and math.isfinite(latency) and latency > 0:
                self.configs.append(dict(config))
                self.latencies_ns.append(float(latency))

    def keys(self) -> set:
        return {json.dumps(c, sort_keys=True) for c in self.configs}

    def predict(self, configs: Sequence[Dict[str, object]]) -> np.ndarray:
        """ns for other configs by the board's regressor fitted on the measured ones (held-out checks of a sampling)."""
        x, flops, nbytes = _design(self.kernel_type, self.configs + list(configs))
        n = len(self.configs)
        model = regressor.fit(x[:n], np.asarray(self.latencies_ns), flops[:n], nbytes[:n],
                              calls=regressor.group_calls(self.configs))
        return regressor.predict(model, x[n:], flops[n:], nbytes[n:], regressor.group_calls(configs))


def _design(kernel_type: str, configs: Sequence[Dict[str, object]]):
    """(features, FLOPs, bytes) of the configs."""
    names = regressor.feature_names(configs)
    work = np.array([cost(kernel_type, c) for c in configs], dtype=np.float64).reshape(-1, 2)
    return np.stack([regressor.features(c, f, b, names) for c, (f, b) in zip(configs, work)]), work[:, 0], work[:, 1]


def cv_errors(kernel_type: str, configs: Sequence[Dict[str, object]], latencies: Sequence[float],
              seed: int = 0, use_sklearn: Optional[bool] = None) -> np.ndarray:
    """|predicted - measured| / measured for every config, each predicted by the trees whose bootstrap left it out
    (inf where every tree drew it). The model: the LUT's roofline plus bagged trees on its log residual."""
    y = np.asarray(latencies, dtype=np.float64)
    if len(y) < MIN_POINTS:
        return np.full(len(y), np.inf)
    x, flops, nbytes = _design(kernel_type, configs)
    if use_sklearn is None:
        use_sklearn = _sklearn_available()
    calls = regressor.group_calls(configs)
    if not use_sklearn:
        errors = regressor.fit(x, y, flops, nbytes, seed, calls)["oob"]
        return np.where(np.isfinite(errors), errors, np.inf)
    from sklearn.ensemble import RandomForestRegressor

    roof = regressor.roofline(flops, nbytes, y, calls)
    residual = np.log(y) - np.log(regressor.roofline_ns(roof, flops, nbytes, calls))
    forest = RandomForestRegressor(n_estimators=100, oob_score=True, random_state=seed, max_features=None,
                                   min_samples_leaf=regressor.MIN_LEAF)
    forest.fit(x, residual)
    return np.abs(np.expm1(forest.oob_prediction_ - residual))


def _sklearn_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


def initial_configs(kernel_type: str, n: int, seed: int) -> List[Dict[str, object]]:
    """Half from the prior (real models' layers), half uniform over the space."""
    rng = np.random.RandomState(seed)
    seen: set = set()
    return draw(kernel_type, n - n // 2, rng, sample_prior, seen) + draw(kernel_type, n // 2, rng, sample_uniform, seen)


def adaptive_batch(state: SamplingState, n: int, threshold: float, seed: int,
                   use_sklearn: Optional[bool] = None) -> Tuple[float, List[Dict[str, object]]]:
    """(current accuracy, up to n new configs near the worst-predicted ones)."""
    errors = cv_errors(state.kernel_type, state.configs, state.latencies_ns, seed, use_sklearn)
    accuracy = float(np.mean(errors <= threshold)) if len(errors) else 0.0
    bad = [state.configs[i] for i in np.argsort(-errors) if errors[i] > threshold]
    rng = np.random.RandomState(seed + 7919 * len(state.configs))
    seen = state.keys()
    near = draw(state.kernel_type, n - n // 2, rng, sample_near, seen, base=bad) if bad else []
    # The rest keeps exploring: a regressor fitted only where it was wrong drifts everywhere else. With nothing over
    # the threshold the whole batch explores (the caller stops at its target accuracy): stopping there instead once
    # ended a synthetic run at 30 of its 120 measurements, with a cliff its first configs had not revealed.
    return accuracy, near + draw(state.kernel_type, n - len(near), rng, sample_uniform, seen)


def run_sampling(kernel_type: str, measure: Measure, budget: int, initial: int, batch: int, seed: int,
                 threshold: float = 0.10, target_accuracy: float = 0.95, adaptive: bool = True,
                 use_sklearn: Optional[bool] = None,
                 on_round: Optional[Callable[[RoundReport], None]] = None,
                 seeded: Sequence[Dict[str, object]] = ()) -> SamplingState:
    """Measure the `seeded` configs (a model space's own layers, on top of the budget), `initial` ones, then rounds
    of `batch` until the target accuracy or `budget` more measurements.
    With adaptive=False every round is uniform (the baseline adaptive sampling must beat)."""
    state = SamplingState(kernel_type)
    first = [dict(c) for c in seeded]
    taken = {json.dumps(c, sort_keys=True) for c in first}
    first += [c for c in initial_configs(kernel_type, min(initial, budget), seed)
              if json.dumps(c, sort_keys=True) not in taken]
    state.add(first, measure(kernel_type, first))
    limit = budget + len(seeded)
    round_index = 0
    while len(state.configs) < limit:
        round_index += 1
        n = min(batch, limit - len(state.configs))
        if adaptive:
            accuracy, fresh = adaptive_batch(state, n, threshold, seed + round_index, use_sklearn)
        else:
            accuracy = float(np.mean(cv_errors(kernel_type, state.configs, state.latencies_ns, seed, use_sklearn)
                                     <= threshold))
            fresh = draw(kernel_type, n, np.random.RandomState(seed + round_index), sample_uniform, state.keys())
        report = RoundReport(round_index, len(state.configs), accuracy, len(fresh))
        state.rounds.append(report)
        if on_round is not None:
            on_round(report)
        if accuracy >= target_accuracy or not fresh:
            break
        state.add(fresh, measure(kernel_type, fresh))
    return state
