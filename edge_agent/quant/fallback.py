"""Which ops of a quantized model the runtime runs in INT8 and which fall back to fp32, from its own account.

onnxruntime saves the graph it will execute (SessionOptions.optimized_model_filepath): a QDQ conv it can run in
INT8 has become one QLinearConv there (NHWC Transposes around it are layout moves on int8 tensors), and an op it
cannot is still the float op between a DequantizeLinear and a QuantizeLinear. Tensor types are followed through
that graph: a QLinear* or *Integer op is INT8 (its scales are float constants); any other op but a (De)QuantizeLinear
computes in fp32 when one of its tensors that is not a constant is a float.
"""

import os
import tempfile
from typing import Dict, List, Set, Tuple

import onnx
from onnx import TensorProto

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}
_BOUNDARY = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
# Ops that only read a tensor's shape or pass it through name: not compute, whatever the type.
_NOT_COMPUTE = {"Shape", "Size", "Constant", "Identity"}
_INT8_OUTPUT = {"QuantizeLinear", "DynamicQuantizeLinear"}


def ort_account(qdq_path: str, threads: int, opt_level: str) -> Tuple[str, List[str], List[str]]:
    """(evidence source, INT8 kernels, fp32 ops as "OpType:name") of the graph onnxruntime runs at this level."""
    import onnxruntime as ort

    from edge_agent.runtimes.ort import session_options

    with tempfile.TemporaryDirectory(prefix="edge-agent-quant-") as workdir:
        optimized = os.path.join(workdir, "optimized.onnx")
        ort.InferenceSession(qdq_path, sess_options=session_options(threads, opt_level, optimized_model_path=optimized),
                             providers=["CPUExecutionProvider"])
        graph = onnx.load(optimized).graph
    int8, fp32 = split_by_precision(graph)
    # Layout moves onnxruntime inserts around fp32 ops (NCHWc reorders, NHWC Transposes) follow from those ops and
    # are not the model's own: left out of the list
    own = {node.name for node in onnx.load(qdq_path, load_external_data=False).graph.node}
    return "ort-optimized-graph:{}".format(opt_level), int8, [op for op in fp32 if not _inserted_layout(op, own)]


def _inserted_layout(op: str, own_names: Set[str]) -> bool:
    from edge_agent.fusion.evidence import ORT_LAYOUT_OPS

    op_type, name = op.split(":", 1)
    return op_type in ORT_LAYOUT_OPS or (op_type == "Transpose" and name not in own_names)


def split_by_precision(graph: onnx.GraphProto) -> Tuple[List[str], List[str]]:
    """(op types computing on integer tensors, "OpType:name" of ops computing in float), in graph order."""
    types = _known_types(graph)
    constants = {init.name for init in graph.initializer}
    int8, fp32 = [], []
    for node in graph.node:
        inputs = [types.get(name) for name in node.input if name]
        if _is_integer_op(node.op_type):
            int8.append(node.op_type)
        elif node.op_type not in _BOUNDARY and node.op_type not in _NOT_COMPUTE:
            if any(types.get(name) in _FLOAT_TYPES for name in node.input if name and name not in constants):
                fp32.append("{}:{}".format(node.op_type, node.name))
            else:
                int8.append(node.op_type)
        for name in node.output:
            types[name] = _output_type(node, inputs)
    return int8, fp32


def _is_integer_op(op_type: str) -> bool:
    return op_type.startswith("QLinear") or op_type.endswith("Integer") or op_type in ("QGemm", "QAttention")


def _known_types(graph: onnx.GraphProto) -> Dict[str, int]:
    types = {init.name: init.data_type for init in graph.initializer}
    for value in list(graph.input) + list(graph.value_info):
        types[value.name] = value.type.tensor_type.elem_type
    return types


def _output_type(node: onnx.NodeProto, inputs: List[int]) -> int:
    """Enough typing for the question asked: Quantize and QLinear* ops give integers, DequantizeLinear floats,
    shape ops int64, and the rest (Transpose, MaxPool, Reshape, Concat, float ops) the type of their first input."""
    if node.op_type in _INT8_OUTPUT or _is_integer_op(node.op_type):
        return TensorProto.INT8
    if node.op_type == "DequantizeLinear":
        return TensorProto.FLOAT
    if node.op_type in ("Shape", "Size"):
        return TensorProto.INT64
    return next((t for t in inputs if t is not None), TensorProto.FLOAT)
