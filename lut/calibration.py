"""From a sum of standalone kernel latencies to a whole model's latency, fitted to whole-model measurements.

    model_ns = kernel_scale * (sum(kernels) + layout) + per_kernel_ns * kernels + model_overhead_ns
               + weight_ns_per_byte * (the model's weight bytes beyond weight_cache_bytes)

Kernels back to back inside a model cost more (or less) than alone. Layout conversions are counted and costed from
the device's own measurements, not fitted here: `layout` is what the model's conversions cost minus what its kernels
paid for theirs when each was measured alone (edge_agent.fusion.layout; usually negative). Dispatch and the like
are left to the terms, which take what is common to the device's models.

The weight term: a kernel timed alone in a loop finds its weights in the cache; inside a model whose weights do not
fit, the weights beyond what the cache holds are fetched again on every inference. onnxruntime's own profile of
ResNet-18 here showed every conv slower inside the model by about 0.06 ns per weight byte, from 0.15 to 9.4 MB layers
alike (a 3x3 512-channel conv: 0.39 ms alone, 0.97 ms inside). Where that starts is the effective cache a model's weights
compete for, which on a shared VM is not the L3 that sysfs reports: the threshold is chosen among cache sizes by
leave-one-out error on the calibration models themselves, "no term" included, and only where models lie on both
sides of it.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

MIN_MODELS_FULL = 4  # below this only the per-model term is fitted
MIN_MODELS_EACH_SIDE = 3  # of a weight-cache threshold, for the weight term to be tried at it
NO_TERM_TOLERANCE = 0.01  # the weight term is kept when it lowers the leave-one-out error by more than 1 %
CACHE_CANDIDATES_BYTES = tuple(mib * 2 ** 20 for mib in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64))


@dataclass(frozen=True)
class ModelSum:
    """A model as the LUT sees it: its kernels' predicted latency summed and their count."""

    kernel_ns: float
    kernels: int
    layout_ns: float = 0.0  # the model's layout conversions minus those of its kernels alone (fusion.layout)
    weight_bytes: float = 0.0  # all its weights (float32 parameters)


@dataclass(frozen=True)
class Calibration:
    kernel_scale: float = 1.0
    per_kernel_ns: float = 0.0
    model_overhead_ns: float = 0.0
    weight_ns_per_byte: float = 0.0
    weight_cache_bytes: float = 0.0  # weights beyond this many bytes are fetched again on every inference

    def apply(self, model: ModelSum) -> float:
        return max(self.kernel_scale * (model.kernel_ns + model.layout_ns) + self.per_kernel_ns * model.kernels
                   + self.model_overhead_ns + self.weight_ns_per_byte * _streamed(model, self.weight_cache_bytes),
                   0.0)


def _streamed(model: ModelSum, cache_bytes: Optional[float]) -> float:
    """The weight bytes fetched again on every inference. Only the excess over the cache: charging all of a model's
    weights once past the threshold had the smaller models past it come out high (MobileNetV3-Small at 1.6x on
    onnxruntime), and had a slightly higher leave-one-out error on both calibration sets of the kernel-LUT benchmark."""
    return max(model.weight_bytes - cache_bytes, 0.0) if cache_bytes is not None else 0.0


def fit_calibration(models: Sequence[ModelSum], measured_ns: Sequence[float], default_overhead_ns: float = 0.0
                    ) -> Calibration:
    """Non-negative least squares on relative error (a few large models do not decide the fit for the small ones).
    With fewer than MIN_MODELS_FULL models the per-kernel term is left out, and with one model only the gap is
    fitted. Every term stays non-negative: a negative per-model term, fitted from a few models whose kernel sums ran
    high, once put a one-kernel model at a fifth of its time."""
    measured = np.asarray(measured_ns, dtype=np.float64)
    if len(measured) < 2:
        sums = [m.kernel_ns + m.layout_ns for m in models]
        return Calibration(model_overhead_ns=max(float(measured[0] - sums[0]), 0.0) if len(measured)
                           else default_overhead_ns)
    weights = np.asarray([m.weight_bytes for m in models])
    candidates = [None] + [c for c in CACHE_CANDIDATES_BYTES
                           if min((weights > c).sum(), (weights <= c).sum()) >= MIN_MODELS_EACH_SIDE]
    errors = {c: _leave_one_out_error(models, measured, c) for c in candidates}
    cache_bytes = min(candidates, key=errors.get)
    if errors[None] <= errors[cache_bytes] * (1 + NO_TERM_TOLERANCE) + 1e-12:
        cache_bytes = None  # a term must earn its place
    return _fit_terms(models, measured, cache_bytes)


def _fit_terms(models: Sequence[ModelSum], measured: np.ndarray, cache_bytes: Optional[float]) -> Calibration:
    from scipy.optimize import nnls

    sums = np.asarray([m.kernel_ns + m.layout_ns for m in models], dtype=np.float64)
    per_kernel_column = [m.kernels for m in models] if len(measured) >= MIN_MODELS_FULL else np.zeros_like(sums)
    streamed = [_streamed(m, cache_bytes) / 1e6 for m in models]  # per MB, so the columns have similar scales
    design = np.stack([sums, per_kernel_column, np.ones_like(sums), streamed], axis=1) / measured[:, None]
    scale, per_kernel, overhead, per_mb = nnls(design, np.ones_like(measured))[0]
    return Calibration(float(scale), float(per_kernel), float(overhead), float(per_mb) / 1e6,
                       float(cache_bytes) if per_mb > 0 else 0.0)


def _leave_one_out_error(models: Sequence[ModelSum], measured: np.ndarray, cache_bytes: Optional[float]) -> float:
    errors = []
    for left_out in range(len(models)):
        keep = [i for i in range(len(models)) if i != left_out]
        fitted = _fit_terms([models[i] for i in keep], measured[keep], cache_bytes)
        errors.append(abs(fitted.apply(models[left_out]) / measured[left_out] - 1))
    return float(np.mean(errors))
