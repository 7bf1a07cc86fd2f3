"""Predictors with one output head per training device over a shared model (HELP's device-embedding idea done
cheaply): the heads are log ratios to each source device's reference; a device is a non-negative mix of them.

On a training device its own head is used. On a new device with only its reference measured, the heads are
averaged; with K measured samples, the mix is fitted to the samples and the reference (ratio 1) by non-negative
least squares in log space, shrunk toward the average by a strength chosen by leave-one-out on those same points —
so a few samples can change the ranking, not only rescale it. What limits it is what K noisy samples can pin down,
not the fitting method: richer fits (intercepts, signed or low-rank weights, subsets, refits) did no better.

What can pin it down is which archs are measured: `choose_shots` picks the K that make the regression on head
predictions well conditioned (greedy Bayesian D-optimal design) among the archs whose average prediction is not in the
outer DESIGN_TRIM on either side, where the extremes would fix the mix but fit the bulk of the space worse.

What no mix of the heads expresses a cell-level predictor partly gets from a per-op correction: log r += Σ_op v_op ·
(edges carrying op − the reference's), fitted together with the mix on the same K samples and reference, ridge-pulled
to zero by CORRECTION_PENALTY, chosen on the source devices, never on the targets (`HeadsPredictor.correct`).

The measurements behind each choice, on the public NB201 tables: docs/benchmarks-trainer.md."""

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from trainer.cell_encoding import CELL_PREFIX
from trainer.encoding import GraphEncoding
from trainer.predictors.base import FitHistory, Predictor, ProgressFn

SHRINK_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
DESIGN_PRIOR = 1.0
DESIGN_TRIM = 0.2
CORRECTION_PENALTY = 30.0
_NOT_OPS = ("input", "output", "dead")  # cell-vocabulary entries that mark nodes, not ops


def op_columns(vocabulary: Sequence[str]) -> List[int]:
    """Node-feature columns of a cell-level vocabulary's ops; no columns for an ONNX-level one, whose op one-hot counts
    ONNX nodes, not choices of the space."""
    if not (len(vocabulary) and vocabulary[0].startswith(CELL_PREFIX)):
        return []
    return [i for i, name in enumerate(vocabulary) if i and name not in _NOT_OPS]


def op_counts(encodings: Sequence[GraphEncoding], columns: Sequence[int]) -> np.ndarray:
    """[n, ops] how many cell edges carry each op (every other node has zeros in the op columns)."""
    return np.asarray([e.x[:, list(columns)].sum(axis=0) for e in encodings], dtype=np.float64).reshape(
        len(encodings), len(columns))


def fit_mix(log_heads: np.ndarray, log_y: np.ndarray, strength: float) -> np.ndarray:
    """argmin ||L w - t||² + strength · ||w - mean||² over w >= 0 (mean = equal weights summing to 1)."""
    return fit_mix_and_correction(log_heads, np.zeros((len(log_y), 0)), log_y, strength)[0]


def fit_mix_and_correction(log_heads: np.ndarray, counts: np.ndarray, log_y: np.ndarray, strength: float,
                           penalty: float = CORRECTION_PENALTY) -> Tuple[np.ndarray, np.ndarray]:
    """argmin ||L w + C v - t||² + strength · ||w - mean||² + penalty · ||v||² over w >= 0 and any v: the mix and
    per-op log-latency effects it cannot express, pulled to zero. Fitted together, so the mix does not bend to mimic
    an op's effect. v is split into non-negative v⁺ - v⁻ (at the optimum one of each pair is zero)."""
    from scipy.optimize import nnls

    n_heads, n_ops = log_heads.shape[1], counts.shape[1]
    root, ridge = np.sqrt(strength), np.sqrt(penalty)
    a = np.vstack([np.hstack([log_heads, counts, -counts]),
                   np.hstack([root * np.eye(n_heads), np.zeros((n_heads, 2 * n_ops))]),
                   np.hstack([np.zeros((2 * n_ops, n_heads)), ridge * np.eye(2 * n_ops)])])
    b = np.concatenate([log_y, np.full(n_heads, root / n_heads), np.zeros(2 * n_ops)])
    solution = nnls(a, b, maxiter=50 * a.shape[1])[0]
    return solution[:n_heads], solution[n_heads:n_heads + n_ops] - solution[n_heads + n_ops:]


def leave_one_out_errors(design: np.ndarray, target: np.ndarray,
                         fit: Callable[[np.ndarray, np.ndarray, float], np.ndarray] = fit_mix,
                         grid: Sequence[float] = SHRINK_GRID, power: int = 2) -> List[float]:
    """Per strength of `grid`, the summed leave-one-out error of design · fit(...) on the points, squared (`power`
    2) or absolute (1)."""
    n = len(target)
    errors = []
    for strength in grid:
        error = 0.0
        for i in range(n):
            keep = np.arange(n) != i
            w = fit(design[keep], target[keep], strength)
            error += abs(float(design[i] @ w - target[i])) ** power
        errors.append(error)
    return errors


def choose_strength(design: np.ndarray, target: np.ndarray,
                    fit: Callable[[np.ndarray, np.ndarray, float], np.ndarray] = fit_mix) -> float:
    """The shrink strength with the least leave-one-out squared error of design · fit(...) on the adaptation points
    (by default the log-space mix: design = the heads' log ratios, target = the measured log ratios)."""
    return SHRINK_GRID[int(np.argmin(leave_one_out_errors(design, target, fit)))]


def choose_shots(design: np.ndarray, k: int, known: Optional[np.ndarray] = None, prior: float = DESIGN_PRIOR,
                 trim: float = DESIGN_TRIM, criterion: str = "determinant") -> np.ndarray:
    """Indices of k distinct rows of `design` (one row of regressors per candidate), chosen greedily with the `known`
    rows (measured anyway: the reference) in M = prior · I + Σ x xᵀ. Criterion "determinant" (D-optimal) maximises
    det M: each step takes the row with the largest predicted variance x·M⁻¹·x, among the rows whose mean regressor
    lies between its `trim` and 1 − `trim` quantiles (all rows if fewer than k do; the extremes fix the mix as well but
    fit the bulk of the space worse). Criterion "variance" (V-optimal) minimises the summed predicted variance over
    every candidate, the items the adapted predictor will be asked about, so it needs no trim. M⁻¹ is updated by
    Sherman–Morrison; ties go to the first."""
    design = np.asarray(design, dtype=np.float64)
    if not 0 <= k <= len(design):
        raise ValueError("cannot choose {} of {} candidates".format(k, len(design)))
    inverse = np.eye(design.shape[1]) / prior
    for x in [] if known is None else np.asarray(known, dtype=np.float64).reshape(-1, design.shape[1]):
        inverse = _rank_one_update(inverse, x)
    if criterion == "variance":
        return _variance_optimal(design, k, inverse)
    level = design.mean(axis=1)
    low, high = np.quantile(level, [trim, 1.0 - trim]) if len(design) else (0.0, 0.0)
    candidates = np.flatnonzero((level >= low) & (level <= high))
    if len(candidates) < k:
        candidates = np.arange(len(design))
    rows = design[candidates]
    chosen: list = []
    for _ in range(k):
        gain = np.einsum("ij,jk,ik->i", rows, inverse, rows)
        gain[chosen] = -np.inf
        chosen.append(int(np.argmax(gain)))
        inverse = _rank_one_update(inverse, rows[chosen[-1]])
    return candidates[chosen]


def _variance_optimal(design: np.ndarray, k: int, inverse: np.ndarray) -> np.ndarray:
    """Greedy V-optimal rows: measuring row c lowers Σ_m x_m·M⁻¹·x_m by Σ_m (x_m·M⁻¹·x_c)² / (1 + x_c·M⁻¹·x_c)."""
    chosen: list = []
    for _ in range(k):
        covariance = design @ inverse @ design.T
        gain = (covariance ** 2).sum(axis=0) / (1.0 + np.diag(covariance))
        gain[chosen] = -np.inf
        chosen.append(int(np.argmax(gain)))
        inverse = _rank_one_update(inverse, design[chosen[-1]])
    return np.asarray(chosen, dtype=np.int64)


def _rank_one_update(inverse: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(M + x xᵀ)⁻¹ from M⁻¹."""
    mx = inverse @ x
    return inverse - np.outer(mx, mx) / (1.0 + x @ mx)


def shot_design(predictor: Predictor, encodings: Sequence[GraphEncoding]) -> np.ndarray:
    """The regressors few-shot adaptation fits on each item: the heads' rows for a mix of several heads
    (HeadsPredictor.shot_rows), else the log prediction and a constant (the log-affine calibration)."""
    if isinstance(predictor, HeadsPredictor) and predictor.n_heads > 1:
        return predictor.shot_rows(encodings)
    log_p = np.log(np.maximum(predictor.raw_predict(encodings).astype(np.float64), 1e-9))
    return np.column_stack([log_p, np.ones(len(log_p))])


class HeadsPredictor(Predictor):
    """Subclasses build a model with int(hyper["heads"]) outputs and implement `log_heads`."""

    multi_device = True
    # How `choose_shots` picks the K items a new device measures (trainer.adapting.chosen_shots).
    shot_criterion = "determinant"

    def __init__(self, hyper=None, **kwargs):
        super().__init__(dict({"heads": 1}, **(hyper or {})), **kwargs)
        self.mix = np.full(self.n_heads, 1.0 / self.n_heads)
        # log r += (op counts - the reference's op counts) · correction; zero until `correct`.
        self.ops = op_columns(self.vocabulary)
        self.correction = np.zeros(len(self.ops))
        self.correction_origin = np.zeros(len(self.ops))

    @property
    def n_heads(self) -> int:
        return int(self.hyper["heads"])

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """[n, heads] predicted log ratios."""
        raise NotImplementedError

    def shot_rows(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """[n, heads] what `adapt` regresses each item's measurement on: here the heads' log ratios."""
        return self.log_heads(encodings).astype(np.float64)

    def raw_predict(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        log_r = self.log_heads(encodings).astype(np.float64) @ self.mix
        if self.correction.any():
            log_r = log_r + (op_counts(encodings, self.ops) - self.correction_origin) @ self.correction
        return np.exp(log_r)

    def closed_form_history(self, val, val_y: np.ndarray, progress: Optional[ProgressFn]) -> FitHistory:
        """What a fit without epochs reports: one step, the validation error, one progress call."""
        from trainer.predictors.torch_fit import relative_error

        history = FitHistory(epochs=1, best_epoch=1)
        if len(val):
            history.val_errors.append(relative_error(self.log_heads(val), val_y))
        if progress is not None:
            progress(1, 1, history.val_errors[-1] if history.val_errors else float("nan"))
        return history

    def select_device(self, index: int) -> None:
        """Predict for training device `index` (its own head)."""
        self.mix = np.eye(self.n_heads)[index]
        self.calibration = (1.0, 0.0)
        self.correction = np.zeros(len(self.ops))

    def adapt(self, encodings: Sequence[GraphEncoding], y: np.ndarray, seed: int) -> None:
        """Fit the mix to the new device's points (K samples and the reference); fewer than 3: the average. One
        head: the base class's log-affine calibration."""
        self.calibration = (1.0, 0.0)
        self.mix = np.full(self.n_heads, 1.0 / self.n_heads)
        self.correction = np.zeros(len(self.ops))
        if self.n_heads == 1:
            self.calibrate(encodings, y)
            return
        if len(y) < 3:
            return
        heads = self.log_heads(encodings).astype(np.float64)
        target = np.log(np.asarray(y, dtype=np.float64))
        self.mix = fit_mix(heads, target, choose_strength(heads, target))

    def correct(self, encodings: Sequence[GraphEncoding], y: np.ndarray, reference: GraphEncoding) -> None:
        """After `adapt`, on the same points: refit the mix of several heads together with per-op effects on log
        latency, counted relative to the reference `reference` (so its ratio stays the mix's), keeping `adapt`'s
        shrink strength. Cell-level predictors only (the op counts are the cell's); fewer than 3 points: none."""
        self.correction = np.zeros(len(self.ops))
        if not self.ops or self.n_heads == 1 or len(y) < 3:
            return
        heads = self.log_heads(encodings).astype(np.float64)
        target = np.log(np.asarray(y, dtype=np.float64))
        self.correction_origin = op_counts([reference], self.ops)[0]
        self.mix, self.correction = fit_mix_and_correction(
            heads, op_counts(encodings, self.ops) - self.correction_origin, target, choose_strength(heads, target))

    def mix_tensors(self) -> Dict[str, np.ndarray]:
        """The mix, and for a cell-level predictor the correction and its origin."""
        tensors = {"mix": self.mix.copy()}
        if self.ops:
            tensors.update(correction=self.correction.copy(), correction_origin=self.correction_origin.copy())
        return tensors

    def load_mix(self, tensors: Dict[str, np.ndarray]) -> None:
        """Predictors saved before the correction existed load with none."""
        self.mix = np.asarray(tensors.pop("mix"), dtype=np.float64)
        for name in ("correction", "correction_origin"):
            if name in tensors:
                setattr(self, name, np.asarray(tensors.pop(name), dtype=np.float64))


class TorchHeadsPredictor(HeadsPredictor):
    """Heads predictors whose model is a torch module `self.net`: weights travel as its state dict."""

    def tensors(self) -> Dict[str, np.ndarray]:
        from trainer.predictors.torch_fit import state_to_numpy

        return dict(state_to_numpy(self.net), **self.mix_tensors())

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        from trainer.predictors.torch_fit import numpy_to_state

        tensors = dict(tensors)
        self.load_mix(tensors)
        numpy_to_state(self.net, tensors)
