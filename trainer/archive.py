"""Checksums and safe extraction of packed bundles (`edge-agent pack`: NAME.tar.gz holding NAME/ and NAME/SHA256SUMS)."""

import hashlib
import os
import tarfile
from pathlib import Path
from typing import Dict, List

from edge_agent.errors import BundleError

SUMS_NAME = "SHA256SUMS"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    from edge_agent.bundle.pack import sha256_file as pack_sha256

    return pack_sha256(str(path))


def parse_sums(text: str, origin: str) -> Dict[str, str]:
    """`<hex>  <relative path>` lines (sha256sum format) -> {path: hex}."""
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        name = name.lstrip("*")
        if not sep or len(digest) != 64 or not name:
            raise BundleError("{}: line {} of {} is not '<sha256>  <path>'".format(origin, number, SUMS_NAME))
        sums[name] = digest.lower()
    return sums


def verify_sums(bundle_dir: Path) -> str:
    """Check every file against SHA256SUMS (and that no file is missing or unlisted); return the bundle's content
    hash (the sha256 of its sorted sums), which makes ingest idempotent."""
    sums_path = bundle_dir / SUMS_NAME
    sums = parse_sums(sums_path.read_text(encoding="utf-8"), str(bundle_dir))
    present = set(_bundle_files(bundle_dir))
    missing = sorted(set(sums) - present)
    if missing:
        raise BundleError("{}: {} is listed in {} but missing (truncated bundle?)".format(
            bundle_dir, missing[0], SUMS_NAME))
    unlisted = sorted(present - set(sums))
    if unlisted:
        raise BundleError("{}: {} is not covered by {}".format(bundle_dir, unlisted[0], SUMS_NAME))
    for name, expected in sorted(sums.items()):
        if sha256_file(bundle_dir / name) != expected:
            raise BundleError("{}: sha256 of {} does not match {} (tampered or corrupt)".format(
                bundle_dir, name, SUMS_NAME))
    return content_hash(sums)


def compute_sums(bundle_dir: Path) -> Dict[str, str]:
    return {name: sha256_file(bundle_dir / name) for name in _bundle_files(bundle_dir)}


def _bundle_files(bundle_dir: Path) -> List[str]:
    """The files `edge-agent pack` carries (no lock, temp or cache files), as posix paths."""
    from edge_agent.bundle.pack import bundle_files

    return [Path(name).as_posix() for name in bundle_files(str(bundle_dir))]


def content_hash(sums: Dict[str, str]) -> str:
    lines = "".join("{}  {}\n".format(sums[name], name) for name in sorted(sums))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    parts = Path(name).parts
    if name.startswith("/") or os.path.isabs(name) or ".." in parts or "\\" in name:
        raise BundleError("{}: refusing member {!r}: it points outside the bundle".format(archive, name))
    if not (member.isfile() or member.isdir()):
        raise BundleError("{}: refusing member {!r}: links and devices are not allowed".format(archive, name))


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a packed bundle into the empty directory dest; return the bundle directory (dest/NAME).

    Every member is checked before anything is written: no absolute paths, no `..`, no links or devices, a single
    top-level directory. Truncation surfaces as a tarfile error and becomes a BundleError."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            tops = set()
            for member in members:
                _check_member(member, archive)
                tops.add(Path(member.name).parts[0])
            if len(tops) != 1:
                raise BundleError("{}: expected one top-level directory, found {}".format(archive, len(tops)))
            for member in members:
                _extract_member(tar, member, dest)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a real I/O failure (disk full, permissions), not a damaged archive
        raise BundleError("{}: not a readable .tar.gz (truncated or corrupt): {}".format(archive, exc)) from None
    return dest / tops.pop()


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    target = (dest / member.name).resolve()
    if dest.resolve() not in target.parents and target != dest.resolve():
        raise BundleError("refusing member {!r}: it resolves outside the extraction directory".format(member.name))
    if member.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(member)
    with open(target, "wb") as out:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            out.write(chunk)
