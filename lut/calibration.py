"""From a sum of standalone kernel latencies to a whole model's latency, fitted to whole-model measurements.

    model_ns = kernel_scale * sum(kernels) + per_kernel_ns * kernels + cold_ns_per_kb * KB(weights beyond threshold)
               + model_overhead_ns

Why each term: kernels back to back inside a model cost more (or less) than alone — layout conversions between them,
dispatch — which the scale and per-kernel terms take. A kernel measured alone runs its weights hot in cache; inside a
model whose weights exceed the last-level cache they stream from DRAM on every inference (a ResNet-34 ran 30-40 %
slower than its kernels' sum, a VGG, compute-bound, 5 %). The cache size is not read from the board: the threshold is
chosen among powers of two by leave-one-out error on the calibration models, and the term is left out unless it
predicts held-out models better — so it needs calibration models on both sides of the cache size.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

MIB = 2 ** 20
THRESHOLDS_BYTES = tuple(MIB * 2 ** k for k in range(-1, 8))  # 0.5 MiB (a Pi's L2 share) .. 128 MiB
MIN_MODELS_FULL = 4  # below this only the per-model term is fitted
MIN_MODELS_ABOVE = 2  # calibration models beyond a threshold before that threshold is tried


@dataclass(frozen=True)
class ModelSum:
    """A model as the LUT sees it: its kernels' predicted latency summed, their count and their weights."""

    kernel_ns: float
    kernels: int
    weight_bytes: float = 0.0


@dataclass(frozen=True)
class Calibration:
    kernel_scale: float = 1.0
    per_kernel_ns: float = 0.0
    model_overhead_ns: float = 0.0
    cold_ns_per_kb: float = 0.0
    cold_threshold_bytes: float = 0.0

    def apply(self, model: ModelSum) -> float:
        cold_kb = max(model.weight_bytes - self.cold_threshold_bytes, 0.0) / 1e3 if self.cold_ns_per_kb else 0.0
        return max(self.kernel_scale * model.kernel_ns + self.per_kernel_ns * model.kernels
                   + self.cold_ns_per_kb * cold_kb + self.model_overhead_ns, 0.0)


def fit_calibration(models: Sequence[ModelSum], measured_ns: Sequence[float], default_overhead_ns: float = 0.0
                    ) -> Calibration:
    """Non-negative least squares on relative error; the cold-weights term and its threshold only where leave-one-out
    error says they help. With fewer than MIN_MODELS_FULL models: the per-model term alone, as the median gap."""
    measured = np.asarray(measured_ns, dtype=np.float64)
    sums = np.asarray([m.kernel_ns for m in models], dtype=np.float64)
    if len(measured) < MIN_MODELS_FULL:
        return Calibration(model_overhead_ns=float(np.median(measured - sums)) if len(measured)
                           else default_overhead_ns)
    weights = np.asarray([m.weight_bytes for m in models], dtype=np.float64)
    candidates: List[Optional[float]] = [None] + [t for t in THRESHOLDS_BYTES
                                                  if (weights > t).sum() >= MIN_MODELS_ABOVE]
    best = min(candidates, key=lambda t: _loo_error(_design(models, t), measured))
    coef = _nnls_relative(_design(models, best), measured)
    if best is None:
        return Calibration(float(coef[0]), float(coef[1]), float(coef[2]))
    return Calibration(float(coef[0]), float(coef[1]), float(coef[3]), float(coef[2]), float(best))


def _design(models: Sequence[ModelSum], threshold: Optional[float]) -> np.ndarray:
    columns = [[m.kernel_ns for m in models], [m.kernels for m in models]]
    if threshold is not None:
        columns.append([max(m.weight_bytes - threshold, 0.0) / 1e3 for m in models])
    columns.append([1.0] * len(models))
    return np.asarray(columns, dtype=np.float64).T


def _nnls_relative(design: np.ndarray, measured: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(design / measured[:, None], np.ones_like(measured))[0]


def _loo_error(design: np.ndarray, measured: np.ndarray) -> float:
    """Mean relative error of each model predicted by the fit on the others."""
    errors = []
    for i in range(len(measured)):
        keep = np.arange(len(measured)) != i
        coef = _nnls_relative(design[keep], measured[keep])
        errors.append(abs(float(design[i] @ coef) / measured[i] - 1.0))
    return float(np.mean(errors))
