"""`edge-agent pack`: a bundle as one .tar.gz with a SHA256SUMS member covering every file, for scp or a USB stick."""

import hashlib
import io
import os
import tarfile
import time
from typing import List, Tuple

from edge_agent.bundle.files import disk_error, fsync_dir
from edge_agent.bundle.store import CACHE_DIR, LOCK, acquire_lock, read_manifest
from edge_agent.errors import BundleError

CHECKSUMS = "SHA256SUMS"


def bundle_files(bundle_dir: str) -> List[str]:
    """Relative paths of every regular file worth carrying; lock and temp files stay behind."""
    found = []
    for parent, dirs, files in os.walk(bundle_dir):
        dirs[:] = sorted(d for d in dirs if not (parent == bundle_dir and d == CACHE_DIR))
        for name in sorted(files):
            if name == LOCK or ".tmp-" in name or name == CHECKSUMS:
                continue
            path = os.path.join(parent, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            found.append(os.path.relpath(path, bundle_dir))
    return found


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_bundle(bundle_dir: str) -> Tuple[str, int]:
    """Write BUNDLE_DIR.tar.gz beside the bundle; returns (archive path, number of files)."""
    bundle_dir = os.path.normpath(bundle_dir)
    read_manifest(bundle_dir)
    archive = bundle_dir + ".tar.gz"
    if os.path.exists(archive):
        raise BundleError("{} already exists; move it away first (packing never overwrites)".format(archive))
    lock_fd = acquire_lock(bundle_dir)  # a bundle still being written would be packed half-done
    try:
        files = bundle_files(bundle_dir)
        _write_archive(bundle_dir, files, archive)
    finally:
        os.close(lock_fd)
    return archive, len(files)


def _write_archive(bundle_dir: str, files: List[str], archive: str) -> None:
    top = os.path.basename(bundle_dir)
    sums = "".join("{}  {}\n".format(sha256_file(os.path.join(bundle_dir, f)), f) for f in files).encode("utf-8")
    partial = "{}.tmp-{}".format(archive, os.getpid())
    try:
        with open(partial, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for relative in files:
                    tar.add(os.path.join(bundle_dir, relative), arcname="{}/{}".format(top, relative),
                            recursive=False)
                info = tarfile.TarInfo("{}/{}".format(top, CHECKSUMS))
                info.size, info.mtime, info.mode = len(sums), int(time.time()), 0o644
                tar.addfile(info, io.BytesIO(sums))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, archive)
    except OSError as exc:
        if os.path.exists(partial):
            os.remove(partial)
        raise disk_error(exc, archive) from exc
    fsync_dir(os.path.dirname(os.path.abspath(archive)))
