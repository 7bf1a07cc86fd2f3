"""Cell-level graph encoding for spaces whose networks repeat one cell (BRP-NAS encodes the NAS-Bench-201 cell this
way): input node, one node per cell edge with its op one-hot, output node, plus the global node. A separate predictor
input mode — the ONNX-level encoding stays the default, since it predicts any model — that is exact for the space
(every arch its own graph) and small, so predictors run far faster on it.

The mode is the vocabulary: its first entry names the space ("cell:nb201"). The node features keep the ONNX layout
(op one-hot over the vocabulary, "other", "global", NUMERIC_FEATURES left zero) and the static features are the
network's, equal to the ONNX encoding's: every edge of a cell is computed, so each total is the reference network's
plus, per edge, the difference its op makes — measured once per process from a few built networks."""

from typing import Dict, List, Sequence, Set, Tuple

import numpy as np

from edge_agent.errors import InputError
from trainer.encoding import GraphEncoding, feature_count

CELL_PREFIX = "cell:"
# "dead" flags an edge off every input-to-output path of non-`none` edges: the networks BRP-NAS's LatBench measured
# leave those out (their latencies group by the live edges' ops, HELP's and HW-NAS-Bench's by all edges' ops), so
# one encoding serves both kinds of source device.
NB201_CELL_VOCABULARY: Tuple[str, ...] = ("cell:nb201", "input", "output", "none", "skip_connect", "nor_conv_1x1",
                                          "nor_conv_3x3", "avg_pool_3x3", "dead")
CELL_VOCABULARIES: Dict[str, Tuple[str, ...]] = {"nb201": NB201_CELL_VOCABULARY}
_TOTALS: Dict[str, np.ndarray] = {}  # op -> static-feature totals (linear, not log) of the network it is part of


def cell_space(vocabulary: Sequence[str]) -> str:
    """The space of a cell-level vocabulary, "" for an ONNX-level one."""
    first = vocabulary[0] if len(vocabulary) else ""
    return first[len(CELL_PREFIX):] if first.startswith(CELL_PREFIX) else ""


def cell_vocabulary(space: str) -> Tuple[str, ...]:
    if space not in CELL_VOCABULARIES:
        raise InputError("no cell-level encoding for space {!r} (known: {})".format(
            space, ", ".join(sorted(CELL_VOCABULARIES))))
    return CELL_VOCABULARIES[space]


def encode_cell_spec(spec: Dict[str, object], vocabulary: Sequence[str]) -> GraphEncoding:
    from kernels.spaces import spec_from_dict
    from kernels.spaces.nb201 import parse_arch

    space = cell_space(vocabulary)
    subnet = spec_from_dict(spec)
    if subnet.space != space:
        raise InputError("a cell-level predictor of space {!r} cannot encode a {!r} spec".format(space, subnet.space))
    return encode_nb201_cell(parse_arch(subnet.choices["arch"]))


def encode_nb201_cell(cell: Sequence[str]) -> GraphEncoding:
    from kernels.spaces.nb201 import EDGES

    vocabulary = NB201_CELL_VOCABULARY
    live = live_edges(cell)
    n = len(EDGES) + 2  # input, one node per edge, output; then the global node
    x = np.zeros((n + 1, feature_count(vocabulary)), dtype=np.float32)
    x[0, vocabulary.index("input")] = 1.0
    x[n - 1, vocabulary.index("output")] = 1.0
    x[n, len(vocabulary) + 1] = 1.0
    edges: List[Tuple[int, int]] = []
    for k, ((to, source), op) in enumerate(zip(EDGES, cell), start=1):
        x[k, vocabulary.index(op)] = 1.0
        x[k, vocabulary.index("dead")] = float(k - 1 not in live)
        feeders = [0] if source == 0 else [m for m, (t, _) in enumerate(EDGES, start=1) if t == source]
        edges += [(f, k) for f in feeders]
        if to == 3:
            edges.append((k, n - 1))
    glob = [(i, n) for i in range(n)] + [(n, i) for i in range(n)]
    edge_index = np.asarray(edges + glob, dtype=np.int64).T
    return GraphEncoding(x, edge_index, _nb201_static(cell))


def live_edges(cell: Sequence[str]) -> Set[int]:
    """Indices of the edges on some input-to-output path that avoids `none` edges."""
    from kernels.spaces.nb201 import EDGES

    forward, backward = {0}, {3}
    for (to, source), op in sorted(zip(EDGES, cell)):
        if op != "none" and source in forward:
            forward.add(to)
    for (to, source), op in sorted(zip(EDGES, cell), reverse=True):
        if op != "none" and to in backward:
            backward.add(source)
    return {k for k, ((to, source), op) in enumerate(zip(EDGES, cell))
            if op != "none" and source in forward and to in backward}


def _nb201_static(cell: Sequence[str]) -> np.ndarray:
    totals = _nb201_totals()
    reference = totals["nor_conv_3x3"]
    value = reference + sum(totals[op] - reference for op in cell)
    return np.log1p(np.maximum(value, 0.0)).astype(np.float32)


def _nb201_totals() -> Dict[str, np.ndarray]:
    """Per op: the static totals of the network whose first cell edge is that op and every other edge nor_conv_3x3
    (so the difference to the reference is what that op costs on one edge, in all 15 cells)."""
    if not _TOTALS:
        from kernels.spaces import get_space
        from kernels.spaces.nb201 import EDGES, OPS, arch_to_spec, format_arch
        from trainer.encoding import encode_model

        space = get_space("nb201")
        for op in OPS:
            arch = format_arch((op,) + ("nor_conv_3x3",) * (len(EDGES) - 1))
            static = encode_model(space.build(arch_to_spec(arch))).static.astype(np.float64)
            _TOTALS[op] = np.expm1(static)
    return _TOTALS
