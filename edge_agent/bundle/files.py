"""Crash-safe file primitives: a power cut leaves either the old file or the new one, never half of one."""

import errno
import os
from typing import Union

from edge_agent.errors import BundleError


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: Union[bytes, str], overwrite: bool = False) -> None:
    """temp -> fsync -> rename -> fsync(dir). Refuses to replace an existing file unless told to."""
    if not overwrite and os.path.exists(path):
        raise BundleError("refusing to overwrite existing file {}".format(path))
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temp = "{}.tmp-{}".format(path, os.getpid())
    try:
        with open(temp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        _remove_quietly(temp)
        raise disk_error(exc, path) from exc
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def disk_error(exc: OSError, path: str) -> BundleError:
    if exc.errno == errno.ENOSPC:
        return BundleError("disk full while writing {}; everything written before is kept".format(path))
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return BundleError("cannot write {}: {}".format(path, exc.strerror))
    return BundleError("writing {} failed: {}".format(path, exc.strerror or exc))


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
