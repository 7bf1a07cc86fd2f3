"""`trainer import-table`: public measured tables (one row per model, one latency column per device).

A row names its model in one of two ways:
- an architecture string of a space (`--space nb201 --arch-column C`): the model is rebuilt from the string, and the
  space's own reference architecture is the reference;
- the name of an ONNX file (`--models DIR --model-column C`): the model is DIR/<name>.onnx, stored in the dataset by
  sha256 and encoded into its encoding cache, and `--reference NAME` names the reference row.
Either way a row's label is its latency / the reference row's latency on the same device, as for bundles.
"""

import csv
import hashlib
import importlib
import io
import json
import math
import time
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from edge_agent.errors import InputError
from kernels.errors import KernelsError
from trainer.dataset import Dataset, Source

# space -> "module:function" turning an architecture string into the space's spec.
ARCH_PARSERS = {"nb201": "kernels.spaces.nb201:arch_to_spec"}
UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
# Everything after the last of these in a --columns glob is its literal suffix, which device names leave out.
GLOB_SPECIALS = "*?[]"
# What the ONNX analyser can raise on a file that parses but is not a graph it can read.
_UNREADABLE = (InputError, KernelsError, ValueError, KeyError, IndexError, TypeError, RuntimeError)


@dataclass(frozen=True)
class ImportReport:
    imported: int
    skipped_blank: int
    skipped_disconnected: int
    skipped_invalid: int
    reference_ms: float
    already_imported: bool


@dataclass(frozen=True)
class NamedTable:
    """How to read a table whose rows name ONNX files; `unit` is the latency cells' unit (us, ms or s)."""
    models_dir: Path
    reference: str
    unit: str = "ms"
    model_column: str = "model"
    latency_columns: Tuple[str, ...] = ()
    devices: Tuple[str, ...] = ()
    columns_glob: Optional[str] = None
    device_prefix: str = ""  # put before every --columns device name (two runtimes' tables name the same columns)


@dataclass(frozen=True)
class DeviceColumn:
    device: str
    column: str
    std_column: Optional[str]  # the column's standard deviations, where the table has them


@dataclass(frozen=True)
class DeviceImport:
    device: str
    column: str
    std_column: Optional[str]
    imported: int
    skipped_blank: int
    skipped_invalid: int  # not a positive number
    skipped_missing: int  # no DIR/<name>.onnx
    skipped_unencodable: int
    reference_ms: Optional[float]
    skipped_reason: Optional[str]  # why the whole device was left out (its reference row has no latency)
    already_imported: bool


@dataclass(frozen=True)
class NamedImportReport:
    devices: List[DeviceImport]
    models: int  # distinct model names in the table
    models_encoded: int
    models_missing: int  # names without a file
    models_unencodable: int  # files that failed to encode (only those with a latency on some device are tried)
    seconds: float


def item_id_of(spec: Dict[str, object]) -> str:
    from kernels.spaces import spec_from_dict

    return spec_from_dict(spec).id


def arch_parser(space: str) -> Callable[[str], object]:
    if space not in ARCH_PARSERS:
        raise InputError("space {!r} has no architecture-string parser (known: {})".format(
            space, ", ".join(sorted(ARCH_PARSERS))))
    module, _, name = ARCH_PARSERS[space].partition(":")
    return getattr(importlib.import_module(module), name)


def paired_columns(latency_columns: Sequence[str], devices: Sequence[str]) -> List[Tuple[str, str]]:
    """[(column, device)] from repeated --latency-column / --device, paired in order."""
    if not latency_columns:
        raise InputError("name the latency columns: --latency-column COL --device NAME (repeatable) or --columns GLOB")
    if len(latency_columns) != len(devices):
        raise InputError("{} --latency-column but {} --device: give one device per column, in the same order".format(
            len(latency_columns), len(devices)))
    if len(set(devices)) != len(devices):
        raise InputError("a --device is named twice: each column needs its own device")
    return list(zip(latency_columns, devices))


def import_table(csv_path: Path, space: str, arch_column: str, latency_column: str, device: str,
                 dataset: Dataset) -> ImportReport:
    from kernels.spaces import get_space

    parse = arch_parser(space)
    reference = get_space(space).reference_spec().to_dict()
    data, fieldnames, table_rows = _read_csv(csv_path)
    digest = hashlib.sha256(data + json.dumps([space, latency_column, device]).encode("utf-8")).hexdigest()
    _require_columns(csv_path, fieldnames, (arch_column, latency_column))
    counts = {"blank": 0, "disconnected": 0, "invalid": 0}
    measured: List[Dict[str, object]] = []
    for row in table_rows:
        parsed = _parse_row(row, arch_column, latency_column, parse, counts)
        if parsed is not None:
            measured.append(parsed)
    ref_id = item_id_of(reference)
    ref_ms = next((m["latency_ms"] for m in measured if m["item_id"] == ref_id), None)
    if ref_ms is None:
        raise InputError("{}: column {!r} has no latency for the space's reference model".format(csv_path, latency_column))
    if dataset.has_source(digest):
        return ImportReport(0, counts["blank"], counts["disconnected"], counts["invalid"], ref_ms, True)
    rows = [_table_row(device, digest, str(m["item_id"]), "reference" if m["item_id"] == ref_id else "subnet",
                       float(m["latency_ms"]), ref_id, ref_ms, spec_json=json.dumps(m["spec"], sort_keys=True))
            for m in measured]
    added = dataset.append(rows, Source(digest, "table", "{}:{}".format(Path(csv_path).name, latency_column),
                                        device, len(rows)))
    return ImportReport(added, counts["blank"], counts["disconnected"], counts["invalid"], ref_ms, False)


def _read_csv(csv_path: Path) -> Tuple[bytes, List[str], List[Dict[str, str]]]:
    data = Path(csv_path).read_bytes()
    try:
        text = data.decode("utf-8-sig")  # -sig: a spreadsheet's byte-order mark is not part of the first column name
    except UnicodeDecodeError as exc:
        raise InputError("{}: not UTF-8 text ({})".format(csv_path, exc.reason)) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return data, list(reader.fieldnames or []), list(reader)


def _require_columns(csv_path: Path, fieldnames: Sequence[str], columns: Sequence[str]) -> None:
    for column in columns:
        if column not in fieldnames:
            raise InputError("{}: no column {!r} (columns: {})".format(csv_path, column, ", ".join(fieldnames)))


def _number(text: Optional[str]) -> Optional[float]:
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _cell_latency(text: Optional[str]) -> Tuple[Optional[float], str]:
    """(latency, "ok"), or (None, why not): "blank", or "invalid" when it is not a positive number."""
    if not (text or "").strip():
        return None, "blank"
    value = _number(text)
    return (value, "ok") if value is not None and value > 0 else (None, "invalid")


def _parse_row(row: Dict[str, str], arch_column: str, latency_column: str, parse: Callable[[str], object],
               counts: Dict[str, int]) -> Optional[Dict[str, object]]:
    if (row.get("output_connected") or "").strip() == "0":
        counts["disconnected"] += 1
        return None
    latency, why = _cell_latency(row.get(latency_column))
    if latency is None:
        counts[why] += 1
        return None
    try:
        spec = parse(row[arch_column])
    except KernelsError:
        counts["disconnected"] += 1  # the space refuses cells whose output is unreachable
        return None
    return {"item_id": spec.id, "spec": spec.to_dict(), "latency_ms": latency}


def _table_row(device: str, digest: str, item_id: str, item_kind: str, latency_ms: float, ref_id: str,
               ref_ms: float, **model: object) -> Dict[str, object]:
    """A dataset row of a table; `model` gives spec_json or model_sha256 (and latency_std_ms where known)."""
    row = {
        "row_id": "table:{}:{}".format(device, item_id), "device": device, "source": digest, "record_id": None,
        "item_id": item_id, "item_kind": item_kind, "model_sha256": None, "spec_json": None, "runtime": "table",
        "runtime_version": None, "threads": None, "opt_level": None, "status": "ok", "valid": True,
        "reference_item_id": ref_id, "reference_record_id": "table:{}:{}".format(device, ref_id),
        "latency_ms": latency_ms, "reference_latency_ms": ref_ms, "ratio": latency_ms / ref_ms, "cv": None,
    }
    row.update(model)
    return row


# -- tables whose rows name ONNX files --------------------------------------------------------------------------------

def device_name(column: str, glob: str) -> str:
    """The device a --columns match files under: the column name without the glob's literal suffix (what follows its
    last wildcard: `*|mean` turns `pixel4|1large|float|mean` into `pixel4|1large|float`); the whole column name where
    that would leave nothing."""
    suffix = glob[max(glob.rfind(c) for c in GLOB_SPECIALS) + 1:]
    return (column[:len(column) - len(suffix)] if suffix else column) or column


def std_column(column: str, fieldnames: Sequence[str]) -> Optional[str]:
    """A latency column's standard-deviation twin: its name with the trailing `mean` turned into `std`."""
    twin = column[:-len("mean")] + "std" if column.endswith("mean") else None
    return twin if twin in fieldnames else None


def plan_columns(csv_path: Path, fieldnames: Sequence[str], table: NamedTable) -> List[DeviceColumn]:
    if table.columns_glob is None:
        pairs = paired_columns(table.latency_columns, table.devices)
    else:
        if table.latency_columns or table.devices:
            raise InputError("--columns names the devices itself: give it without --latency-column / --device")
        pairs = [(c, table.device_prefix + device_name(c, table.columns_glob)) for c in fieldnames
                 if c != table.model_column and fnmatchcase(c, table.columns_glob)]
        if not pairs:
            raise InputError("{}: --columns {!r} matches no column (columns: {})".format(
                csv_path, table.columns_glob, ", ".join(fieldnames)))
        if len({device for _, device in pairs}) != len(pairs):
            raise InputError("--columns {!r}: two columns give the same device name".format(table.columns_glob))
    _require_columns(csv_path, fieldnames, [column for column, _ in pairs])
    return [DeviceColumn(device, column, std_column(column, fieldnames)) for column, device in pairs]


class _Models:
    """The table's ONNX files: each hashed up front (an import's content hash covers them) and encoded at most once,
    on first use, into the dataset's encoding cache, where `trainer fit` finds it by the model's hash."""

    def __init__(self, root: Path, names: Sequence[str], dataset: Dataset):
        from trainer.archive import sha256_file
        from trainer.encoding_cache import EncodingCache

        self.dataset = dataset
        self.paths = {name: root / "{}.onnx".format(name) for name in names if name}
        self.sha256 = {name: sha256_file(path) if path.is_file() else None for name, path in self.paths.items()}
        self.cache = EncodingCache(dataset.encodings_dir)
        self.states: Dict[str, str] = {}

    def state(self, name: str) -> str:
        """"ok" (encoded and stored in the dataset), "missing" or "unencodable"."""
        if name not in self.states:
            self.states[name] = self._encode(name)
        return self.states[name]

    def _encode(self, name: str) -> str:
        if self.sha256[name] is None:
            return "missing"
        try:
            encoding = self.cache.for_file(self.paths[name])
        except _UNREADABLE:
            return "unencodable"
        if len(encoding.x) < 2:  # only the global node: an empty graph says nothing about latency
            return "unencodable"
        self.dataset.store_model(self.sha256[name], self.paths[name])
        return "ok"

    def count(self, state: str) -> int:
        return sum(1 for value in self.states.values() if value == state)


def import_named_table(csv_path: Path, table: NamedTable, dataset: Dataset) -> NamedImportReport:
    """Import every planned column as a device: one Source per device, all their rows appended at once (the
    Parquet table is rewritten once, not once per device)."""
    started = time.monotonic()
    if not Path(table.models_dir).is_dir():
        raise InputError("--models {}: not a directory".format(table.models_dir))
    if table.unit not in UNIT_MS:
        raise InputError("--unit {!r}: choose one of {}".format(table.unit, ", ".join(UNIT_MS)))
    data, fieldnames, rows = _read_csv(csv_path)
    _require_columns(csv_path, fieldnames, [table.model_column])
    plan = plan_columns(csv_path, fieldnames, table)
    names = _model_names(csv_path, rows, table)
    models = _Models(Path(table.models_dir), names, dataset)
    reports, batches = [], []
    known_devices = set(dataset.devices())
    imported = {source.content_hash for source in dataset.sources()}
    for column in plan:
        digest = _named_digest(data, table, column, models)
        if column.device in known_devices and digest not in imported:
            raise InputError("device {!r} is already in the dataset from another table or column: name this one "
                             "apart (--device, --device-prefix)".format(column.device))
        report, device_rows = _device_rows(rows, names, column, table, models, digest)
        if report.skipped_reason is None and digest in imported:
            report = replace(report, imported=0, already_imported=True)
        elif report.skipped_reason is None:
            batches.append((Source(digest, "table", "{}:{}".format(Path(csv_path).name, column.column),
                                   column.device, len(device_rows)), device_rows))
        reports.append(report)
    models.cache.flush()
    added = dict(zip((source.device for source, _ in batches), dataset.append_sources(batches) if batches else []))
    reports = [replace(r, imported=added[r.device]) if r.device in added else r for r in reports]
    missing = sum(1 for sha256 in models.sha256.values() if sha256 is None)
    return NamedImportReport(reports, len(models.paths), models.count("ok"), missing, models.count("unencodable"),
                             time.monotonic() - started)


def _model_names(csv_path: Path, rows: Sequence[Dict[str, str]], table: NamedTable) -> List[str]:
    """Each row's model name ("" for a blank cell: the row is skipped as blank on every device)."""
    names = [(row.get(table.model_column) or "").strip() for row in rows]
    seen = set()
    for name in names:
        if name and name in seen:
            raise InputError("{}: model {!r} has two rows; which one is measured is ambiguous".format(csv_path, name))
        seen.add(name)
    if table.reference not in seen:
        raise InputError("{}: no row names the reference {!r} in column {!r}".format(
            csv_path, table.reference, table.model_column))
    return names


def _named_digest(data: bytes, table: NamedTable, column: DeviceColumn, models: _Models) -> str:
    """What makes a device's import the same one again: the table, how it is read, and the models' contents."""
    options = [table.model_column, table.reference, table.unit, column.column, column.device, column.std_column,
               sorted(models.sha256.items())]
    return hashlib.sha256(data + json.dumps(options).encode("utf-8")).hexdigest()


def _device_rows(rows: Sequence[Dict[str, str]], names: Sequence[str], column: DeviceColumn, table: NamedTable,
                 models: _Models, digest: str) -> Tuple[DeviceImport, List[Dict[str, object]]]:
    """One device's dataset rows and what was skipped."""
    scale = UNIT_MS[table.unit]
    ref_latency, why = _cell_latency(rows[names.index(table.reference)].get(column.column))
    if ref_latency is None:
        reason = "the reference row {!r} has no latency ({})".format(table.reference, why)
        return DeviceImport(column.device, column.column, column.std_column, 0, 0, 0, 0, 0, None, reason, False), []
    ref_ms, ref_id = ref_latency * scale, _item_id(table.reference)
    counts = {"blank": 0, "invalid": 0, "missing": 0, "unencodable": 0}
    out = []
    for row, name in zip(rows, names):
        latency, why = _cell_latency(row.get(column.column)) if name else (None, "blank")
        if latency is not None:
            why = models.state(name)
        if why != "ok":
            counts[why] += 1
            continue
        std = _number(row.get(column.std_column)) if column.std_column else None
        out.append(_table_row(column.device, digest, _item_id(name),
                              "reference" if name == table.reference else "model", latency * scale, ref_id, ref_ms,
                              model_sha256=models.sha256[name],
                              latency_std_ms=std * scale if std is not None and std >= 0 else None))
    report = DeviceImport(column.device, column.column, column.std_column, len(out), counts["blank"],
                          counts["invalid"], counts["missing"], counts["unencodable"], ref_ms, None, False)
    return report, out


def _item_id(name: str) -> str:
    return "model:{}".format(name)
