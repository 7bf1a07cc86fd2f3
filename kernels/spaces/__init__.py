"""Registry of model spaces (timm-style): each module in this package defines one Space subclass and registers it
with @register_space; modules are discovered on first use, so adding a space is adding a module."""

import importlib
import pkgutil
from typing import Dict, List, Type

from kernels.errors import SpaceError
from kernels.spaces.base import Space, SubnetSpec

__all__ = ["Space", "SubnetSpec", "get_space", "list_spaces", "register_space", "spec_from_dict"]

_REGISTRY: Dict[str, Type[Space]] = {}
_DISCOVERED = []


def register_space(cls: Type[Space]) -> Type[Space]:
    if not cls.name or cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise SpaceError("space name {!r} is empty or already registered".format(cls.name))
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    if _DISCOVERED:
        return
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module("{}.{}".format(__name__, module.name))
    _DISCOVERED.append(True)


def list_spaces() -> List[str]:
    _discover()
    return sorted(_REGISTRY)


def get_space(name: str) -> Space:
    _discover()
    if name not in _REGISTRY:
        raise SpaceError("unknown space {!r}; choose one of: {}".format(name, ", ".join(sorted(_REGISTRY))))
    return _REGISTRY[name]()


def spec_from_dict(d: dict) -> SubnetSpec:
    """A spec of any registered space, validated by that space."""
    if not isinstance(d, dict):
        raise SpaceError("a subnet spec is a JSON object")
    return get_space(str(d.get("space"))).spec_from_dict(d)
