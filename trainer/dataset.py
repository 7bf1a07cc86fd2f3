"""The training dataset: one Parquet table of measurements, the ONNX models by sha256, and a ledger of what was
ingested (so re-ingesting the same bundle or table adds nothing).

DIR/
  measurements.parquet   one row per measurement (ROW_FIELDS)
  sources.json           every ingested bundle or table, by content hash
  models/<sha256>.onnx   models measured by bundles or named by tables (import-table --models)
  encodings/             graph encodings cached by model hash (trainer.encoding)
  devices/<device>/rules/  the device's fusion rule tables (edge_agent.fusion.rules), for kernel lookup tables
"""

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from edge_agent.errors import InputError

DATASET_FORMAT = "edge-latency-dataset"
DATASET_VERSION = 1
MODEL_KINDS = ("model", "subnet", "reference")

# Column name -> pyarrow type name. latency_ms is the median of the item's samples; ratio is the drift-free
# interleaved ratio to the reference (bundles) or latency / the table's reference row (tables); latency_std_ms is a
# table's standard deviation of the latency, where it has one.
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
        self._check_format(create)

    @property
    def table_path(self) -> Path:
        return self.root / "measurements.parquet"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def encodings_dir(self) -> Path:
        return self.root / "encodings"

    def device_dir(self, device: str) -> Path:
        """Per-device files beside the table (fusion rule tables under rules/, laid out as in a bundle)."""
        return self.root / "devices" / re.sub(r"[^A-Za-z0-9._+-]", "_", device)

    def _check_format(self, create: bool) -> None:
        meta = self.root / "dataset.json"
        if not meta.exists():
            if not create and any(self.root.iterdir()):
                raise InputError("{}: not a trainer dataset (no dataset.json)".format(self.root))
            _write_json(meta, {"format": DATASET_FORMAT, "version": DATASET_VERSION})
            return
        data = json.loads(meta.read_text(encoding="utf-8"))
        if data.get("format") != DATASET_FORMAT or data.get("version") != DATASET_VERSION:
            raise InputError("{}: dataset format {!r} version {!r} is not supported (expected {} {})".format(
                self.root, data.get("format"), data.get("version"), DATASET_FORMAT, DATASET_VERSION))

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
        if not self.table_path.exists():
            return None
        import pyarrow.parquet as pq

        filters = [("device", "in", sorted(devices))] if devices is not None else None
        return pq.read_table(self.table_path, columns=columns, filters=filters, schema=_schema())

    def devices(self) -> List[str]:
        table = self.arrow(columns=["device"])
        return sorted(set(table.column("device").to_pylist())) if table is not None else []

    def append(self, rows: List[Dict[str, Any]], source: Source) -> int:
        """Add rows whose row_id is new and record the source; returns how many rows were added."""
        return self.append_sources([(source, rows)])[0]

    def append_sources(self, batches: Sequence[Tuple[Source, List[Dict[str, Any]]]]) -> List[int]:
        """append() for several sources at once, rewriting the table once; returns the rows added per source."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        existing = self.arrow()
        known = set(existing.column("row_id").to_pylist()) if existing is not None else set()
        fresh_counts, fresh = [], []
        for _, rows in batches:
            new = [row for row in rows if row["row_id"] not in known]
            known.update(row["row_id"] for row in new)
            fresh_counts.append(len(new))
            fresh += new
        names = [name for name, _ in ROW_FIELDS]
        added = pa.Table.from_pylist([{name: row.get(name) for name in names} for row in fresh], schema=_schema())
        table = pa.concat_tables([existing, added]) if existing is not None else added
        tmp = self.table_path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.table_path)
        kept = [s.__dict__ for s in self.sources()]
        kept += [dict(source.__dict__, rows=count) for (source, _), count in zip(batches, fresh_counts)]
        _write_json(self.root / "sources.json", kept)
        return fresh_counts

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


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
