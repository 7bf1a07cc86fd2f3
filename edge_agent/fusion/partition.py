"""Model -> kernels: the device's fusion rules applied to the ONNX graph (facts from kernels.analysis).

A node joins the kernel of the node producing its input when that kernel's head class absorbs the node's class
(RuleTable.absorbed) and nothing else reads the tensor between them; otherwise it starts a kernel of its own.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

import onnx

from edge_agent.fusion.ops import ACTIVATION_CLASSES, op_class

Pairs = FrozenSet[Tuple[str, str]]
# Classes whose kernels are keyed on input size and channels alone.
_SPATIAL = ("conv", "dwconv", "maxpool", "avgpool", "global_avgpool", "global_maxpool", "add", "mul", "concat", "bn")


@dataclass
class Kernel:
    kind: str  # the head's op class: conv, dwconv, fc, maxpool, add, relu, ...
    config: Dict[str, object]  # what the LUT is keyed on (matches kernels.single configs where one exists)
    nodes: List[str] = field(default_factory=list)
    absorbed: List[str] = field(default_factory=list)  # classes folded into the head
    flops: int = 0
    bytes_moved: int = 0

    def key(self) -> str:
        from kernels.spaces.base import canonical_json

        return canonical_json({"kind": self.kind, "config": self.config})


def partition(model: onnx.ModelProto, absorbed: Pairs) -> List[Kernel]:
    from kernels.analysis import analyze

    return partition_infos(analyze(model), {o.name for o in model.graph.output}, absorbed)


def partition_infos(infos: Sequence, graph_outputs: Set[str], absorbed: Pairs) -> List[Kernel]:
    """Kernels of nodes (kernels.analysis.NodeInfo, in topological order); a graph output is never fused past."""
    readers = reader_counts(infos)
    owner: Dict[str, int] = {}  # tensor -> index of the kernel whose last node produced it
    kernels: List[Kernel] = []
    heads = []
    for info in infos:
        cls = op_class(info.op_type, info.groups, info.cin, info.cout)
        target = _absorbing_kernel(info, cls, owner, kernels, readers, graph_outputs, absorbed)
        if target is None:
            kernels.append(Kernel(kind=cls, config={}, nodes=[info.name]))
            heads.append(info)
            target = len(kernels) - 1
        else:
            kernels[target].nodes.append(info.name)
            kernels[target].absorbed.append(cls)
        kernels[target].flops += info.flops
        kernels[target].bytes_moved += info.bytes_moved
        for name in info.outputs:
            owner[name] = target
    for kernel, head in zip(kernels, heads):
        kernel.config = kernel_config(kernel.kind, head, kernel.absorbed)
    return kernels


def reader_counts(infos: Sequence) -> Dict[str, int]:
    """How many times each tensor is read by these nodes."""
    return dict(Counter(name for info in infos for name in info.inputs))


def _absorbing_kernel(info, cls: str, owner: Dict[str, int], kernels: List[Kernel], readers: Dict[str, int],
                      graph_outputs: Set[str], absorbed: Pairs) -> Optional[int]:
    for name in info.inputs:
        index = owner.get(name)
        if index is None or readers.get(name, 0) != 1 or name in graph_outputs:
            continue
        kernel = kernels[index]
        if (kernel.kind, cls) in absorbed and cls not in kernel.absorbed:
            return index
    return None


def kernel_config(kind: str, head, absorbed: List[str]) -> Dict[str, object]:
    """The head's geometry plus what it absorbed; field names follow kernels.single's configs."""
    act = next((c for c in absorbed if c in ACTIVATION_CLASSES), "none")
    hw = _hw_key(*head.in_hw)
    if kind in ("conv", "dwconv"):
        config = {"hw": hw, "cin": head.cin, "kernel": head.kernel_hw[0], "stride": head.stride[0], "act": act}
        if kind == "conv":
            config.update(cout=head.cout, groups=head.groups)
        return _with_extras(config, absorbed)
    if kind == "fc":
        return _with_extras({"cin": head.cin, "cout": head.cout, "act": act}, absorbed)
    if kind in ("maxpool", "avgpool"):
        return {"hw": hw, "cin": head.cin, "kernel": head.kernel_hw[0], "stride": head.stride[0]}
    if kind in ACTIVATION_CLASSES:
        return {"hw": hw, "cin": head.cin, "act": kind}
    if kind == "add":
        return _with_extras({"hw": hw, "cin": head.cin, "act": act}, absorbed)
    if kind == "mul":
        return _with_extras(_mul_config(head, act), absorbed)
    if kind in _SPATIAL:
        return {"hw": hw, "cin": head.cin}
    return {"shape": [list(s) for s in head.in_shapes[:1]]}


def _mul_config(head, act: str) -> Dict[str, object]:
    """Keyed on the output (the factor may come first) and on the factor's form: squeeze-excite's one value per
    channel runs as a broadcast loop per channel on onnxruntime, far slower than an elementwise Mul of the same size."""
    from kernels.analysis import numel

    out = head.out_shapes[0] if head.out_shapes else ()
    sizes = [numel(shape) for shape in head.in_shapes]
    if len(out) != 4 or len(sizes) != 2:
        return {"shape": [list(s) for s in head.in_shapes], "act": act}
    forms = {numel(out): "full", int(out[1]): "channel", 1: "scalar"}
    return {"hw": _hw_key(out[2], out[3]), "cin": int(out[1]), "act": act, "operand": forms.get(min(sizes), "other")}


def _hw_key(height: int, width: int):
    """A square map's side, or [height, width] (kernels.single's `hw`)."""
    return int(height) if height == width else [int(height), int(width)]


def _with_extras(config: Dict[str, object], absorbed: List[str]) -> Dict[str, object]:
    """Absorbed ops other than the activation (a folded BN, a residual Add) change the kernel: keep them in the key."""
    extras = sorted(c for c in absorbed if c not in ACTIVATION_CLASSES)
    if extras:
        config["with"] = extras
    return config
