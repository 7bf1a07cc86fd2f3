"""Crash-safe file primitives: a power cut leaves either the old file or the new one, never half of one."""

import errno
import json
import os
from typing import Sequence, Type, TypeVar, Union

from edge_agent.errors import BundleError

Model = TypeVar("Model")


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


def read_versioned_json(path: str, format_name: str, versions: Sequence[int], model: Type[Model], what: str) -> Model:
    """Load one of our versioned JSON documents (manifest, rule table, ...) with a one-line error for each way it
    can be wrong: missing, not JSON, another kind of document, a schema version we do not read, a bad field."""
    from pydantic import ValidationError

    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise BundleError("{} is missing".format(path)) from None
    except (OSError, ValueError) as exc:
        raise BundleError("{} is corrupt: {}".format(path, exc)) from None
    if not isinstance(data, dict) or data.get("format") != format_name:
        raise BundleError("{} is not {}".format(path, what))
    if data.get("schema_version") not in versions:
        raise BundleError("{} has {} schema version {!r}; this agent reads {}".format(
            path, what, data.get("schema_version"), list(versions)))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise BundleError("{} does not match the {} schema: {}: {}".format(
            path, what, ".".join(str(p) for p in error["loc"]), error["msg"])) from None
