"""The kernel lookup table of one device: exact hits, a regressor per kernel kind between measured configurations,
and a FLOPs/bytes fallback for kinds never measured (each prediction says which of the three it came from)."""

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np
import onnx

from edge_agent.kernelprof import regressor
from lut.partition import Kernel, Pairs, partition

EXACT, REGRESSOR, FALLBACK = "exact", "regressor", "fallback"
MIN_POINTS_FOR_REGRESSOR = 3
MIN_KERNEL_NS = 100.0  # a kernel never costs less than this after the call overhead is taken off


@dataclass(frozen=True)
class KernelSample:
    """One measured single-kernel model: its kernels.single type and config, and its median latency."""

    kernel_type: str
    config: Dict[str, object]
    latency_ns: float


@dataclass
class KindModel:
    feature_names: List[str]
    arrays: Dict[str, np.ndarray]


@dataclass(frozen=True)
class KernelPrediction:
    kernel: Kernel
    latency_ns: float
    source: str  # exact | regressor | fallback


@dataclass
class KernelLUT:
    settings: Dict[str, object]
    absorbed: Pairs
    call_overhead_ns: float
    exact: Dict[str, float] = field(default_factory=dict)  # Kernel.key() -> latency_ns (call overhead removed)
    kinds: Dict[str, KindModel] = field(default_factory=dict)
    fallback_coef: np.ndarray = field(default_factory=lambda: np.zeros(3))  # ns = a + b*MFLOPs + c*KB moved
    model_overhead_ns: float = 0.0
    # model = kernel_scale * sum(kernels) + per_kernel_ns * kernels + model_overhead_ns: kernels run back to back
    # inside a model cost more (or less) than alone — layout conversions, cache state — and that is fitted here.
    kernel_scale: float = 1.0
    per_kernel_ns: float = 0.0
    skipped: int = 0  # samples that were not one kernel under these rules

    def predict_kernel(self, kernel: Kernel) -> KernelPrediction:
        key = kernel.key()
        if key in self.exact:
            return KernelPrediction(kernel, self.exact[key], EXACT)
        model = self.kinds.get(kernel.kind)
        if model is not None:
            x = regressor.features(kernel.config, kernel.flops, kernel.bytes_moved, model.feature_names)
            latency = regressor.predict(model.arrays, x, [kernel.flops], [kernel.bytes_moved])[0]
            return KernelPrediction(kernel, float(latency), REGRESSOR)
        latency = regressor.roofline_ns(self.fallback_coef, kernel.flops, kernel.bytes_moved)
        return KernelPrediction(kernel, float(latency), FALLBACK)

    def predict_model(self, model: onnx.ModelProto) -> Tuple[float, List[KernelPrediction]]:
        """Predicted latency in ns (calibrated sum of kernels) and the per-kernel breakdown."""
        kernels = [self.predict_kernel(k) for k in partition(model, self.absorbed)]
        return self.combine(sum(p.latency_ns for p in kernels), len(kernels)), kernels

    def combine(self, kernel_sum_ns: float, kernel_count: int) -> float:
        return max(self.kernel_scale * kernel_sum_ns + self.per_kernel_ns * kernel_count + self.model_overhead_ns,
                   0.0)

    def fit_overhead(self, models: Sequence[onnx.ModelProto], measured_ns: Sequence[float]) -> None:
        predictions = [[self.predict_kernel(k) for k in partition(model, self.absorbed)] for model in models]
        self.calibrate([sum(p.latency_ns for p in kernels) for kernels in predictions],
                       [len(kernels) for kernels in predictions], measured_ns)

    def calibrate(self, kernel_sums_ns: Sequence[float], kernel_counts: Sequence[int],
                  measured_ns: Sequence[float]) -> None:
        """Fit scale, per-kernel and per-model terms to whole-model measurements (non-negative least squares on
        relative error); with fewer than 4 models only the per-model term, as the median gap."""
        sums, counts, measured = (np.asarray(v, dtype=np.float64) for v in (kernel_sums_ns, kernel_counts,
                                                                               measured_ns))
        self.kernel_scale, self.per_kernel_ns = 1.0, 0.0
        if len(measured) < 4:
            self.model_overhead_ns = float(np.median(measured - sums)) if len(measured) else self.call_overhead_ns
            return
        from scipy.optimize import nnls

        design = np.stack([sums, counts, np.ones_like(sums)], axis=1) / measured[:, None]
        coef = nnls(design, np.ones_like(measured))[0]
        self.kernel_scale, self.per_kernel_ns, self.model_overhead_ns = (float(c) for c in coef)


def fit_lut(samples: Sequence[KernelSample], absorbed: Pairs, settings: Dict[str, object],
            call_overhead_ns: float = 0.0) -> KernelLUT:
    """Samples of the same config are pooled by median; kernel latencies have the call overhead taken off."""
    table = KernelLUT(settings=dict(settings), absorbed=frozenset(absorbed), call_overhead_ns=call_overhead_ns,
                      model_overhead_ns=call_overhead_ns)
    kernels, latencies = _kernels_of(samples, absorbed, call_overhead_ns, table)
    by_key: Dict[str, List[int]] = {}
    for index, kernel in enumerate(kernels):
        by_key.setdefault(kernel.key(), []).append(index)
    unique = [kernels[ids[0]] for ids in by_key.values()]
    medians = np.array([float(np.median([latencies[i] for i in ids])) for ids in by_key.values()])
    table.exact = {k.key(): float(v) for k, v in zip(unique, medians)}
    for kind in sorted({k.kind for k in unique}):
        members = [i for i, k in enumerate(unique) if k.kind == kind]
        if len(members) >= MIN_POINTS_FOR_REGRESSOR:
            table.kinds[kind] = _fit_kind([unique[i] for i in members], medians[members])
    if unique:
        table.fallback_coef = regressor.roofline([k.flops for k in unique], [k.bytes_moved for k in unique], medians)
    return table


def _kernels_of(samples: Sequence[KernelSample], absorbed: Pairs, call_overhead_ns: float, table: KernelLUT):
    from kernels.single import build_kernel_model

    kernels, latencies = [], []
    for sample in samples:
        parts = partition(build_kernel_model(sample.kernel_type, sample.config), absorbed)
        if len(parts) != 1:
            table.skipped += 1
            continue
        kernels.append(parts[0])
        latencies.append(max(sample.latency_ns - call_overhead_ns, MIN_KERNEL_NS))
    return kernels, latencies


def _fit_kind(kernels: List[Kernel], latency_ns: np.ndarray) -> KindModel:
    names = regressor.feature_names([k.config for k in kernels])
    x = np.stack([regressor.features(k.config, k.flops, k.bytes_moved, names) for k in kernels])
    arrays = regressor.fit(x, latency_ns, [k.flops for k in kernels], [k.bytes_moved for k in kernels])
    return KindModel(feature_names=names, arrays=arrays)
