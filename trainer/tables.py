"""`trainer import-table`: public measured tables (one row per architecture, one latency column per device)."""

import csv
import hashlib
import importlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from edge_agent.errors import InputError
from kernels.errors import KernelsError
from trainer.dataset import Dataset, Source

# space -> "module:function" turning an architecture string into the space's spec.
ARCH_PARSERS = {"nb201": "kernels.spaces.nb201:arch_to_spec"}


@dataclass(frozen=True)
class ImportReport:
    imported: int
    skipped_blank: int
    skipped_disconnected: int
    skipped_invalid: int
    reference_ms: float
    already_imported: bool


def item_id_of(spec: Dict[str, object]) -> str:
    from kernels.spaces import spec_from_dict

    return spec_from_dict(spec).id


def arch_parser(space: str) -> Callable[[str], object]:
    if space not in ARCH_PARSERS:
        raise InputError("space {!r} has no architecture-string parser (known: {})".format(
            space, ", ".join(sorted(ARCH_PARSERS))))
    module, _, name = ARCH_PARSERS[space].partition(":")
    return getattr(importlib.import_module(module), name)


def import_table(csv_path: Path, space: str, arch_column: str, latency_column: str, device: str,
                 dataset: Dataset) -> ImportReport:
    from kernels.spaces import get_space

    parse = arch_parser(space)
    reference = get_space(space).reference_spec().to_dict()
    data = Path(csv_path).read_bytes()
    digest = hashlib.sha256(data + json.dumps([space, latency_column, device]).encode("utf-8")).hexdigest()
    lines = data.decode("utf-8").splitlines()
    reader = csv.DictReader(lines)
    for column in (arch_column, latency_column):
        if column not in (reader.fieldnames or []):
            raise InputError("{}: no column {!r} (columns: {})".format(csv_path, column, ", ".join(reader.fieldnames or [])))
    counts = {"blank": 0, "disconnected": 0, "invalid": 0}
    measured: List[Dict[str, object]] = []
    for row in reader:
        parsed = _parse_row(row, arch_column, latency_column, parse, counts)
        if parsed is not None:
            measured.append(parsed)
    ref_id = item_id_of(reference)
    ref_ms = next((m["latency_ms"] for m in measured if m["item_id"] == ref_id), None)
    if ref_ms is None:
        raise InputError("{}: column {!r} has no latency for the space's reference model".format(csv_path, latency_column))
    if dataset.has_source(digest):
        return ImportReport(0, counts["blank"], counts["disconnected"], counts["invalid"], ref_ms, True)
    rows = [_dataset_row(m, device, digest, ref_id, ref_ms) for m in measured]
    added = dataset.append(rows, Source(digest, "table", "{}:{}".format(Path(csv_path).name, latency_column),
                                        device, len(rows)))
    return ImportReport(added, counts["blank"], counts["disconnected"], counts["invalid"], ref_ms, False)


def _parse_row(row: Dict[str, str], arch_column: str, latency_column: str, parse: Callable[[str], object],
               counts: Dict[str, int]) -> Optional[Dict[str, object]]:
    if (row.get("output_connected") or "").strip() == "0":
        counts["disconnected"] += 1
        return None
    text = (row.get(latency_column) or "").strip()
    if not text:
        counts["blank"] += 1
        return None
    try:
        latency = float(text)
    except ValueError:
        latency = math.nan
    if not math.isfinite(latency) or latency <= 0:
        counts["invalid"] += 1
        return None
    try:
        spec = parse(row[arch_column])
    except KernelsError:
        counts["disconnected"] += 1  # the space refuses cells whose output is unreachable
        return None
    return {"item_id": spec.id, "spec": spec.to_dict(), "latency_ms": latency}


def _dataset_row(measured: Dict[str, object], device: str, digest: str, ref_id: str,
                 ref_ms: float) -> Dict[str, object]:
    item_id = str(measured["item_id"])
    latency = float(measured["latency_ms"])
    return {
        "row_id": "table:{}:{}".format(device, item_id), "device": device, "source": digest, "record_id": None,
        "item_id": item_id, "item_kind": "reference" if item_id == ref_id else "subnet", "model_sha256": None,
        "spec_json": json.dumps(measured["spec"], sort_keys=True), "runtime": "table", "runtime_version": None,
        "threads": None, "opt_level": None, "status": "ok", "valid": True, "reference_item_id": ref_id,
        "reference_record_id": "table:{}:{}".format(device, ref_id), "latency_ms": latency,
        "reference_latency_ms": ref_ms, "ratio": latency / ref_ms, "cv": None,
    }
