"""The kernel lookup table of one device: exact hits, a regressor per kernel kind between measured configurations,
and a FLOPs/bytes fallback for kinds never measured (each prediction says which of the three it came from)."""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np
import onnx

from edge_agent.kernelprof import regressor
from lut import forest
from lut.calibration import Calibration, ModelSum, fit_calibration, scale_group
from edge_agent.fusion.layout import LayoutRules, net_conversions
from edge_agent.fusion.partition import Kernel, Pairs, partition, partition_infos

EXACT, REGRESSOR, FALLBACK = "exact", "regressor", "fallback"
FLOAT32_BYTES = 4  # the models the LUT predicts are float32 (MNN precision high, onnxruntime CPU)
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
    calibration: Calibration = field(default_factory=Calibration)  # kernel sum -> whole model (lut.calibration)
    skipped: int = 0  # samples that were not one kernel under these rules, or of a type this version cannot build
    layout: Optional[LayoutRules] = None  # the device's blocked-layout rules; None: conversions are not counted

    def predict_kernel(self, kernel: Kernel) -> KernelPrediction:
        key = kernel.key()
        if key in self.exact:
            return KernelPrediction(kernel, self.exact[key], EXACT)
        model = self.kinds.get(kernel.kind)
        if model is not None:
            x = regressor.features(kernel.config, kernel.flops, kernel.bytes_moved, model.feature_names)
            latency = regressor.predict(model.arrays, x, [kernel.flops], [kernel.bytes_moved],
                                        regressor.group_calls([kernel.config]))[0]
            return KernelPrediction(kernel, float(latency), REGRESSOR)
        latency = regressor.roofline_ns(self.fallback_coef, kernel.flops, kernel.bytes_moved)
        return KernelPrediction(kernel, float(latency), FALLBACK)

    def predict_kernels(self, kernels: Sequence[Kernel]) -> List[KernelPrediction]:
        return [self.predict_kernel(k) for k in kernels]

    def predict_model(self, model: onnx.ModelProto) -> Tuple[float, List[KernelPrediction]]:
        """Predicted latency in ns (calibrated sum of kernels) and the per-kernel breakdown."""
        total, kernels = self.model_sum(model)
        return self.calibration.apply(total), kernels

    def model_sum(self, model: onnx.ModelProto) -> Tuple[ModelSum, List[KernelPrediction]]:
        from kernels.analysis import analyze

        infos = analyze(model)
        initializers = {t.name for t in model.graph.initializer}
        inputs = {i.name for i in model.graph.input} - initializers
        outputs = {o.name for o in model.graph.output}
        return self.sum_infos(infos, inputs, outputs)

    def sum_infos(self, infos: Sequence, graph_inputs: Set[str], graph_outputs: Set[str]
                  ) -> Tuple[ModelSum, List[KernelPrediction]]:
        """The kernel sum of nodes (kernels.analysis.NodeInfo, topological order) and the per-kernel breakdown."""
        kernels = self.predict_kernels(partition_infos(infos, graph_outputs, self.absorbed))
        layout_ns = 0.0
        if self.layout is not None:
            layout_ns = self.layout.cost_ns(net_conversions(infos, [p.kernel.nodes for p in kernels], graph_inputs,
                                                            graph_outputs, self.layout))
        group_ns = {"layout": layout_ns} if layout_ns else {}
        for p in kernels:
            group = scale_group(p.kernel.kind, p.kernel.config)
            group_ns[group] = group_ns.get(group, 0.0) + p.latency_ns
        total = ModelSum(kernel_ns=sum(p.latency_ns for p in kernels), kernels=len(kernels), layout_ns=layout_ns,
                         weight_bytes=float(FLOAT32_BYTES * sum(info.params for info in infos)), group_ns=group_ns)
        return total, kernels

    def fit_overhead(self, models: Sequence[onnx.ModelProto], measured_ns: Sequence[float]) -> None:
        self.calibrate([self.model_sum(m)[0] for m in models], measured_ns)

    def calibrate(self, models: Sequence[ModelSum], measured_ns: Sequence[float]) -> None:
        self.calibration = fit_calibration(models, measured_ns, self.call_overhead_ns)


def fit_lut(samples: Sequence[KernelSample], absorbed: Pairs, settings: Dict[str, object],
            call_overhead_ns: float = 0.0, layout: Optional[LayoutRules] = None, fit_kind: Callable = forest.fit
            ) -> KernelLUT:
    """Samples of the same config are pooled by median; kernel latencies have the call overhead taken off. `fit_kind`
    fits each kind's regressor (the board's, edge_agent.kernelprof.regressor.fit, where a benchmark compares)."""
    table = KernelLUT(settings=dict(settings), absorbed=frozenset(absorbed), call_overhead_ns=call_overhead_ns,
                      calibration=Calibration(model_overhead_ns=call_overhead_ns), layout=layout)
    kernels, latencies = standalone_kernels(samples, absorbed, call_overhead_ns)
    table.skipped = len(samples) - len(kernels)
    by_key: Dict[str, List[int]] = {}
    for index, kernel in enumerate(kernels):
        by_key.setdefault(kernel.key(), []).append(index)
    unique = [kernels[ids[0]] for ids in by_key.values()]
    medians = np.array([float(np.median([latencies[i] for i in ids])) for ids in by_key.values()])
    table.exact = {k.key(): float(v) for k, v in zip(unique, medians)}
    for kind in sorted({k.kind for k in unique}):
        members = [i for i, k in enumerate(unique) if k.kind == kind]
        if len(members) >= MIN_POINTS_FOR_REGRESSOR:
            table.kinds[kind] = _fit_kind([unique[i] for i in members], medians[members], fit_kind)
    if unique:
        table.fallback_coef = regressor.roofline([k.flops for k in unique], [k.bytes_moved for k in unique], medians)
    return table


def standalone_kernels(samples: Sequence[KernelSample], absorbed: Pairs, call_overhead_ns: float
                       ) -> Tuple[List[Kernel], List[float]]:
    """The samples that are one kernel under these rules, and their latencies with the call overhead taken off. A
    sample of a kernel type this version cannot build (a newer agent's, or a probe's) is left out like one that is not
    one kernel: the LUT counts both as skipped."""
    from kernels.errors import KernelsError
    from kernels.single import build_kernel_model

    kernels, latencies = [], []
    for sample in samples:
        try:
            parts = partition(build_kernel_model(sample.kernel_type, sample.config), absorbed)
        except KernelsError:
            continue
        if len(parts) != 1:
            continue
        kernels.append(parts[0])
        latencies.append(max(sample.latency_ns - call_overhead_ns, MIN_KERNEL_NS))
    return kernels, latencies


def _fit_kind(kernels: List[Kernel], latency_ns: np.ndarray, fit: Callable) -> KindModel:
    names, x, flops, bytes_moved = kernel_design(kernels)
    arrays = fit(x, latency_ns, flops, bytes_moved, calls=regressor.group_calls([k.config for k in kernels]))
    return KindModel(feature_names=names, arrays=arrays)


def kernel_design(kernels: Sequence[Kernel]) -> Tuple[List[str], np.ndarray, np.ndarray, np.ndarray]:
    """What a kind's regressor is fitted on: its feature names, one feature row per kernel, FLOPs and bytes moved."""
    names = regressor.feature_names([k.config for k in kernels])
    x = np.stack([regressor.features(k.config, k.flops, k.bytes_moved, names) for k in kernels])
    return names, x, np.array([k.flops for k in kernels]), np.array([k.bytes_moved for k in kernels])
