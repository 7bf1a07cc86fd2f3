"""Open, lock, append to and read result bundles (layout in edge_agent.bundle.schema)."""

import fcntl
import json
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional

from pydantic import ValidationError

from edge_agent.bundle.files import atomic_write, disk_error, fsync_dir, read_versioned_json
from edge_agent.bundle.schema import (BUNDLE_FORMAT, SUPPORTED_MANIFEST_VERSIONS, SUPPORTED_RECORD_VERSIONS, Manifest,
                                      MeasurementRecord)
from edge_agent.errors import BundleError

MANIFEST = "manifest.json"
MEASUREMENTS = "measurements.jsonl"
MODELS_DIR = "models"
# Regenerable files (space models built from specs, MNN conversions): kept beside the bundle, never packed.
CACHE_DIR = ".cache"
LOCK = ".lock"


@dataclass
class RecordsRead:
    records: List[MeasurementRecord] = field(default_factory=list)
    torn_lines: int = 0  # lines that do not parse: a write cut short by a crash or a full disk
    torn_line_numbers: List[int] = field(default_factory=list)


def read_manifest(bundle_dir: str) -> Manifest:
    path = os.path.join(bundle_dir, MANIFEST)
    if not os.path.exists(path):
        raise BundleError("{} is not a bundle (no {})".format(bundle_dir, MANIFEST))
    return read_versioned_json(path, BUNDLE_FORMAT, SUPPORTED_MANIFEST_VERSIONS, Manifest, "an edge-agent manifest")


def read_records(bundle_dir: str) -> RecordsRead:
    """Every parseable record; a torn or corrupt line is counted and skipped, never fatal."""
    result = RecordsRead()
    path = os.path.join(bundle_dir, MEASUREMENTS)
    if not os.path.exists(path):
        return result
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            record = _parse_record(line, path, number)
            if record is None:
                result.torn_lines += 1
                result.torn_line_numbers.append(number)
            else:
                result.records.append(record)
    return result


def _parse_record(line: bytes, path: str, number: int) -> Optional[MeasurementRecord]:
    try:
        data = json.loads(line.decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("schema_version") not in SUPPORTED_RECORD_VERSIONS:
        raise BundleError("{} line {} has record schema version {!r}; this agent reads {}".format(
            path, number, data.get("schema_version"), list(SUPPORTED_RECORD_VERSIONS)))
    try:
        return MeasurementRecord.model_validate(data)
    except ValidationError:
        return None


class Bundle:
    """An open, exclusively locked bundle. Use as a context manager."""

    def __init__(self, path: str, manifest: Manifest, lock_fd: int):
        self.path = path
        self.manifest = manifest
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: str, make_manifest: Callable[[], Manifest]) -> "Bundle":
        """Open an existing bundle or create a new one; never adopts a directory that holds something else."""
        if os.path.exists(path) and not os.path.isdir(path):
            raise BundleError("{} exists and is not a bundle directory".format(path))
        existed = os.path.isdir(path) and os.path.exists(os.path.join(path, MANIFEST))
        if os.path.isdir(path) and not existed and os.listdir(path):
            raise BundleError("{} is a non-empty directory that is not a bundle; choose another --out".format(path))
        try:
            os.makedirs(os.path.join(path, MODELS_DIR), exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, path) from exc
        lock_fd = acquire_lock(path)
        try:
            if not existed:
                atomic_write(os.path.join(path, MANIFEST), make_manifest().model_dump_json(indent=2))
            bundle = cls(path, read_manifest(path), lock_fd)
            bundle._end_torn_line()
        except BaseException:
            os.close(lock_fd)
            raise
        return bundle

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def records(self) -> RecordsRead:
        return read_records(self.path)

    def append(self, record: MeasurementRecord) -> None:
        """One JSON line, flushed and fsynced before returning: a kill -9 loses at most the record in flight."""
        self.append_many([record])

    def append_many(self, records: Iterable[MeasurementRecord]) -> None:
        path = os.path.join(self.path, MEASUREMENTS)
        payload = b"".join(r.model_dump_json().encode("utf-8") + b"\n" for r in records)
        try:
            with open(path, "ab") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise disk_error(exc, path) from exc

    def store_model(self, content: bytes, sha256: str) -> str:
        """Keep the exact bytes measured, by content; returns the path relative to the bundle."""
        relative = os.path.join(MODELS_DIR, sha256 + ".onnx")
        target = os.path.join(self.path, relative)
        if not os.path.exists(target):
            atomic_write(target, content)
        return relative

    def cache_dir(self, name: str) -> str:
        path = os.path.join(self.path, CACHE_DIR, name)
        os.makedirs(path, exist_ok=True)
        return path

    def _end_torn_line(self) -> None:
        """A crash mid-write can leave a last line without its newline; end it so the next record stays whole."""
        path = os.path.join(self.path, MEASUREMENTS)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            return
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        fsync_dir(self.path)


def acquire_lock(path: str) -> int:
    lock_path = os.path.join(path, LOCK)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise BundleError("{} is in use by another edge-agent (pid {})".format(path, holder)) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    return fd
