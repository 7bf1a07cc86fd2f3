"""The training dataset: the measurements as Parquet partitioned by device (hive style), the ONNX models by sha256,
and a ledger of what was ingested (so re-ingesting the same bundle or table adds nothing).

DIR/
  dataset.json             format and version
  measurements/device=<name>/part-<source>.parquet
                           one file per ingested source and device, one row per measurement (ROW_FIELDS); <name> is
                           the device name percent-encoded (partition_name), <source> the source's content hash
  measurements/device=<name>/v1-table.parquet
                           the device's rows of a version-1 dataset's table, moved there by its first append
  measurements.parquet     version 1's single table: read as it is until the first append splits it
  sources.json             every ingested bundle or table, by content hash
  models/<sha256>.onnx     models measured by bundles or named by tables (import-table --models)
  encodings/               graph encodings cached by model hash (trainer.encoding)
  devices/<device>/rules/  the device's fusion rule tables (edge_agent.fusion.rules), for kernel lookup tables

A source's rows are written once, as new files; nothing already written is rewritten (but a version-1 table, split
once), so an ingest costs the size of what it adds plus the row ids of the devices it adds to, not the size of the
dataset.
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple
from urllib.parse import quote, unquote

from edge_agent.errors import InputError

DATASET_FORMAT = "edge-latency-dataset"
# 1: one measurements.parquet, rewritten on every append. 2: measurements/device=<name>/part-<source>.parquet.
# Version 1 datasets are read as they are, and split into partitions on their first append (_upgrade_format).
DATASET_VERSION = 2
READABLE_VERSIONS = (1, 2)
MEASUREMENTS_DIR = "measurements"
LEGACY_PART = "v1-table.parquet"  # a device's rows moved from version 1's table (never a part-*.parquet)
PARTITION_KEY = "device"
MODEL_KINDS = ("model", "subnet", "reference")

# Column name -> pyarrow type name. latency_ms is the median of the item's samples; ratio is the drift-free
# interleaved ratio to the reference (bundles) or latency / the table's reference row (tables); latency_std_ms is a
# table's standard deviation of the latency, where it has one. Every file keeps the device column too, so that one
# file read alone is whole; hive readers take the same value from the directory name.
# New columns go last and are nullable: reading with _schema() fills the columns an older file lacks with nulls, and
# older code ignores the columns it does not know, so DATASET_VERSION need not change for them.
ROW_FIELDS = (
    ("row_id", "string"), ("device", "string"), ("source", "string"), ("record_id", "string"),
    ("item_id", "string"), ("item_kind", "string"), ("model_sha256", "string"), ("spec_json", "string"),
    ("runtime", "string"), ("runtime_version", "string"), ("threads", "int64"), ("opt_level", "string"),
    ("status", "string"), ("valid", "bool_"), ("reference_item_id", "string"), ("reference_record_id", "string"),
    ("latency_ms", "float64"), ("reference_latency_ms", "float64"), ("ratio", "float64"), ("cv", "float64"),
    ("latency_std_ms", "float64"),
)


def partition_name(device: str) -> str:
    """`device=<name>` with every character but ASCII letters, digits and `_.-~` percent-encoded as UTF-8 (RFC 3986):
    one path segment whatever the name holds (`|`, `/`, `=`, spaces), reversible (partition_device), and what
    DuckDB, Polars, Spark and pyarrow decode back to the name when they read the directory as a hive partition."""
    if not device:
        raise InputError("a device name must not be empty")
    return "{}={}".format(PARTITION_KEY, quote(device, safe=""))


def partition_device(directory_name: str) -> Optional[str]:
    """The device a partition directory holds (None for a directory that is not one)."""
    key, sep, value = directory_name.partition("=")
    return unquote(value) if sep and key == PARTITION_KEY and value else None


def part_file_name(content_hash: str) -> str:
    return "part-{}.parquet".format(quote(content_hash, safe=""))


@dataclass(frozen=True)
class Source:
    content_hash: str
    kind: str  # "bundle" | "table"
    name: str
    device: str
    rows: int


def _schema():
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in ROW_FIELDS])


class Dataset:
    def __init__(self, root: Path, create: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            if not create:
                raise InputError("{}: no such dataset directory".format(self.root))
            self.root.mkdir(parents=True)
        self.version = self._check_format(create)

    @property
    def table_path(self) -> Path:
        """Version 1's single table, read when present; nothing writes it any more."""
        return self.root / "measurements.parquet"

    @property
    def measurements_dir(self) -> Path:
        return self.root / MEASUREMENTS_DIR

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def encodings_dir(self) -> Path:
        return self.root / "encodings"

    def device_dir(self, device: str) -> Path:
        """Per-device files beside the table (fusion rule tables under rules/, laid out as in a bundle)."""
        return self.root / "devices" / re.sub(r"[^A-Za-z0-9._+-]", "_", device)

    def partition_dir(self, device: str) -> Path:
        return self.measurements_dir / partition_name(device)

    def _check_format(self, create: bool) -> int:
        meta = self.root / "dataset.json"
        if not meta.exists():
            if not create and any(self.root.iterdir()):
                raise InputError("{}: not a trainer dataset (no dataset.json)".format(self.root))
            _write_json(meta, {"format": DATASET_FORMAT, "version": DATASET_VERSION})
            return DATASET_VERSION
        data = json.loads(meta.read_text(encoding="utf-8"))
        if data.get("format") != DATASET_FORMAT or data.get("version") not in READABLE_VERSIONS:
            raise InputError("{}: dataset format {!r} version {!r} is not supported (expected {} version {})".format(
                self.root, data.get("format"), data.get("version"), DATASET_FORMAT,
                " or ".join(map(str, READABLE_VERSIONS))))
        return int(data["version"])

    def sources(self) -> List[Source]:
        path = self.root / "sources.json"
        if not path.exists():
            return []
        return [Source(**item) for item in json.loads(path.read_text(encoding="utf-8"))]

    def has_source(self, content_hash: str) -> bool:
        return any(s.content_hash == content_hash for s in self.sources())

    def rows(self, devices: Optional[Iterable[str]] = None, columns: Optional[List[str]] = None) -> List[Dict[str, Any]]:
        table = self.arrow(devices, columns)
        return table.to_pylist() if table is not None else []

    def arrow(self, devices: Optional[Iterable[str]] = None, columns: Optional[List[str]] = None):
        """The rows of the devices (all when None) as one pyarrow Table, None when there are none: only those
        devices' partition files are opened (and version 1's table, filtered)."""
        wanted = sorted(set(devices)) if devices is not None else None
        files = self._files(wanted)
        if not files:
            return None
        import pyarrow.dataset as ds

        data = ds.dataset([str(f) for f in files], schema=_schema(), format="parquet")
        return data.to_table(columns=columns, filter=ds.field("device").isin(wanted) if wanted is not None else None)

    def _files(self, devices: Optional[List[str]] = None, skip: Set[str] = frozenset()) -> List[Path]:
        """The Parquet files that may hold the devices' rows (all devices' when None): version 1's table first,
        then each device's part files in name order; part files named in `skip` are left out, and so are the
        table's split (LEGACY_PART) while the table is there."""
        files = [self.table_path] if self.table_path.exists() else []
        skip = set(skip) | ({LEGACY_PART} if files else set())
        if devices is None:
            found = self.measurements_dir.iterdir() if self.measurements_dir.is_dir() else []
            directories = sorted(d for d in found if partition_device(d.name) is not None)
        else:
            directories = [self.partition_dir(device) for device in devices]
        for directory in directories:
            files += sorted(f for f in directory.glob("*.parquet") if f.name not in skip)
        return files

    def devices(self) -> List[str]:
        """From the partition directories' names (no file is opened), and version 1's table's device column."""
        names = set()
        if self.table_path.exists():
            import pyarrow.parquet as pq

            names.update(pq.read_table(self.table_path, columns=["device"]).column("device").unique().to_pylist())
        if self.measurements_dir.is_dir():
            names.update(partition_device(d.name) for d in self.measurements_dir.iterdir()
                         if partition_device(d.name) is not None and any(d.glob("*.parquet")))
        return sorted(names)

    def append(self, rows: List[Dict[str, Any]], source: Source) -> int:
        """Add rows whose row_id is new and record the source; returns how many rows were added."""
        return self.append_sources([(source, rows)])[0]

    def append_sources(self, batches: Sequence[Tuple[Source, List[Dict[str, Any]]]]) -> List[int]:
        """append() for several sources: each source's new rows become one new Parquet file per device, and the
        sources are recorded once at the end; returns the rows added per source. A source's own part files (left
        by an append a crash cut short) are rewritten, not counted as already there, so running it again repairs
        the dataset exactly."""
        self._upgrade_format()
        own = {part_file_name(source.content_hash) for source, _ in batches}
        known: Dict[str, Set[str]] = {}  # device -> row ids already stored, read once per device
        counts = []
        for source, rows in batches:
            by_device: Dict[str, List[Dict[str, Any]]] = {}
            for row in rows:
                by_device.setdefault(row["device"], []).append(row)
            added = 0
            for device, mine in sorted(by_device.items()):
                if device not in known:
                    known[device] = self._row_ids(device, own)
                fresh = _fresh(mine, known[device])
                if fresh:
                    self._write_part(device, source.content_hash, fresh)
                added += len(fresh)
            counts.append(added)
        kept = [s.__dict__ for s in self.sources()]
        kept += [dict(source.__dict__, rows=count) for (source, _), count in zip(batches, counts)]
        _write_json(self.root / "sources.json", kept)
        return counts

    def _row_ids(self, device: str, skip: Set[str]) -> Set[str]:
        files = self._files([device], skip)
        if not files:
            return set()
        import pyarrow.dataset as ds

        data = ds.dataset([str(f) for f in files], schema=_schema(), format="parquet")
        table = data.to_table(columns=["row_id"], filter=ds.field("device") == device)
        return set(table.column("row_id").to_pylist())

    def _write_part(self, device: str, content_hash: str, rows: List[Dict[str, Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = [name for name, _ in ROW_FIELDS]
        table = pa.Table.from_pylist([{name: row.get(name) for name in names} for row in rows], schema=_schema())
        directory = self.partition_dir(device)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / part_file_name(content_hash)
        tmp = target.with_name(target.name + ".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, target)

    def _upgrade_format(self) -> None:
        """Before a version-1 dataset's first new part file, its table is split into one LEGACY_PART file per
        device, the version becomes 2 (version-1 code would not see part files: it must refuse the dataset), and
        the table is removed. While the table is there its rows are read from it and its split is ignored, so a
        crash at any point loses and doubles nothing, and the next append finishes the job."""
        if self.table_path.exists():
            self._split_table()
        if self.version != DATASET_VERSION:
            _write_json(self.root / "dataset.json", {"format": DATASET_FORMAT, "version": DATASET_VERSION})
            self.version = DATASET_VERSION
        if self.table_path.exists():
            self.table_path.unlink()

    def _split_table(self) -> None:
        """The version-1 table as one LEGACY_PART file per device, batch by batch. ParquetFile streams within a row
        group, where a dataset scan decodes a whole one first, and version 1 wrote its table as one row group."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        writers: Dict[str, Any] = {}
        try:
            for batch in map(_conform, pq.ParquetFile(str(self.table_path)).iter_batches(batch_size=65536)):
                for device in pc.unique(batch.column("device")).to_pylist():
                    if device not in writers:
                        directory = self.partition_dir(device)
                        directory.mkdir(parents=True, exist_ok=True)
                        writers[device] = pq.ParquetWriter(str(directory / (LEGACY_PART + ".tmp")), _schema())
                    writers[device].write_batch(batch.filter(pc.equal(batch.column("device"), device)))
        finally:
            for writer in writers.values():
                writer.close()
        for device in writers:
            tmp = self.partition_dir(device) / (LEGACY_PART + ".tmp")
            os.replace(tmp, tmp.with_name(LEGACY_PART))

    def store_model(self, sha256: str, path: Path) -> None:
        target = self.models_dir / "{}.onnx".format(sha256)
        if not target.exists():
            self.models_dir.mkdir(exist_ok=True)
            tmp = target.with_suffix(".tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)

    def model_path(self, sha256: str) -> Optional[Path]:
        path = self.models_dir / "{}.onnx".format(sha256)
        return path if path.exists() else None


def _conform(batch):
    """A batch of an older file in _schema(): columns it lacks as nulls, the others cast (a column that was all
    nulls when written has the null type)."""
    import pyarrow as pa

    schema = _schema()
    columns = [batch.column(field.name).cast(field.type) if field.name in batch.schema.names
               else pa.nulls(batch.num_rows, field.type) for field in schema]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _fresh(rows: List[Dict[str, Any]], known: Set[str]) -> List[Dict[str, Any]]:
    """The rows whose row_id is not in `known` (the first of repeats), adding their ids to it."""
    fresh = []
    for row in rows:
        if row["row_id"] not in known:
            known.add(row["row_id"])
            fresh.append(row)
    return fresh


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
