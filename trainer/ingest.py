"""`trainer ingest`: verified bundles (directories or `edge-agent pack` archives) -> dataset rows."""

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from edge_agent.bundle.schema import (
    KIND_REFERENCE,
    Manifest,
    MeasurementRecord,
    RunSettings,
)
from edge_agent.bundle.store import MANIFEST, MODELS_DIR
from edge_agent.errors import BundleError, InputError
from trainer.archive import (
    SUMS_NAME,
    compute_sums,
    content_hash,
    safe_extract,
    sha256_file,
    verify_sums,
)
from trainer.dataset import Dataset, Source

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True)
class IngestReport:
    bundle: str
    devices: List[str]
    added: int
    records: int
    invalid: int
    torn_lines: int
    already_ingested: bool


def device_name(fingerprint: Dict[str, object], settings: RunSettings) -> str:
    """Device = hardware + runtime + threads + optimization level + model precision when not fp32 (in
    RunSettings.level()): each changes which kernels run and how fast."""
    key = fingerprint.get("device_key")
    if not key:
        raise InputError("the bundle's fingerprint has no device_key; name the device with --device")
    return "{}-{}-{}t-{}".format(key, settings.runtime, settings.threads, settings.level())


def bundle_paths(paths: Sequence[Path]) -> List[Tuple[Path, str]]:
    """(path, label) of every bundle the arguments name. A bundle directory or an archive is itself, labelled by its
    name; any other directory (a fleet's fetched results, say) stands for every archive below it, in path order,
    each labelled by its path below that directory, so that boards whose archives share a name stay apart."""
    out: List[Tuple[Path, str]] = []
    for path in map(Path, paths):
        if not path.is_dir() or (path / MANIFEST).is_file():
            out.append((path, path.name))
            continue
        found = sorted(p for p in path.rglob("*") if p.name.endswith(ARCHIVE_SUFFIXES) and p.is_file())
        if not found:
            raise InputError("{}: neither a bundle directory (no {}) nor a directory of .tar.gz archives".format(
                path, MANIFEST))
        out += [(p, p.relative_to(path).as_posix()) for p in found]
    return out


def ingest(path: Path, dataset: Dataset, device: Optional[str] = None, label: Optional[str] = None) -> IngestReport:
    """One bundle (a directory or an archive); `label` names it in the dataset's sources (default: its name)."""
    path = Path(path)
    label = label or path.name
    if path.is_dir():
        return _ingest_dir(path, label, dataset, device)
    if not path.is_file():
        raise InputError("{}: no such bundle directory or archive".format(path))
    if not path.name.endswith(ARCHIVE_SUFFIXES):
        raise InputError("{}: expected a bundle directory or a .tar.gz from `edge-agent pack`".format(path))
    # Extract inside the dataset directory so nothing ever lands outside it, even on a crash.
    incoming = dataset.root / ".incoming"
    incoming.mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=str(incoming)))
    try:
        bundle_dir = safe_extract(path, scratch)
        if not (bundle_dir / SUMS_NAME).is_file():
            raise BundleError("{}: the archive has no {}; re-pack it with `edge-agent pack`".format(path, SUMS_NAME))
        return _ingest_dir(bundle_dir, label, dataset, device)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _ingest_dir(bundle_dir: Path, label: str, dataset: Dataset, device: Optional[str]) -> IngestReport:
    from edge_agent.bundle.store import read_manifest, read_records
    from edge_agent.fusion.rules import load_tables, save_table

    if (bundle_dir / SUMS_NAME).is_file():
        digest = verify_sums(bundle_dir)
    else:
        digest = content_hash(compute_sums(bundle_dir))
    manifest = read_manifest(str(bundle_dir))
    read = read_records(str(bundle_dir))
    if dataset.has_source(digest):
        # Rewritten even so: a dataset from before device summaries were kept gains them by ingesting again.
        _save_summaries(dataset, label, manifest, read.records, device)
        return IngestReport(label, [], 0, 0, 0, 0, True)
    _verify_models(bundle_dir)
    rows = _rows(read.records, manifest, device)
    rule_tables = load_tables(str(bundle_dir))
    for record in read.records:
        # A quantized model is encoded as its fp32 graph; the device's precision says INT8
        model_file = bundle_dir / MODELS_DIR / "{}.onnx".format(record.model.graph_sha256)
        if model_file.is_file():
            dataset.store_model(record.model.graph_sha256, model_file)
    devices = sorted({row["device"] for row in rows})
    for table in rule_tables:  # a kernel LUT partitions models with its device's rules
        save_table(str(dataset.device_dir(device or device_name(manifest.fingerprint, table.settings))), table)
    added = dataset.append(rows, Source(digest, "bundle", label, ",".join(devices), len(rows)))
    _save_summaries(dataset, label, manifest, read.records, device)
    invalid = sum(1 for row in rows if not row["valid"])
    return IngestReport(label, devices, added, len(rows), invalid, read.torn_lines, False)


def _save_summaries(dataset: Dataset, label: str, manifest: Manifest, records: List[MeasurementRecord],
                    device: Optional[str]) -> None:
    """Each device's fingerprint and state during the bundle (trainer.device_state), which the rows do not keep."""
    from trainer.device_state import save_summary

    by_device: Dict[str, List[MeasurementRecord]] = {}
    for record in records:
        by_device.setdefault(device or device_name(manifest.fingerprint, record.settings), []).append(record)
    for name, mine in by_device.items():
        save_summary(dataset, name, label, manifest, mine)


def _verify_models(bundle_dir: Path) -> None:
    """Models are stored under their sha256: a renamed or altered file is caught even without SHA256SUMS."""
    models = bundle_dir / MODELS_DIR
    for model_file in sorted(models.glob("*.onnx")) if models.is_dir() else []:
        if sha256_file(model_file) != model_file.stem:
            raise BundleError("{}: content does not match its sha256 name (tampered or corrupt)".format(model_file))


def _rows(records: List[MeasurementRecord], manifest: Manifest, device: Optional[str]) -> List[Dict[str, object]]:
    # Which standalone reference measurement each session's items belong to: the session's first valid one.
    session_reference: Dict[str, str] = {}
    for record in records:
        if record.item_kind == KIND_REFERENCE and record.valid:
            session_reference.setdefault(record.session_id, record.record_id)
    return [_row(record, manifest, device or device_name(manifest.fingerprint, record.settings),
                 session_reference.get(record.session_id)) for record in records]


def _row(record: MeasurementRecord, manifest: Manifest, device: str,
         reference_record: Optional[str]) -> Dict[str, object]:
    from edge_agent.stats import interleaved_ratio, summarize

    settings = record.settings
    latency = reference_latency = ratio = cv = None
    if record.samples_ns and any(record.samples_ns):
        summary = summarize(record.samples_ns)
        latency, cv = summary.median_ms, summary.cv
    if record.item_kind == KIND_REFERENCE:
        reference_latency, ratio = latency, (1.0 if latency else None)
    elif record.reference_samples_ns and any(record.reference_samples_ns) and latency:
        reference_latency = summarize(record.reference_samples_ns).median_ms
        ratio = interleaved_ratio(record.samples_ns, record.reference_samples_ns)
    reference_item = record.item_id if record.item_kind == KIND_REFERENCE else (
        record.reference.item_id if record.reference else None)
    return {
        "row_id": record.record_id, "device": device, "source": manifest.bundle_id, "record_id": record.record_id,
        "item_id": record.item_id, "item_kind": record.item_kind, "model_sha256": record.model.graph_sha256,
        "spec_json": json.dumps(record.spec, sort_keys=True) if record.spec is not None else None,
        "runtime": settings.runtime, "runtime_version": settings.runtime_version, "threads": settings.threads,
        "opt_level": settings.level(),
        "status": record.status, "valid": bool(record.valid and latency),
        "reference_item_id": reference_item, "reference_record_id": reference_record,
        "latency_ms": latency, "reference_latency_ms": reference_latency, "ratio": ratio, "cv": cv,
    }
