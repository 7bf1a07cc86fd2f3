"""Predictor kinds, in a registry: a new kind is one module that calls `register`.

Built in: gcn (BRP-NAS-style graph network), mlp (static + aggregated features), flops (FLOPs-linear baseline),
additive (ridge on per-op-group sums), lut (kernel lookup tables), nodecost (a sum of per-node costs priced per
node kind and device), hybrid (nodecost's prices on the device's kernel LUT latencies).
"""

import importlib
from typing import Dict, List, Type

from edge_agent.errors import InputError

# kind -> module that registers it; imported on first use so `trainer --help` never loads torch.
BUILTIN_KINDS: Dict[str, str] = {
    "gcn": "trainer.predictors.gcn",
    "mlp": "trainer.predictors.mlp",
    "flops": "trainer.predictors.flops",
    "additive": "trainer.predictors.additive",
    "lut": "trainer.predictors.lut",
    "nodecost": "trainer.predictors.nodecost",
    "hybrid": "trainer.predictors.hybrid",
}
_REGISTRY: Dict[str, Type] = {}


def register(kind: str, module: str = ""):
    """Class decorator; `module` lets a kind defined outside trainer/ be found by name before it is imported."""
    def decorate(cls):
        cls.kind = kind
        _REGISTRY[kind] = cls
        return cls
    if module:
        BUILTIN_KINDS.setdefault(kind, module)
    return decorate


def kinds() -> List[str]:
    return sorted(set(BUILTIN_KINDS) | set(_REGISTRY))


def predictor_class(kind: str):
    if kind not in _REGISTRY and kind in BUILTIN_KINDS:
        importlib.import_module(BUILTIN_KINDS[kind])
    if kind not in _REGISTRY:
        raise InputError("unknown predictor kind {!r} (known: {})".format(kind, ", ".join(kinds())))
    return _REGISTRY[kind]
