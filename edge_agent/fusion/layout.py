"""Blocked tensor layouts: which kernels a runtime runs on a blocked layout (onnxruntime's NCHWc, MNN's NC4HW4) and
how many tensor elements it converts between layouts, in a whole model and in each kernel measured alone.

A kernel measured alone converts its plain input into the blocked layout and its output back; inside a model a run
of blocked kernels converts only where it meets an op that needs the plain layout (a Flatten, a Gemm, a conv whose
channel count the runtime does not block), so a sum of standalone kernels over-counts conversions by a share that
depends on the network (docs/kernel-lut.md). Which kernels run blocked depends on the runtime, its version, the
CPU's vector width and the channel count, so it is probed on the device (edge_agent.fusion.layout_probe) and stored
with the fusion rules, never written down here.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

from pydantic import BaseModel, Field

from edge_agent.fusion.ops import ACTIVATION_CLASSES, op_class
from edge_agent.fusion.partition import reader_counts

PROBE_CHANNELS = 48  # channel counts 1..PROBE_CHANNELS are probed; larger ones repeat with the probed period
LAYOUT_KINDS = ("conv", "group_conv", "dwconv", "maxpool", "avgpool", "global_avgpool")
# Ops whose layout the runtime decides: probed between two blocked convs (layout_probe.follow_model).
FOLLOW_PROBES = ("broadcast_mul", "reshape", "fc")
# Elementwise ops on inputs of one shape run on whatever layout their inputs share, on every runtime here.
_FOLLOWERS = frozenset(("add", "mul", "bn", "concat") + ACTIVATION_CLASSES)
_PROBED_CLASSES = {"reshape": "reshape", "transpose": "reshape", "fc": "fc"}
_POOLS = {"MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "global_avgpool"}


class ConversionCost(BaseModel):
    """One timing of layout conversions (edge_agent.fusion.layout_cost): a blocked 1x1 conv alone and two chained,
    as ratios to the chain interleaved with them; the chain keeps the tensor between the convs blocked."""

    channels: int
    hw: int
    elements: int  # of the tensor between the two convs
    single_ratio: float  # one conv alone
    overhead_ratio: float  # an empty call
    chain_median_ns: float

    @property
    def per_conversion_ns(self) -> float:
        """Two convs alone minus the chain (call overheads off) saved two conversions of `elements`."""
        saved = 2 * (self.single_ratio - self.overhead_ratio) - (1.0 - self.overhead_ratio)
        return saved * self.chain_median_ns / 2


class LayoutRules(BaseModel):
    source: str  # where the facts came from: "ort-optimized-graph" | "mnn-oplist"
    blocked: Dict[str, List[int]]  # layout kind -> probed channel counts that run blocked
    plain_input: Dict[str, List[int]]  # the blocked ones that read a plain input with no conversion
    period: Dict[str, int]  # layout kind -> the probed pattern's period, to extend it past PROBE_CHANNELS
    keeps: Dict[str, bool] = Field(default_factory=dict)  # FOLLOW_PROBES name -> runs on a blocked input as it is
    costs: List[ConversionCost] = Field(default_factory=list)  # none: conversions are counted but cost nothing

    def cost_ns(self, converted: "Conversions") -> float:
        """ns = a * tensors + b * elements, with a and b >= 0 fitted to the timings by least squares."""
        a, b = self.cost_coefficients()
        return a * converted.tensors + b * converted.elements

    def cost_coefficients(self) -> Tuple[float, float]:
        if len(self.costs) < 2:
            return 0.0, 0.0
        return nonnegative_line([c.elements for c in self.costs], [max(c.per_conversion_ns, 0.0) for c in self.costs])

    def is_blocked(self, kind: str, channels: int) -> bool:
        return self._probed(kind, channels) in self.blocked.get(kind, ())

    def reads_plain(self, kind: str, channels: int) -> bool:
        return self._probed(kind, channels) in self.plain_input.get(kind, ())

    def _probed(self, kind: str, channels: int) -> int:
        period = max(self.period.get(kind, 1), 1)
        if channels <= PROBE_CHANNELS:
            return channels
        return channels - period * -(-(channels - PROBE_CHANNELS) // period)


def nonnegative_line(x: Sequence[float], y: Sequence[float]) -> Tuple[float, float]:
    """(a, b) >= 0 minimising sum (a + b x - y)^2: the unconstrained line if it is feasible, else the better of the
    two one-parameter fits (the board has numpy but not scipy's nnls)."""
    import numpy as np

    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    candidates = [(0.0, 0.0), (max(float(ys.mean()), 0.0), 0.0)]
    if float(xs @ xs) > 0:
        candidates.append((0.0, max(float(xs @ ys / (xs @ xs)), 0.0)))
    if len(set(xs.tolist())) > 1:
        b, a = np.polyfit(xs, ys, 1)
        if a >= 0 and b >= 0:
            candidates.append((float(a), float(b)))
    return min(candidates, key=lambda ab: float(np.sum((ab[0] + ab[1] * xs - ys) ** 2)))


def pattern_period(blocked: Sequence[int], top: int = PROBE_CHANNELS) -> int:
    """The smallest period among 1, 2, 4, ..., 16 that the upper third of the probed range repeats with."""
    members = set(blocked)
    for period in (1, 2, 4, 8, 16):
        if all((c in members) == (c - period in members) for c in range(top - top // 3 + 1, top + 1)):
            return period
    return 16


def layout_kind(info) -> Optional[Tuple[str, int]]:
    """(layout kind, channel count the runtime blocks by) of a node (kernels.analysis.NodeInfo), or None."""
    if info.op_type == "Conv":
        if op_class("Conv", info.groups, info.cin, info.cout) == "dwconv":
            return "dwconv", info.cin
        if info.groups > 1:
            return "group_conv", info.cin // info.groups
        return "conv", info.cin
    if info.op_type in _POOLS:
        return _POOLS[info.op_type], info.cin
    return None


@dataclass(frozen=True)
class Conversions:
    """Layout conversions: how many tensors are converted and their elements (each costs a call and a copy)."""

    tensors: int = 0
    elements: int = 0

    def __add__(self, other: "Conversions") -> "Conversions":
        return Conversions(self.tensors + other.tensors, self.elements + other.elements)

    def __sub__(self, other: "Conversions") -> "Conversions":
        return Conversions(self.tensors - other.tensors, self.elements - other.elements)


def conversions(infos: Sequence, graph_inputs: Set[str], graph_outputs: Set[str], rules: LayoutRules) -> Conversions:
    """What the runtime converts between layouts running these nodes (in topological order) as one model whose
    inputs and outputs are plain."""
    sizes = _tensor_sizes(infos)
    produced = set(graph_inputs)
    blocked: Set[str] = set()
    converted: Set[Tuple[str, str]] = set()
    for info in infos:
        activations = [name for name in info.inputs if name in produced]
        kind = layout_kind(info)
        if kind is not None and rules.is_blocked(*kind):
            if rules.reads_plain(*kind):  # it takes the plain layout only: a blocked input goes back first
                converted.update((name, "out") for name in activations if name in blocked)
            else:
                converted.update((name, "in") for name in activations if name not in blocked)
            blocked.update(info.outputs)
        elif _follows(info, activations, blocked, rules):
            blocked.update(info.outputs)
        else:
            converted.update((name, "out") for name in activations if name in blocked)
        produced.update(info.outputs)
    converted.update((name, "out") for name in graph_outputs if name in blocked)
    return Conversions(len(converted), sum(sizes.get(name, 0) for name, _ in converted))


def net_conversions(infos: Sequence, kernel_nodes: Sequence[Sequence[str]], graph_inputs: Set[str],
                    graph_outputs: Set[str], rules: LayoutRules) -> Conversions:
    """The model's conversions minus those its kernels paid when each was measured alone: what a sum of standalone
    kernel latencies gets wrong about layouts (negative when the kernels alone converted more)."""
    by_name = {info.name: info for info in infos}
    activations = set(graph_inputs).union(*(info.outputs for info in infos))
    readers = reader_counts(infos)
    alone = Conversions()
    for names in kernel_nodes:
        members = [by_name[n] for n in names]
        inside = {t for info in members for t in info.outputs}
        read_inside = reader_counts(members)
        inputs = {t for info in members for t in info.inputs if t in activations and t not in inside}
        outputs = {t for t in inside if t in graph_outputs or readers.get(t, 0) > read_inside.get(t, 0)}
        alone += conversions(members, inputs, outputs, rules)
    return conversions(infos, graph_inputs, graph_outputs, rules) - alone


def _follows(info, activations: List[str], blocked: Set[str], rules: LayoutRules) -> bool:
    """Whether an op whose inputs are all blocked runs on them as they are. Elementwise ops on one shape do; a
    broadcast one (squeeze-excite's Mul of a map by per-channel weights), reshapes and Gemms as probed (onnxruntime
    converts for them, MNN's op list does not). A Concat stays blocked when every input's channels fill whole
    blocks, which is the alignment the runtime's max pool needs (onnxruntime: multiples of its vector width)."""
    cls = op_class(info.op_type)
    if not activations or not all(n in blocked for n in activations):
        return False
    if cls in _PROBED_CLASSES:
        return rules.keeps.get(_PROBED_CLASSES[cls], False)
    if cls not in _FOLLOWERS:
        return False
    shapes = [shape for name, shape in zip(info.inputs, info.in_shapes) if name in activations]
    if info.op_type == "Concat":
        return all(len(s) == 4 and rules.is_blocked("maxpool", int(s[1])) for s in shapes)
    return len(set(shapes)) == 1 or rules.keeps.get("broadcast_mul", False)


def _tensor_sizes(infos: Sequence) -> Dict[str, int]:
    """Elements of every tensor the nodes read or write whose shape is known."""
    from kernels.analysis import numel

    return {name: numel(shape) for info in infos
            for name, shape in list(zip(info.inputs, info.in_shapes)) + list(zip(info.outputs, info.out_shapes))
            if name and numel(shape)}
