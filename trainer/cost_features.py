"""Per-node features that say what a node costs on a CPU, derived from a graph encoding (trainer.encoding).

The structural encoding holds op one-hots and log-scaled facts (kernel, stride, groups, channels, input size, FLOPs,
params, bytes). A CPU's cost of a node depends on more than its FLOPs: the conv kind (dense k×k, 1×1, depthwise,
grouped), how much work each output element carries (channels per group × window), arithmetic intensity, channel
counts off the SIMD width (a runtime pads them to its vector blocking), and its neighbours (an activation that
follows a conv is fused into it by most runtimes and costs nothing of its own; one that follows an add is not).
These are derived here, so predictors of node costs need no new encoding format.
"""

from typing import List, Sequence, Tuple

import numpy as np

from trainer.encoding import NUMERIC_FEATURES, GraphEncoding

COST_FEATURES_VERSION = 1
_KINDS = ("conv_kxk", "conv_1x1", "conv_depthwise", "conv_grouped")
_SIMD_WIDTHS = (4, 8, 16)
_LOG_FEATURES = ("kernel_h", "stride_h", "groups", "cin", "cout", "in_h", "in_w", "flops", "params", "bytes_moved")


def _numeric(encoding: GraphEncoding, vocabulary_size: int) -> np.ndarray:
    return np.expm1(encoding.x[:-1, vocabulary_size + 2:].astype(np.float64))


def _column(numeric: np.ndarray, name: str) -> np.ndarray:
    return numeric[:, NUMERIC_FEATURES.index(name)]


def op_index(encoding: GraphEncoding, vocabulary_size: int) -> np.ndarray:
    """Op index per node (the global node left out); vocabulary_size means "other"."""
    return encoding.x[:-1, :vocabulary_size + 1].argmax(axis=1)


def conv_kinds(encoding: GraphEncoding, vocabulary: Sequence[str]) -> np.ndarray:
    """[nodes, 4] one-hot of _KINDS for Conv nodes (zeros for other ops)."""
    numeric = _numeric(encoding, len(vocabulary))
    conv = op_index(encoding, len(vocabulary)) == list(vocabulary).index("Conv")
    depthwise = conv & (_column(numeric, "depthwise") > 0.5)
    grouped = conv & ~depthwise & (np.rint(_column(numeric, "groups")) > 0)
    dense = conv & ~depthwise & ~grouped
    pointwise = dense & (np.rint(_column(numeric, "kernel_h")) <= 1)
    return np.stack([dense & ~pointwise, pointwise, depthwise, grouped], axis=1).astype(np.float64)


def _work_features(numeric: np.ndarray) -> List[np.ndarray]:
    """Output elements, work per output element, arithmetic intensity and SIMD misfits (what FLOPs alone hide)."""
    stride = np.maximum(_column(numeric, "stride_h"), 1.0)
    out_elements = _column(numeric, "cout") * np.maximum(_column(numeric, "in_h") / stride, 1.0) * \
        np.maximum(_column(numeric, "in_w") / stride, 1.0)
    flops, moved = _column(numeric, "flops"), _column(numeric, "bytes_moved")
    per_output = flops / np.maximum(out_elements, 1.0)
    per_group = _column(numeric, "cin") / (np.rint(_column(numeric, "groups")) + 1.0)
    columns = [np.log1p(out_elements), np.log1p(per_output), np.log1p(per_group),
               np.log1p(flops) - np.log1p(moved)]
    for width in _SIMD_WIDTHS:
        for name in ("cin", "cout"):
            channels = np.rint(_column(numeric, name))
            columns.append(((channels > 0) & (channels % width != 0)).astype(np.float64))
    return columns


def _neighbour_ops(encoding: GraphEncoding, vocabulary_size: int) -> Tuple[np.ndarray, np.ndarray]:
    """([nodes, ops] one-hot sum of each node's producers' op types, the same for its consumers); the global node's
    edges are not data flow and are left out."""
    n = encoding.x.shape[0] - 1
    ops = np.eye(vocabulary_size + 1)[op_index(encoding, vocabulary_size)]
    src, dst = encoding.edge_index
    flow = (src < n) & (dst < n)
    producers, consumers = np.zeros_like(ops), np.zeros_like(ops)
    np.add.at(producers, dst[flow], ops[src[flow]])
    np.add.at(consumers, src[flow], ops[dst[flow]])
    return np.minimum(producers, 2.0), np.minimum(consumers, 2.0)


def node_cost_features(encoding: GraphEncoding, vocabulary: Sequence[str]) -> np.ndarray:
    """float32 [nodes, node_feature_count(vocabulary)] for the encoding's nodes (the global node left out)."""
    size = len(vocabulary)
    numeric = _numeric(encoding, size)
    ops = np.eye(size + 1)[op_index(encoding, size)]
    logs = [np.log1p(np.maximum(_column(numeric, name), 0.0)) for name in _LOG_FEATURES]
    producers, consumers = _neighbour_ops(encoding, size)
    parts = [ops, conv_kinds(encoding, vocabulary), np.stack(logs + _work_features(numeric), axis=1),
             producers, consumers]
    return np.concatenate(parts, axis=1).astype(np.float32)


def node_feature_count(vocabulary: Sequence[str]) -> int:
    return 3 * (len(vocabulary) + 1) + len(_KINDS) + len(_LOG_FEATURES) + 4 + 2 * len(_SIMD_WIDTHS)
