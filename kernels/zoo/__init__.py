"""Well-known CNN architectures built with kernels.builder (no downloads, no torch): the unseen models a kernel LUT is
scored on. Layer counts and widths follow the papers; weights are random (latency does not depend on them).
`build(name, hw)` returns the ONNX model; NAMES lists every architecture."""

from typing import Callable, Dict

import onnx

from kernels.builder import GraphBuilder
from kernels.errors import KernelsError
from kernels.zoo import mobile, classic

_BUILDERS: Dict[str, Callable[[GraphBuilder], str]] = dict(classic.BUILDERS, **mobile.BUILDERS)
NAMES = tuple(sorted(_BUILDERS))


def build(name: str, hw: int = 96, classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    if name not in _BUILDERS:
        raise KernelsError("unknown architecture {!r}; choose one of: {}".format(name, ", ".join(NAMES)))
    b = GraphBuilder(input_shape=(1, 3, hw, hw), seed=seed, name=name)
    features = _BUILDERS[name](b)
    return b.build([b.fc(b.global_pool(features), classes)])
