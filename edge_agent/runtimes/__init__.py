"""Inference runtimes behind one small interface. Each runtime module imports its library lazily."""

import importlib
from typing import Dict, Optional

from edge_agent.errors import InputError

# short name -> (module, distribution name on PyPI)
RUNTIMES: Dict[str, tuple] = {
    "ort": ("edge_agent.runtimes.ort", "onnxruntime"),
    "mnn": ("edge_agent.runtimes.mnn", "MNN"),
}


def get_runtime(name: str):
    """The runtime module for a short name; it exposes `open_session(...)` and `version()`."""
    if name not in RUNTIMES:
        raise InputError("unknown runtime {!r}; choose one of: {}".format(name, ", ".join(sorted(RUNTIMES))))
    return importlib.import_module(RUNTIMES[name][0])


def installed_version(name: str) -> Optional[str]:
    """The installed version of a runtime without importing it (importing MNN prints to stdout)."""
    from importlib import metadata

    try:
        return metadata.version(RUNTIMES[name][1])
    except metadata.PackageNotFoundError:
        return None


def installed_versions() -> Dict[str, Optional[str]]:
    return {name: installed_version(name) for name in RUNTIMES}
