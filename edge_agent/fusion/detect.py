"""Fusion detection: time each op alone and the chain whole, ask the runtime what it ran, decide, keep both.

Timing test (nn-Meter): a chain is fused when the parts' times add up to clearly more than the whole's,
  sum(T_i) - T_whole > alpha * (sum(T_i) - max(T_i))      (for a pair: T_a + T_b - T_ab > alpha * min(T_a, T_b))
with every time measured as a ratio to the whole chain interleaved in the same windows (drift cancels) and the
cost of an empty call subtracted (it is paid once per separate model and would look like a fusion saving).
"""

import datetime
import os
import tempfile
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple, Union

import onnx

from edge_agent.bundle.schema import ProtocolConfig, RunSettings
from edge_agent.fusion.cases import FusionCase, build_case, overhead_model
from edge_agent.fusion.evidence import collect_evidence
from edge_agent.fusion.rules import FusionRule, RuleTable
from edge_agent.measure.job import Job, JobResult, ModelToRun
from edge_agent.stats import interleaved_ratio, summarize

DEFAULT_ALPHA = 0.5
_FLOOR = 1e-6  # ratios below this are noise around an op that costs nothing


@dataclass(frozen=True)
class TimingVerdict:
    fused: bool
    savings_ratio: float  # (sum - whole) / (sum - max), overhead removed; > alpha means fused


def timing_test(part_ratios: List[float], overhead_ratio: float, alpha: float = DEFAULT_ALPHA) -> TimingVerdict:
    """Ratios are to the whole chain's time (the whole is 1.0)."""
    parts = [max(r - overhead_ratio, _FLOOR) for r in part_ratios]
    whole = max(1.0 - overhead_ratio, _FLOOR)
    savings = sum(parts) - whole
    minor = max(sum(parts) - max(parts), _FLOOR)
    return TimingVerdict(fused=savings > alpha * minor, savings_ratio=savings / minor)


@dataclass(frozen=True)
class PartTiming:
    part_ratios: List[float]  # each part's time as a ratio to the whole's, interleaved
    overhead_ratio: float  # the empty call's
    parts_median_ns: List[float]
    overhead_median_ns: float
    whole_median_ns: float


@dataclass
class Detector:
    settings: RunSettings
    protocol: ProtocolConfig
    run_job: Callable[[Job], JobResult]  # a Worker's run with the protocol's timeout
    workdir: str
    alpha: float = DEFAULT_ALPHA

    def detect(self, case: FusionCase, overhead_path: str) -> FusionRule:
        models = build_case(case)
        whole_path = self.save(models.whole, case.name, "whole")
        part_paths = [self.save(p, case.name, str(i)) for i, p in enumerate(models.parts)]
        rule = FusionRule(case=case.name, classes=models.classes, fused=False)
        rule.evidence_fused = self._evidence(whole_path, part_paths, rule)
        timing = self._timing(whole_path, part_paths, overhead_path, rule)
        if timing is not None:
            rule.timing_fused, rule.savings_ratio = timing.fused, timing.savings_ratio
        decided = [v for v in (rule.evidence_fused, rule.timing_fused) if v is not None]
        rule.fused = decided[0] if decided else False
        rule.disagreement = len(set(decided)) > 1
        return rule

    def save(self, model: onnx.ModelProto, case: str, label: str) -> str:
        """The model as the device runs it: under a quantization setting, the INT8 (QDQ) model made from it, so the
        runtime's evidence names its integer kernels (QLinearConv) and the Quantize/Dequantize kernels between
        separate ops."""
        path = os.path.join(self.workdir, "{}-{}.onnx".format(case.replace("|", "_"), label))
        onnx.save(model, path)
        if self.settings.quantization is None:
            return path
        from edge_agent.onnx_io import load_model
        from edge_agent.quant.ort_static import quantize_file

        quantized = path[:-len(".onnx")] + "-int8.onnx"
        quantize_file(path, quantized, load_model(path).input_shapes, self.settings.quantization)
        return quantized

    def _evidence(self, whole_path: str, part_paths: List[str], rule: FusionRule) -> Optional[bool]:
        """Fused when the whole chain runs no more kernels than its costliest op alone, and fewer than all of them
        alone: compared with the parts' own accounts, so helper ops a runtime always adds (MNN turns a Gemm into
        reshapes around a Convolution) cancel out."""
        from edge_agent.errors import AgentError

        try:
            whole = collect_evidence(whole_path, self.settings)
            parts = [collect_evidence(path, self.settings) for path in part_paths]
        except AgentError as exc:
            rule.error = "evidence: {}".format(exc)
            return None
        rule.evidence_source, rule.evidence_kernels = whole.source, whole.kernels
        counts = [part.kernel_count for part in parts]
        rule.evidence_detail = whole.detail + ["kernels of each op alone: {}".format(counts)]
        return whole.kernel_count <= max(counts) and whole.kernel_count < sum(counts)

    def _timing(self, whole_path: str, part_paths: List[str], overhead_path: str,
                rule: FusionRule) -> Optional[TimingVerdict]:
        timing = self.time_parts(whole_path, part_paths, overhead_path)
        if isinstance(timing, str):
            rule.error = "timing: {}".format(timing)
            return None
        rule.parts_median_ns, rule.overhead_median_ns = timing.parts_median_ns, timing.overhead_median_ns
        rule.whole_median_ns = timing.whole_median_ns
        return timing_test(timing.part_ratios, timing.overhead_ratio, self.alpha)

    def time_parts(self, whole_path: str, part_paths: List[str], overhead_path: str) -> Union["PartTiming", str]:
        """Each part and the empty call interleaved with the whole; the first error instead, as text."""
        results = []
        for path in part_paths + [overhead_path]:
            result = self.run_job(self._job(path, whole_path))
            if result.error is not None:
                return str(result.error)
            results.append(result)
        ratios = [interleaved_ratio(r.samples_ns, r.reference_samples_ns) for r in results]
        medians = [summarize(r.samples_ns).median_ns for r in results]
        whole = float(summarize([w for r in results for w in r.reference_samples_ns]).median_ns)
        return PartTiming(ratios[:-1], ratios[-1], medians[:-1], medians[-1], whole)

    def _job(self, item_path: str, whole_path: str) -> Job:
        return Job(model=_to_run(item_path), reference=_to_run(whole_path), settings=self.settings,
                   protocol=self.protocol, mnn_cache_dir=self.workdir)


def _to_run(path: str) -> ModelToRun:
    from edge_agent.onnx_io import load_model

    return ModelToRun(onnx_path=path, input_shapes=load_model(path).input_shapes)


def detect_fusion(settings: RunSettings, protocol: ProtocolConfig, cases: List[FusionCase],
                  fingerprint: Optional[dict] = None, alpha: float = DEFAULT_ALPHA, cpus: Optional[Tuple[int, ...]] = None,
                  progress: Optional[Callable[[FusionRule, int, int], None]] = None) -> RuleTable:
    from edge_agent.fusion.layout_cost import measure_conversion_costs
    from edge_agent.fusion.layout_probe import probe_layout
    from edge_agent.measure.worker import Worker

    rules = []
    with tempfile.TemporaryDirectory(prefix="edge-agent-fusion-") as workdir, Worker(cpus) as worker:
        detector = Detector(settings, protocol, lambda job: worker.run(job, protocol.timeout_s), workdir, alpha)
        overhead_path = detector.save(overhead_model(), "overhead", "call")
        for index, case in enumerate(cases):
            rules.append(detector.detect(case, overhead_path))
            if progress is not None:
                progress(rules[-1], index + 1, len(cases))
        # The layout probe reads fp32 conv graphs; an INT8 device's layout moves (NHWC Transposes around each
        # QLinearConv) are not probed yet
        layout = probe_layout(settings) if settings.quantization is None else None
        if layout is not None:
            layout.costs = measure_conversion_costs(detector, overhead_path, layout)
    return RuleTable(settings=settings, fingerprint=fingerprint or {}, alpha=alpha, rules=rules,
                     layout=layout, created_utc=datetime.datetime.now(datetime.timezone.utc).isoformat())
