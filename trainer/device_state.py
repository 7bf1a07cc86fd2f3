"""What a device was and how it behaved while measuring, kept at ingest beside the dataset's rows (which hold only
latencies and validity), so that `trainer report` can show a lab each device's fingerprint and state.

DIR/devices/<device>/bundles/<bundle_id>.json, one per ingested bundle and device: the bundle manifest's fingerprint
and protocol, and a summary of the per-record device snapshots (clock, temperature, throttling, load) and of the
records' validity and reasons.
"""

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from edge_agent.bundle.schema import STATUS_FAILED, STATUS_INVALID, Manifest, MeasurementRecord
from trainer.dataset import Dataset

BUNDLES_DIR = "bundles"
TOP_REASONS = 8


def summary_path(dataset: Dataset, device: str, bundle_id: str) -> Path:
    return dataset.device_dir(device) / BUNDLES_DIR / "{}.json".format(re.sub(r"[^A-Za-z0-9._-]", "_", bundle_id))


def save_summary(dataset: Dataset, device: str, label: str, manifest: Manifest,
                 records: Sequence[MeasurementRecord]) -> None:
    """The device's summary of one bundle (its records of that device only), written atomically."""
    summary = {"bundle": label, "bundle_id": manifest.bundle_id, "created_utc": manifest.created_utc,
               "agent_version": manifest.agent_version, "fingerprint": manifest.fingerprint,
               "protocol": manifest.protocol.model_dump(mode="json"), "state": state_summary(records),
               "validity": validity_summary(records)}
    path = summary_path(dataset, device, manifest.bundle_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def load_summaries(dataset: Dataset, device: str) -> List[Dict[str, Any]]:
    """The device's bundle summaries, oldest bundle first; none for a device imported from a table or ingested
    before summaries were kept."""
    directory = dataset.device_dir(device) / BUNDLES_DIR
    paths = sorted(directory.glob("*.json")) if directory.is_dir() else []
    found = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    return sorted(found, key=lambda s: s.get("created_utc") or "")


def state_summary(records: Sequence[MeasurementRecord]) -> Dict[str, Any]:
    """Ranges over the snapshots taken before and after every item: what could have changed its speed."""
    from edge_agent.device.rpi import decode_throttled

    snaps = [s for r in records for s in (r.state_before, r.state_after) if s is not None]
    bits = 0
    for snap in snaps:
        bits |= snap.throttled_bits or 0
    throttle_points = [s.throttle_temp_mc / 1000 for s in snaps if s.throttle_temp_mc]
    return {
        "snapshots": len(snaps),
        "cpu_mhz": _range(f / 1000 for s in snaps for f in s.cpu_cur_freq_khz if f),
        "arm_mhz": _range(s.arm_clock_hz / 1e6 for s in snaps if s.arm_clock_hz),
        "temp_c": _range(s.max_temp_mc / 1000 for s in snaps if s.max_temp_mc is not None),
        "throttle_temp_c": max(throttle_points) if throttle_points else None,
        "throttled_read": any(s.throttled_bits is not None for s in snaps),
        "throttled_flags": decode_throttled(bits),
        "load_avg_1m": _range(s.load_avg_1m for s in snaps if s.load_avg_1m is not None),
        "swap_used_mib_max": max((s.swap_used_bytes / 2 ** 20 for s in snaps if s.swap_used_bytes is not None),
                                 default=None),
    }


def validity_summary(records: Sequence[MeasurementRecord]) -> Dict[str, Any]:
    """Counts by status and the most common reasons an item was not valid, numbers masked so that alike reasons
    ("arm clock fell from 1500 to 600 MHz") count together."""
    reasons: Counter = Counter()
    for record in records:
        for reason in record.reasons or ([record.error] if record.error else []):
            reasons[re.sub(r"\d+(\.\d+)?", "#", reason)] += 1
    return {"records": len(records), "valid": sum(1 for r in records if r.valid),
            "invalid": sum(1 for r in records if r.status == STATUS_INVALID),
            "failed": sum(1 for r in records if r.status == STATUS_FAILED),
            "reasons": [[reason, count] for reason, count in reasons.most_common(TOP_REASONS)]}


def _range(values) -> Optional[List[float]]:
    """[min, max] of the values, None when there are none (the sensor was absent)."""
    values = list(values)
    return [min(values), max(values)] if values else None
