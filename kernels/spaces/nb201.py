"""NAS-Bench-201: the standard CIFAR network around a 4-node cell, built from the cell's arch string.

Network: 3×3 conv stem (16 ch) + BN; three stages of 5 cells (C = 16, 32, 64) joined by residual reduction blocks
(ReLU-Conv3×3/2-BN → ReLU-Conv3×3-BN, shortcut AvgPool2×2 → Conv1×1); BN-ReLU; global average pool; linear 10.
Cell node j sums op(node i) over every i < j, as the NAS-Bench-201 code computes it (and as its public latency
tables measured it): every edge is computed, `none` included (Zero: x · 0), `skip_connect` passes its input, each
nor_conv_1x1 / nor_conv_3x3 edge is its own ReLU → Conv → BN, avg_pool_3x3 is stride 1 with padding excluded. A cell
whose output is unreachable from its input names no network and is refused.
Version 2 computes every edge; version 1 dropped dead and `none` edges, which made thousands of different archs
(measured at different latencies) one network.
Spec: `{"arch": "|nor_conv_3x3~0|+|...|"}`.
"""

import itertools
from typing import List, Set, Tuple

import numpy as np
import onnx

from kernels.builder import GraphBuilder
from kernels.errors import SpaceError
from kernels.spaces import register_space
from kernels.spaces.base import Space, SubnetSpec

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from) in arch-string order
STAGE_CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
NUM_CLASSES = 10
REFERENCE_INDEX = 1462

Cell = Tuple[str, ...]  # one op per edge, in EDGES order


def parse_arch(arch: str) -> Cell:
    """The six edge ops of an arch string, validated."""
    nodes = arch.strip().strip("+").split("+") if isinstance(arch, str) else []
    if len(nodes) != 3:
        raise SpaceError("nb201 arch string must have 3 '+'-separated nodes, got {!r}".format(arch))
    ops = []
    for j, node in enumerate(nodes, start=1):
        entries = [e for e in node.split("|") if e]
        if len(entries) != j:
            raise SpaceError("nb201 arch node {} needs {} edges, got {!r}".format(j, j, node))
        for i, entry in enumerate(entries):
            op, _, source = entry.partition("~")
            if op not in OPS or source != str(i):
                raise SpaceError("nb201 arch edge {!r} is not op~{} with op in {}".format(entry, i, ", ".join(OPS)))
            ops.append(op)
    return tuple(ops)


def format_arch(cell: Cell) -> str:
    parts, k = [], 0
    for j in (1, 2, 3):
        parts.append("|" + "|".join("{}~{}".format(cell[k + i], i) for i in range(j)) + "|")
        k += j
    return "+".join(parts)


def check_reachable(cell: Cell) -> None:
    """SpaceError unless data flows from the cell input to its output through edges other than `none`."""
    reached: Set[int] = {0}
    for (j, i), op in sorted(zip(EDGES, cell)):
        if op != "none" and i in reached:
            reached.add(j)
    if 3 not in reached:
        raise SpaceError("nb201 cell {} is refused: its output is not reachable from its input".format(
            format_arch(cell)))


def arch_to_spec(arch: str) -> SubnetSpec:
    cell = parse_arch(arch)
    check_reachable(cell)
    return SubnetSpec(NB201Space.name, NB201Space.version, {"arch": format_arch(cell)})


def spec_to_arch(spec: SubnetSpec) -> str:
    return NB201Space().spec_from_dict(spec.to_dict()).choices["arch"]


def all_cells() -> List[Cell]:
    """All 15,625 cells in a fixed order (itertools.product over OPS), unreachable ones included."""
    return [tuple(c) for c in itertools.product(OPS, repeat=len(EDGES))]


def _is_live(cell: Cell) -> bool:
    try:
        check_reachable(cell)
    except SpaceError:
        return False
    return True


def _edge(b: GraphBuilder, x: str, op: str) -> str:
    if op == "skip_connect":
        return x
    if op == "none":
        return b.op("Mul", [x, b.scalar(0.0)], b.shape(x), prefix="zero")
    if op == "avg_pool_3x3":
        return b.pool(x, "avg", kernel=3, stride=1, pad=1, count_include_pad=False)
    kernel = 3 if op == "nor_conv_3x3" else 1
    return b.conv(b.act(x, "relu"), b.channels(x), kernel=kernel, act="none")


def _cell(b: GraphBuilder, x: str, cell: Cell) -> str:
    values = [x]
    for j in (1, 2, 3):
        value = ""
        for (to, i), op in zip(EDGES, cell):
            if to == j:
                term = _edge(b, values[i], op)
                value = b.add(value, term) if value else term
        values.append(value)
    return values[3]


def _reduction(b: GraphBuilder, x: str, cout: int) -> str:
    a = b.conv(b.act(x, "relu"), cout, kernel=3, stride=2, act="none")
    a = b.conv(b.act(a, "relu"), cout, kernel=3, act="none")
    shortcut = b.conv(b.pool(x, "avg", kernel=2, stride=2), cout, kernel=1, bn=False, bias=False, act="none")
    return b.add(a, shortcut)


@register_space
class NB201Space(Space):
    name = "nb201"
    version = 2
    input_shape = (1, 3, 32, 32)
    description = "NAS-Bench-201 CIFAR network: 4-node cell, 5 ops per edge, 3 stages x 5 cells (C=16/32/64)"
    reference_description = "every edge nor_conv_3x3 (NB201 index {})".format(REFERENCE_INDEX)

    def reference_spec(self) -> SubnetSpec:
        return arch_to_spec(format_arch(("nor_conv_3x3",) * len(EDGES)))

    def num_choices(self) -> int:
        return len(_live_cells())

    def validate(self, spec: SubnetSpec) -> None:
        if set(spec.choices) != {"arch"}:
            raise SpaceError("nb201 spec choices must be exactly {'arch': ARCH_STRING}")
        cell = parse_arch(spec.choices["arch"])
        if format_arch(cell) != spec.choices["arch"]:
            raise SpaceError("nb201 arch string is not canonical: {!r}".format(spec.choices["arch"]))
        check_reachable(cell)

    def sample(self, n: int, seed: int) -> List[SubnetSpec]:
        """Uniform without replacement over the cells with a reachable output, the reference excepted."""
        reference = self.reference_spec().choices["arch"]
        pool = [format_arch(c) for c in _live_cells() if format_arch(c) != reference]
        if not 0 <= n <= len(pool):
            raise SpaceError("nb201 holds {} sampleable cells; cannot sample {}".format(len(pool), n))
        picks = np.random.RandomState(seed).choice(len(pool), size=n, replace=False)
        return [SubnetSpec(self.name, self.version, {"arch": pool[int(k)]}) for k in picks]

    def build(self, spec: SubnetSpec, seed: int = 0, fold_bn: bool = True) -> onnx.ModelProto:
        self._check_spec(spec)
        cell = parse_arch(spec.choices["arch"])
        b = GraphBuilder(self.input_shape, seed=seed, fold_bn=fold_bn, name="nb201_" + spec.id)
        x = b.conv(b.input, STAGE_CHANNELS[0], kernel=3, act="none")
        for stage, channels in enumerate(STAGE_CHANNELS):
            if stage:
                x = _reduction(b, x, channels)
            for _ in range(CELLS_PER_STAGE):
                x = _cell(b, x, cell)
        x = b.act(b.batch_norm(x), "relu")
        return b.build([b.fc(b.global_pool(x), NUM_CLASSES)])


_LIVE: List[Cell] = []


def _live_cells() -> List[Cell]:
    if not _LIVE:
        _LIVE.extend(c for c in all_cells() if _is_live(c))
    return _LIVE
