"""One item through the protocol: child-process measurement, validity checks, bounded retries, every attempt kept."""

import datetime
import math
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from edge_agent.bundle.schema import (DEVICE_SETTING_KEYS, KIND_MODEL, STATUS_FAILED, STATUS_INVALID, STATUS_OK,
                                      MeasurementRecord, ModelRef, ProtocolConfig, RunSettings)
from edge_agent.bundle.store import Bundle
from edge_agent.measure.job import Job, JobResult, ModelToRun
from edge_agent.measure.worker import Worker
from edge_agent.stats import summarize, window_ratios


# Items start this far below the throttle point, so one item's heat cannot carry it into throttling.
COOLDOWN_MARGIN_MC = 15_000


@dataclass(frozen=True)
class Item:
    """A model to measure; `onnx_path` points into the bundle's models/ so what was measured travels with it."""

    ref: ModelRef
    onnx_path: str
    input_shapes: Dict[str, List[int]]
    kind: str = KIND_MODEL
    spec: Optional[Dict[str, Any]] = None


@dataclass
class Session:
    """What stays fixed over one command's run."""

    bundle: Bundle
    worker: Worker
    settings: RunSettings
    protocol: ProtocolConfig
    sysroot: str = "/"
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)


def same_settings(a: RunSettings, b: RunSettings) -> bool:
    return all(getattr(a, key) == getattr(b, key) for key in DEVICE_SETTING_KEYS + ("input_seed", "quantization"))


def valid_records(records: List[MeasurementRecord], settings: RunSettings,
                  reference_id: Optional[str]) -> Dict[str, MeasurementRecord]:
    """The latest valid record per item under the same settings and reference: what a re-run skips."""
    found = {}
    for record in records:
        reference = record.reference.item_id if record.reference is not None else None
        if record.status == STATUS_OK and reference == reference_id and same_settings(record.settings, settings):
            found[record.item_id] = record
    return found


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def validity_reasons(result: JobResult, protocol: ProtocolConfig) -> List[str]:
    """Why a measurement cannot be trusted. With an interleaved reference the ratio is what is used downstream, so
    it is judged by how well its per-window values agree (drift and contention move item and reference together);
    a standalone item is judged by the robust CV of its samples."""
    from edge_agent.device.snapshot import compare_snapshots

    reasons = []
    if result.state_before is not None and result.state_after is not None:
        reasons.extend(compare_snapshots(result.state_before, result.state_after))
    if result.reference_samples_ns is not None:
        ratios = window_ratios(result.samples_ns, result.reference_samples_ns)
        spread = (max(ratios) - min(ratios)) / float(np.median(ratios)) if ratios else math.nan
        if math.isnan(spread) or spread > protocol.cv_threshold:
            reasons.append("window ratios spread {:.1%}, over the {:.1%} threshold".format(
                spread, protocol.cv_threshold))
        return reasons
    robust_cv = summarize(result.samples_ns).robust_cv
    if math.isnan(robust_cv) or robust_cv > protocol.cv_threshold:
        reasons.append("CV {:.1%} over the {:.1%} threshold".format(robust_cv, protocol.cv_threshold))
    return reasons


def measure_item(session: Session, item: Item, reference: Optional[Item] = None) -> MeasurementRecord:
    """Measure with retries; every attempt is appended to the bundle; returns the last attempt's record. Under a
    quantization setting both models are measured as the INT8 models made from them (edge_agent.quant)."""
    if session.settings.quantization is not None:
        from edge_agent.quant.items import quantized_item

        item = quantized_item(session, item)
        reference = quantized_item(session, reference) if reference is not None else None
    record = None
    for attempt in range(1, session.protocol.max_retries + 2):
        still_hot = _cool_down(session)
        record = _attempt(session, item, reference, attempt, [still_hot] if still_hot else [])
        session.bundle.append(record)
        if record.status != STATUS_INVALID:
            break
    return record


def _attempt(session: Session, item: Item, reference: Optional[Item], attempt: int,
             prior_reasons: List[str]) -> MeasurementRecord:
    job = Job(
        model=ModelToRun(onnx_path=item.onnx_path, input_shapes=item.input_shapes),
        reference=ModelToRun(onnx_path=reference.onnx_path, input_shapes=reference.input_shapes) if reference else None,
        settings=session.settings, protocol=session.protocol, sysroot=session.sysroot,
        mnn_cache_dir=session.bundle.cache_dir("mnn"))
    started = utc_now()
    result = session.worker.run(job, session.protocol.timeout_s)
    if result.error is not None:
        status, reasons = STATUS_FAILED, [result.error]
    else:
        reasons = prior_reasons + validity_reasons(result, session.protocol)
        status = STATUS_INVALID if reasons else STATUS_OK
    fields = result.model_dump(exclude={"error"})
    return MeasurementRecord(
        record_id=uuid.uuid4().hex, session_id=session.session_id, item_id=item.ref.item_id, item_kind=item.kind,
        model=item.ref, spec=item.spec, reference=reference.ref if reference else None, settings=session.settings,
        protocol=session.protocol, input_shapes=item.input_shapes, status=status, reasons=reasons, attempt=attempt,
        started_utc=started, finished_utc=utc_now(), error=result.error, **fields)


def _cool_down(session: Session) -> Optional[str]:
    """Wait on temperature, not a fixed sleep: to --cooldown-mc, or by default to a margin below the board's
    throttle point. Returns why the wait gave up, if it did; a machine without sensors never waits."""
    from edge_agent.device.snapshot import take_snapshot, wait_for_cooldown
    from edge_agent.device.sysroot import SysRoot

    root = SysRoot(session.sysroot)
    target_mc = session.protocol.cooldown_target_mc
    if target_mc is None:
        throttle_mc = take_snapshot(root).throttle_temp_mc
        if throttle_mc is None:
            return None
        target_mc = throttle_mc - COOLDOWN_MARGIN_MC
    return wait_for_cooldown(root, target_mc, session.protocol.cooldown_timeout_s)
