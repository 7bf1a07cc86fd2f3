"""ONNX -> graph encoding for the predictors (BRP-NAS style), from the graph itself so any model can be predicted.

Nodes are the ONNX nodes (facts from kernels.analysis after shape inference) plus one global node joined to every
node in both directions; edges follow tensors from producer to consumer. Node features: op-type one-hot over the
vocabulary (+ "other", + "global"), then NUMERIC_FEATURES log-scaled. Static features: STATIC_FEATURES log-scaled.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

ENCODING_VERSION = 1
DEFAULT_VOCABULARY: Tuple[str, ...] = (
    "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "Relu", "Clip", "HardSwish", "HardSigmoid",
    "Sigmoid", "Add", "Mul", "Concat", "Split", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean",
    "Reshape", "Flatten", "Transpose", "Pad", "Identity", "Softmax",
)
NUMERIC_FEATURES = ("kernel_h", "kernel_w", "stride_h", "stride_w", "groups", "depthwise", "cin", "cout", "in_h",
                    "in_w", "flops", "params", "bytes_moved")
STATIC_FEATURES = ("total_flops", "total_params", "total_bytes", "input_elements", "batch", "nodes")


@dataclass(frozen=True)
class GraphEncoding:
    x: np.ndarray  # float32 [nodes, features]; the last node is the global node
    edge_index: np.ndarray  # int64 [2, edges]
    static: np.ndarray  # float32 [len(STATIC_FEATURES)]

    @property
    def total_flops(self) -> float:
        return float(np.expm1(self.static[0]))


def vocabulary_hash(vocabulary: Sequence[str]) -> str:
    text = json.dumps({"version": ENCODING_VERSION, "vocabulary": list(vocabulary)})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def feature_count(vocabulary: Sequence[str]) -> int:
    return len(vocabulary) + 2 + len(NUMERIC_FEATURES)


def model_sha256(model) -> str:
    return hashlib.sha256(model.SerializeToString()).hexdigest()


def encode_model(model, vocabulary: Sequence[str] = DEFAULT_VOCABULARY) -> GraphEncoding:
    from kernels.analysis import analyze

    infos = analyze(model)
    index = {name: i for i, name in enumerate(vocabulary)}
    width = feature_count(vocabulary)
    n = len(infos)
    x = np.zeros((n + 1, width), dtype=np.float32)
    numeric = len(vocabulary) + 2
    for row, info in enumerate(infos):
        x[row, index.get(info.op_type, len(vocabulary))] = 1.0
        depthwise = float(info.groups > 1 and info.groups == info.cin)
        x[row, numeric:] = np.log1p(np.maximum(0, np.asarray(
            [info.kernel_hw[0], info.kernel_hw[1], info.stride[0], info.stride[1], info.groups - 1, depthwise,
             info.cin, info.cout, info.in_hw[0], info.in_hw[1], info.flops, info.params, info.bytes_moved],
            dtype=np.float64)))
    totals = [sum(i.flops for i in infos), sum(i.params for i in infos), sum(i.bytes_moved for i in infos)]
    x[n, len(vocabulary) + 1] = 1.0
    x[n, numeric + 10:] = np.log1p(totals)
    edges = _edges(infos)
    edge_index = np.asarray(edges, dtype=np.int64).reshape(-1, 2).T if edges else np.zeros((2, 0), np.int64)
    glob = np.concatenate([np.stack([np.arange(n), np.full(n, n)]), np.stack([np.full(n, n), np.arange(n)])], axis=1)
    batch, elements = _input_size(model)
    static = np.log1p(np.asarray(totals + [elements, batch, n], dtype=np.float64)).astype(np.float32)
    return GraphEncoding(x, np.concatenate([edge_index, glob], axis=1).astype(np.int64), static)


def _edges(infos) -> List[Tuple[int, int]]:
    producer: Dict[str, int] = {}
    for i, info in enumerate(infos):
        for name in info.outputs:
            producer[name] = i
    return [(producer[name], i) for i, info in enumerate(infos) for name in info.inputs if name in producer]


def _input_size(model) -> Tuple[int, int]:
    """(batch, elements) of the first real (non-initializer) input; unknown dims count as 1."""
    weights = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in weights:
            continue
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                for d in value.type.tensor_type.shape.dim]
        return (dims[0] if dims else 1), int(np.prod(dims)) if dims else 1
    return 1, 1
