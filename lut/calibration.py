"""From a sum of standalone kernel latencies to a whole model's latency, fitted to whole-model measurements.

    model_ns = kernel_scale * (sum(kernels) + layout) + per_kernel_ns * kernels + model_overhead_ns

Kernels back to back inside a model cost more (or less) than alone. Layout conversions are counted and costed from
the device's own measurements, not fitted here: `layout` is what the model's conversions cost minus what its kernels
paid for theirs when each was measured alone (edge_agent.fusion.layout; usually negative). Dispatch, weights that no
longer stay in cache and the like are left to the terms, which take what is common to the device's models.
Measured and left out: a term for weights beyond a cache-sized threshold (a 3x3 512-channel conv on a 3x3 map took
0.49 ms alone and about 0.97 ms inside ResNet-18 on onnxruntime here); fitted on calibration models it chose a
threshold by leave-one-out error well enough, and then made the unseen architectures worse on both runtimes (README,
kernel LUT).
"""

from dataclasses import dataclass
from typing import Sequence

import numpy as np

MIN_MODELS_FULL = 4  # below this only the per-model term is fitted


@dataclass(frozen=True)
class ModelSum:
    """A model as the LUT sees it: its kernels' predicted latency summed and their count."""

    kernel_ns: float
    kernels: int
    layout_ns: float = 0.0  # the model's layout conversions minus those of its kernels alone (fusion.layout)


@dataclass(frozen=True)
class Calibration:
    kernel_scale: float = 1.0
    per_kernel_ns: float = 0.0
    model_overhead_ns: float = 0.0

    def apply(self, model: ModelSum) -> float:
        return max(self.kernel_scale * (model.kernel_ns + model.layout_ns) + self.per_kernel_ns * model.kernels
                   + self.model_overhead_ns, 0.0)


def fit_calibration(models: Sequence[ModelSum], measured_ns: Sequence[float], default_overhead_ns: float = 0.0
                    ) -> Calibration:
    """Non-negative least squares on relative error (a few large models do not decide the fit for the small ones).
    With fewer than MIN_MODELS_FULL models the per-kernel term is left out, and with one model only the gap is
    fitted. Every term stays non-negative: a negative per-model term, fitted from a few models whose kernel sums ran
    high, once put a one-kernel model at a fifth of its time."""
    from scipy.optimize import nnls

    measured = np.asarray(measured_ns, dtype=np.float64)
    sums = np.asarray([m.kernel_ns + m.layout_ns for m in models], dtype=np.float64)
    if len(measured) < 2:
        return Calibration(model_overhead_ns=max(float(measured[0] - sums[0]), 0.0) if len(measured)
                           else default_overhead_ns)
    per_kernel_column = [m.kernels for m in models] if len(measured) >= MIN_MODELS_FULL else np.zeros_like(sums)
    design = np.stack([sums, per_kernel_column, np.ones_like(sums)], axis=1) / measured[:, None]
    scale, per_kernel, overhead = nnls(design, np.ones_like(measured))[0]
    return Calibration(float(scale), float(per_kernel), float(overhead))
