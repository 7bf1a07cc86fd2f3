"""The kernel profiling loop on the board: per kernel type, adaptive sampling whose measurements are bundle records
(item_kind "kernel", spec = kernel type + config), each with the fixed reference kernel interleaved.

Resumable: configs already measured validly under the same settings and reference are answered from the bundle,
and the sampling is deterministic for a seed and the measured values, so a re-run walks the same path and measures
only what is missing. The budget is checked before every measurement; running out stops cleanly.
"""

import os
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from edge_agent.bundle.schema import KIND_KERNEL, KIND_REFERENCE, STATUS_OK, MeasurementRecord, ModelRef
from edge_agent.kernelprof.sampler import RoundReport, run_sampling
from edge_agent.kernelprof.space import OVERHEAD_SPEC, REFERENCE_SPEC, spec, spec_id
from edge_agent.measure.runner import Item, Session, measure_item, valid_records
from edge_agent.stats import summarize


# Convolutions carry most of a CNN's latency and have the largest config space (five dimensions), depthwise ones come
# next: a fixed count per type left the conv regressor with a few dozen points, far too few for real models.
TYPE_WEIGHTS = {"conv": 4, "dwconv": 2}


@dataclass(frozen=True)
class SamplingPlan:
    kernel_types: Sequence[str]
    per_type: int = 60  # measurements per kernel type at most, times TYPE_WEIGHTS
    seed: int = 0
    threshold: float = 0.10
    target_accuracy: float = 0.95
    seeded: Dict[str, Sequence[Dict[str, object]]] = field(default_factory=dict)  # a space's layers: on top

    def budget(self, kernel_type: str) -> int:
        return self.per_type * TYPE_WEIGHTS.get(kernel_type, 1)

    def total(self) -> int:
        return sum(self.budget(t) + len(self.seeded.get(t, ())) for t in self.kernel_types)


@dataclass
class KernelOutcome:
    measured: List[MeasurementRecord] = field(default_factory=list)
    reused: int = 0
    out_of_budget: bool = False
    rounds: Dict[str, List[RoundReport]] = field(default_factory=dict)

    @property
    def invalid(self) -> int:
        return sum(1 for r in self.measured if r.status != STATUS_OK)


class _BudgetSpent(Exception):
    pass


def kernel_item(session: Session, kernel_spec: Dict[str, object], kind: str = KIND_KERNEL) -> Item:
    from edge_agent.bundle.files import atomic_write
    from edge_agent.onnx_io import load_model, sha256_bytes
    from kernels.single import build_kernel_model

    content = build_kernel_model(kernel_spec["kernel_type"], kernel_spec["config"]).SerializeToString()
    sha = sha256_bytes(content)
    path = os.path.join(session.bundle.cache_dir("kernels"), sha + ".onnx")
    if not os.path.exists(path):
        atomic_write(path, content)
    name = "{} {}".format(kernel_spec["kernel_type"], ",".join(
        "{}={}".format(k, v) for k, v in sorted(kernel_spec["config"].items())))
    ref = ModelRef(item_id=spec_id(kernel_spec), model_sha256=sha, name=name)
    return Item(ref=ref, onnx_path=path, input_shapes=load_model(path).input_shapes, kind=kind, spec=kernel_spec)


def profile_kernels(session: Session, plan: SamplingPlan, budget_s: Optional[float] = None,
                    progress: Optional[Callable[[MeasurementRecord, int, int], None]] = None) -> KernelOutcome:
    started = time.monotonic()
    reference = kernel_item(session, REFERENCE_SPEC, KIND_REFERENCE)
    done = valid_records(session.bundle.records().records, session.settings, reference.ref.item_id)
    known = {item_id: summarize(r.samples_ns).median_ns for item_id, r in done.items()}
    outcome = KernelOutcome()
    planned = plan.total() + 1

    def measure_one(kernel_spec: Dict[str, object]) -> float:
        item_id = spec_id(kernel_spec)
        if item_id in known:
            outcome.reused += 1
            return known[item_id]
        if budget_s is not None and time.monotonic() - started > budget_s:
            raise _BudgetSpent()
        record = measure_item(session, kernel_item(session, kernel_spec), reference)
        outcome.measured.append(record)
        if progress is not None:
            progress(record, len(outcome.measured) + outcome.reused, planned)
        return summarize(record.samples_ns).median_ns if record.valid else float("nan")

    def measure(kernel_type: str, configs: List[Dict[str, object]]) -> List[float]:
        return [measure_one(spec(kernel_type, config)) for config in configs]

    try:
        measure_one(OVERHEAD_SPEC)
        for kernel_type in plan.kernel_types:
            budget = plan.budget(kernel_type)
            state = run_sampling(kernel_type, measure, budget, max(5, budget // 3), max(2, budget // 6), plan.seed,
                                 plan.threshold, plan.target_accuracy, seeded=plan.seeded.get(kernel_type, ()))
            outcome.rounds[kernel_type] = state.rounds
    except _BudgetSpent:
        outcome.out_of_budget = True
    return outcome
