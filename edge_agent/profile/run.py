"""The profile loop: opening reference, every pending item with the reference interleaved, closing reference."""

import time
from dataclasses import dataclass, field
from typing import List, Optional

from edge_agent.bundle.schema import STATUS_FAILED, STATUS_OK, MeasurementRecord
from edge_agent.measure.runner import Session, measure_item, valid_records
from edge_agent.profile.plan import Plan
from edge_agent.stats import interleaved_ratio, summarize


@dataclass
class Outcome:
    measured: List[MeasurementRecord] = field(default_factory=list)
    skipped: int = 0
    pending: int = 0  # left unmeasured because the budget ran out
    opening: Optional[MeasurementRecord] = None
    closing: Optional[MeasurementRecord] = None

    @property
    def invalid(self) -> int:
        return sum(1 for r in self.measured if r.status != STATUS_OK)

    def drift(self) -> Optional[float]:
        """Relative change of the standalone reference median from the session's start to its end."""
        if not (self.opening and self.closing and self.opening.valid and self.closing.valid):
            return None
        return summarize(self.closing.samples_ns).median_ns / summarize(self.opening.samples_ns).median_ns - 1


def run_profile(session: Session, plan: Plan, budget_s: Optional[float], progress=None) -> Outcome:
    """`progress(record, done, total)` is called after each item; the budget is checked before each item."""
    started = time.monotonic()
    done = valid_records(session.bundle.records().records, session.settings, plan.reference.ref.item_id)
    pending = [item for item in plan.items if item.ref.item_id not in done]
    outcome = Outcome(skipped=len(plan.items) - len(pending))
    if not pending:
        return outcome
    outcome.opening = measure_item(session, plan.reference)
    if outcome.opening.status == STATUS_FAILED:
        return outcome  # nothing can be measured against a reference that does not run
    for index, item in enumerate(pending):
        if budget_s is not None and time.monotonic() - started > budget_s:
            outcome.pending = len(pending) - index
            break
        record = measure_item(session, item, plan.reference)
        outcome.measured.append(record)
        if progress is not None:
            progress(record, index + 1, len(pending))
    outcome.closing = measure_item(session, plan.reference)
    return outcome


def describe(record: MeasurementRecord) -> str:
    name = record.model.name or record.item_id
    if not record.samples_ns or not any(record.samples_ns):
        return "{} {}: {}".format(record.status, name, "; ".join(record.reasons))
    line = "{} {} {:.3f} ms".format(record.status, name, summarize(record.samples_ns).median_ns / 1e6)
    if record.reference_samples_ns:
        line += " ratio {:.4f}".format(interleaved_ratio(record.samples_ns, record.reference_samples_ns))
    if record.reasons:
        line += " ({})".format("; ".join(record.reasons))
    return line
