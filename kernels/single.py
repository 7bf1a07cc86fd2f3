"""Single-kernel models: one conv, one pool, one add, ... on a given input, for kernel profiling.

`build_kernel_model(kernel_type, config, seed=0, fold_bn=True)`; `KERNEL_TYPES[name]` lists the config fields each
type needs (`required`) and those with defaults. `hw` is an int (square) or [h, w]. The graph inputs are named
`input` (and `input2` for two-operand kernels: add, mul, concat); read the shapes from `model.graph.input`.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import onnx

from kernels.builder import ACTIVATIONS, GraphBuilder
from kernels.errors import KernelsError


@dataclass(frozen=True)
class KernelType:
    name: str
    description: str
    required: Tuple[str, ...]
    defaults: Dict[str, object] = field(default_factory=dict)


def _conv(b: GraphBuilder, c: dict) -> str:
    return b.conv(b.input, c["cout"], kernel=c["kernel"], stride=c["stride"], groups=c["groups"], bn=c["bn"],
                  act=c["act"])


def _dwconv(b: GraphBuilder, c: dict) -> str:
    return b.dwconv(b.input, kernel=c["kernel"], stride=c["stride"], bn=c["bn"], act=c["act"])


def _pool(kind: str) -> Callable[[GraphBuilder, dict], str]:
    def build(b: GraphBuilder, c: dict) -> str:
        return b.pool(b.input, kind, kernel=c["kernel"], stride=c["stride"], pad=c["pad"])
    return build


def _second_input(b: GraphBuilder, channels: int) -> str:
    n, _, h, w = b.shape(b.input)
    return b.add_input((n, channels, h, w), "input2")


def _add(b: GraphBuilder, c: dict) -> str:
    return b.add(b.input, _second_input(b, c["cin"]), act=c["act"])


def _mul(b: GraphBuilder, c: dict) -> str:
    n, channels, h, w = b.shape(b.input)
    shape = {"channel": (n, channels, 1, 1), "full": (n, channels, h, w)}.get(c["operand"])
    if shape is None:
        raise KernelsError("kernel mul: operand must be 'channel' or 'full', got {!r}".format(c["operand"]))
    return b.multiply(b.input, b.add_input(shape, "input2"))


def _concat(b: GraphBuilder, c: dict) -> str:
    return b.concat([b.input, _second_input(b, c.get("cin2") or c["cin"])])


_BUILDERS: Dict[str, Callable[[GraphBuilder, dict], str]] = {
    "conv": _conv,
    "group_conv": _conv,
    "dwconv": _dwconv,
    "maxpool": _pool("max"),
    "avgpool": _pool("avg"),
    "global_avgpool": lambda b, c: b.global_pool(b.input, "avg"),
    "fc": lambda b, c: b.fc(b.input, c["cout"], act=c["act"]),
    "add": _add,
    "mul": _mul,
    "concat": _concat,
    "channel_shuffle": lambda b, c: b.channel_shuffle(b.input, c["groups"]),
    "se": lambda b, c: b.squeeze_excite(b.input, ratio=c["ratio"], gate=c["gate"]),
    "act": lambda b, c: b.act(b.input, c["act"]),
    "bn": lambda b, c: b.batch_norm(b.input),
}

KERNEL_TYPES: Dict[str, KernelType] = {k.name: k for k in (
    KernelType("conv", "Conv (+BN)(+activation); BN folded unless fold_bn=False",
               ("hw", "cin", "cout", "kernel", "stride"), {"groups": 1, "bn": True, "act": "relu"}),
    KernelType("group_conv", "grouped Conv (1 < groups < cin) (+BN)(+activation): conv with groups required",
               ("hw", "cin", "cout", "kernel", "stride", "groups"), {"bn": True, "act": "relu"}),
    KernelType("dwconv", "depthwise Conv (groups = cin = cout) (+BN)(+activation)",
               ("hw", "cin", "kernel", "stride"), {"bn": True, "act": "relu"}),
    KernelType("maxpool", "MaxPool", ("hw", "cin", "kernel", "stride"), {"pad": 0}),
    KernelType("avgpool", "AveragePool (padding excluded from the average)", ("hw", "cin", "kernel", "stride"),
               {"pad": 0}),
    KernelType("global_avgpool", "GlobalAveragePool", ("hw", "cin")),
    KernelType("fc", "Gemm with bias (+activation) on a (1, cin) input", ("cin", "cout"), {"act": "none"}),
    KernelType("add", "elementwise Add of two inputs (+activation)", ("hw", "cin"), {"act": "none"}),
    KernelType("mul", "Mul of two inputs: input2 has one value per channel (operand 'channel', squeeze-excite's scale) "
               "or the input's shape ('full')", ("hw", "cin"), {"operand": "channel"}),
    KernelType("concat", "Concat of two inputs along channels (input2 has cin2 channels)", ("hw", "cin"),
               {"cin2": 0}),
    KernelType("channel_shuffle", "Reshape-Transpose-Reshape channel shuffle", ("hw", "cin", "groups")),
    KernelType("se", "squeeze-excite: GAP, 1x1 conv+ReLU, 1x1 conv+gate, Mul", ("hw", "cin"),
               {"ratio": 0.25, "gate": "sigmoid"}),
    KernelType("act", "one activation: " + ", ".join(a for a in ACTIVATIONS if a != "none"), ("hw", "cin", "act")),
    KernelType("bn", "standalone BatchNormalization", ("hw", "cin")),
)}


def build_kernel_model(kernel_type: str, config: dict, seed: int = 0, fold_bn: bool = True) -> onnx.ModelProto:
    kind = KERNEL_TYPES.get(kernel_type)
    if kind is None:
        raise KernelsError("unknown kernel type {!r}; choose one of: {}".format(
            kernel_type, ", ".join(sorted(KERNEL_TYPES))))
    full = _complete(kind, config)
    builder = GraphBuilder(_input_shape(kernel_type, full), seed=seed, fold_bn=fold_bn, name=kernel_type)
    return builder.build([_BUILDERS[kernel_type](builder, full)])


def _complete(kind: KernelType, config: dict) -> dict:
    missing = [name for name in kind.required if name not in config]
    unknown = [name for name in config if name not in kind.required and name not in kind.defaults]
    if missing or unknown:
        raise KernelsError("kernel {}: missing {} / unknown {} config fields (needs {}, optional {})".format(
            kind.name, missing, unknown, list(kind.required), sorted(kind.defaults)))
    full = dict(kind.defaults)
    full.update(config)
    return full


def _input_shape(kernel_type: str, config: dict) -> Tuple[int, ...]:
    if kernel_type == "fc":
        return (1, int(config["cin"]))
    hw = config["hw"]
    h, w = (hw, hw) if isinstance(hw, int) else tuple(hw)
    if min(h, w, config["cin"]) < 1:
        raise KernelsError("kernel {}: hw and cin must be positive, got hw={} cin={}".format(
            kernel_type, hw, config["cin"]))
    return (1, int(config["cin"]), int(h), int(w))
