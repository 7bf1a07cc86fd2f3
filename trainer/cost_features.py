"""What a graph encoding's nodes are on a CPU, beyond their op type: the conv kind (dense k×k, 1×1, depthwise,
grouped) and which point-wise nodes a runtime runs inside the kernel before them. Derived from the structural
encoding (trainer.encoding), so node-cost predictors need no new encoding format.
"""

from typing import List, Sequence

import numpy as np

from trainer.encoding import NUMERIC_FEATURES, GraphEncoding

CONV_KINDS = ("conv_kxk", "conv_1x1", "conv_depthwise", "conv_grouped")


def numeric_features(encoding: GraphEncoding, vocabulary_size: int) -> np.ndarray:
    """[nodes, NUMERIC_FEATURES] the encoding's numeric node facts, unscaled (the global node left out)."""
    return np.expm1(encoding.x[:-1, vocabulary_size + 2:].astype(np.float64))


def _column(numeric: np.ndarray, name: str) -> np.ndarray:
    return numeric[:, NUMERIC_FEATURES.index(name)]


def op_index(encoding: GraphEncoding, vocabulary_size: int) -> np.ndarray:
    """Op index per node (the global node left out); vocabulary_size means "other"."""
    return encoding.x[:-1, :vocabulary_size + 1].argmax(axis=1)


def conv_kinds(encoding: GraphEncoding, vocabulary: Sequence[str]) -> np.ndarray:
    """[nodes, 4] one-hot of CONV_KINDS for Conv nodes (zeros for other ops)."""
    numeric = numeric_features(encoding, len(vocabulary))
    conv = op_index(encoding, len(vocabulary)) == list(vocabulary).index("Conv")
    depthwise = conv & (_column(numeric, "depthwise") > 0.5)
    grouped = conv & ~depthwise & (np.rint(_column(numeric, "groups")) > 0)
    dense = conv & ~depthwise & ~grouped
    pointwise = dense & (np.rint(_column(numeric, "kernel_h")) <= 1)
    return np.stack([dense & ~pointwise, pointwise, depthwise, grouped], axis=1).astype(np.float64)


POINTWISE_OPS = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid",
                 "PRelu", "LeakyRelu", "Tanh")


def fused_pointwise(encoding: GraphEncoding, vocabulary: Sequence[str]) -> np.ndarray:
    """bool [nodes]: point-wise nodes that only ever see one tensor's values — an activation after a conv or an add,
    or a chain of them such as hard-swish exported as Add, Clip, Mul, Div — which runtimes run inside the kernel
    that made the tensor or as one fused kernel, not one pass per ONNX node. A node that combines two tensors (a
    residual add, a squeeze-excite gate) starts a chain of its own."""
    n = encoding.x.shape[0] - 1
    ops = op_index(encoding, len(vocabulary))
    pointwise = np.isin(ops, [list(vocabulary).index(op) for op in POINTWISE_OPS if op in vocabulary])
    src, dst = encoding.edge_index
    flow = (src < n) & (dst < n)
    producers: List[List[int]] = [[] for _ in range(n)]
    for a, b in zip(src[flow].tolist(), dst[flow].tolist()):
        producers[b].append(a)
    root = np.arange(n)
    fused = np.zeros(n, dtype=bool)
    for node in range(n):  # graph order is topological
        sources = {int(root[p]) if pointwise[p] else p for p in producers[node]}
        if pointwise[node] and len(sources) == 1:
            root[node], fused[node] = sources.pop(), True
    return fused
