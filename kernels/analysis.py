"""Per-node facts about an ONNX graph after shape inference: shapes, kernel geometry, FLOPs, params, bytes moved.

Conventions (the trainer's graph encoder and the LUT predictor both rely on them):
- FLOPs: a multiply-add counts as 2 FLOPs. Conv = 2·N·Cout·Hout·Wout·(Cin/groups)·kh·kw, plus one add per output
  element when it has a bias; ConvTranspose likewise over the input positions; Gemm = 2·M·K·N (+ M·N with a bias);
  MatMul = 2·batch·M·K·N; BatchNormalization = 2 per element (scale and shift); elementwise arithmetic (Add, Sub, Mul,
  Div, Max, Min, Sum, Mean, Pow) = 1 per output element per extra operand; activations (Relu, Clip, Sigmoid,
  HardSwish, ...) = 1 per output element; MaxPool/AveragePool = kh·kw per output element; global pools and reductions
  = 1 per input element; Softmax = 3 per element. Data movement (Reshape, Transpose, Concat, Flatten, ...) and any op
  not listed = 0 (unknown ops never raise).
- params: elements of the float constant inputs (initializers or Constant outputs) of a node; scalar operands such as
  Clip's bounds do not count, shape/index tensors (integer) neither.
- bytes_moved: 4 bytes (float32) × (activation input elements + output elements + params).
- Shapes: unknown dims are -1; an input whose shape is unknown, or an omitted optional input, is (). cin/cout are the
  channel dims (axis 1 of rank >= 2 tensors; the feature dim for Gemm/MatMul), 0 when unknown. in_hw/out_hw are the
  last two dims of rank-4 tensors, else (0, 0). Ops without a spatial window have kernel_hw = stride = (0, 0);
  groups is 1 except for Conv/ConvTranspose.
"""

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np
import onnx
from onnx import helper, shape_inference

Shape = Tuple[int, ...]

_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow"}
_ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu", "Tanh", "Elu", "Selu",
                "Gelu", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Softplus", "Mish", "Relu6"}
_REDUCTIONS = {"GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum",
               "ReduceL2", "ReduceProd"}
_WINDOWED = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"}
_WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "InstanceNormalization",
             "LayerNormalization", "PRelu"}
# Initializers larger than this are replaced by typed graph inputs before shape inference: their values never
# decide a shape, and copying megabytes of weights dominated the cost of analysing a model.
_INLINE_LIMIT = 64


@dataclass(frozen=True)
class NodeInfo:
    name: str
    op_type: str
    domain: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]
    kernel_hw: Tuple[int, int]
    stride: Tuple[int, int]
    groups: int
    cin: int
    cout: int
    in_hw: Tuple[int, int]
    out_hw: Tuple[int, int]
    in_shapes: Tuple[Shape, ...]
    out_shapes: Tuple[Shape, ...]
    flops: int
    params: int
    bytes_moved: int


def analyze(model: onnx.ModelProto) -> List[NodeInfo]:
    """One NodeInfo per node of the main graph, in graph order."""
    shapes = _infer_shapes(model)
    constants = _constant_names(model.graph)
    return [_node_info(node, index, shapes, constants) for index, node in enumerate(model.graph.node)]


def model_flops(model: onnx.ModelProto) -> int:
    return sum(info.flops for info in analyze(model))


def model_params(model: onnx.ModelProto) -> int:
    """Elements of all float initializers (each counted once, even if shared)."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if _is_float(t.data_type))


def _is_float(data_type: int) -> bool:
    return data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                         onnx.TensorProto.BFLOAT16)


def _infer_shapes(model: onnx.ModelProto) -> Dict[str, Shape]:
    light = _light_copy(model)
    try:
        inferred = shape_inference.infer_shapes(light)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, RuntimeError):
        inferred = light  # partial facts beat none: keep the declared shapes
    shapes: Dict[str, Shape] = {}
    graph = inferred.graph
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        shape = _value_shape(value)
        if shape is not None:
            shapes[value.name] = shape
    for tensor in graph.initializer:
        shapes[tensor.name] = tuple(int(d) for d in tensor.dims)
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            shapes[node.output[0]] = tuple(int(d) for d in node.attribute[0].t.dims)
    return shapes


def _light_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model without its large weights (declared as typed inputs instead), for cheap shape inference."""
    graph = model.graph
    small = [t for t in graph.initializer if int(np.prod(t.dims)) <= _INLINE_LIMIT]
    declared = {value.name for value in graph.input}
    large_inputs = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                    for t in graph.initializer if int(np.prod(t.dims)) > _INLINE_LIMIT and t.name not in declared]
    light_graph = helper.make_graph(list(graph.node), graph.name or "g", list(graph.input) + large_inputs,
                                    list(graph.output), initializer=small, value_info=list(graph.value_info))
    light = helper.make_model(light_graph, opset_imports=list(model.opset_import))
    light.ir_version = model.ir_version
    light.functions.extend(model.functions)
    return light


def _value_shape(value: onnx.ValueInfoProto):
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim)


def _constant_names(graph: onnx.GraphProto) -> Dict[str, int]:
    """Constant tensor name -> data type (initializers and Constant node outputs)."""
    constants = {t.name: t.data_type for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t.data_type
    return constants


def _node_info(node: onnx.NodeProto, index: int, shapes: Dict[str, Shape], constants: Dict[str, int]) -> NodeInfo:
    in_shapes = tuple(shapes.get(name, ()) if name else () for name in node.input)
    out_shapes = tuple(shapes.get(name, ()) for name in node.output)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    params = _params(node, in_shapes, constants)
    activations = sum(numel(s) for name, s in zip(node.input, in_shapes) if name and name not in constants)
    kernel_hw, stride = _window(node.op_type, attrs, in_shapes)
    groups = int(attrs.get("group", 1)) if node.op_type in ("Conv", "ConvTranspose") else 1
    cin, cout = _channels(node.op_type, attrs, in_shapes, out_shapes)
    return NodeInfo(
        name=node.name or "{}_{}".format(node.op_type, index), op_type=node.op_type, domain=node.domain or "",
        inputs=tuple(node.input), outputs=tuple(node.output), kernel_hw=kernel_hw, stride=stride, groups=groups,
        cin=cin, cout=cout, in_hw=_hw(in_shapes[0] if in_shapes else ()),
        out_hw=_hw(out_shapes[0] if out_shapes else ()),
        in_shapes=in_shapes, out_shapes=out_shapes, flops=_flops(node.op_type, attrs, in_shapes, out_shapes),
        params=params, bytes_moved=4 * (activations + sum(numel(s) for s in out_shapes) + params))


def numel(shape: Shape) -> int:
    if not shape or any(d < 0 for d in shape):
        return 0
    return int(np.prod(shape, dtype=np.int64))


def _hw(shape: Shape) -> Tuple[int, int]:
    return (max(shape[2], 0), max(shape[3], 0)) if len(shape) == 4 else (0, 0)


def _params(node: onnx.NodeProto, in_shapes: Tuple[Shape, ...], constants: Dict[str, int]) -> int:
    total = 0
    for name, shape in zip(node.input, in_shapes):
        if name in constants and _is_float(constants[name]):
            size = numel(shape)
            if size > 1 or node.op_type in _WEIGHTED:
                total += size
    return total


def _window(op_type: str, attrs: dict, in_shapes: Tuple[Shape, ...]) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    if op_type in _WINDOWED:
        kernel = list(attrs.get("kernel_shape", ()))
        if not kernel and len(in_shapes) > 1 and len(in_shapes[1]) > 2:
            kernel = list(in_shapes[1][2:])
        strides = list(attrs.get("strides", [1] * len(kernel)))
        return _pair(kernel), _pair(strides)
    if op_type in ("GlobalAveragePool", "GlobalMaxPool") and in_shapes:
        return _hw(in_shapes[0]), (1, 1)
    return (0, 0), (0, 0)


def _pair(values: List[int]) -> Tuple[int, int]:
    if not values:
        return (0, 0)
    if len(values) == 1:
        return (1, int(values[0]))
    return (int(values[-2]), int(values[-1]))


def _channels(op_type: str, attrs: dict, in_shapes: Tuple[Shape, ...], out_shapes: Tuple[Shape, ...]):
    x = in_shapes[0] if in_shapes else ()
    y = out_shapes[0] if out_shapes else ()
    if op_type == "Gemm" and len(x) == 2:
        return max(x[0] if attrs.get("transA", 0) else x[1], 0), max(y[1], 0) if len(y) == 2 else 0
    if op_type == "MatMul":
        return (max(x[-1], 0) if x else 0), (max(y[-1], 0) if y else 0)

    def channel(shape: Shape) -> int:
        return max(shape[1], 0) if len(shape) >= 2 else (max(shape[0], 0) if len(shape) == 1 else 0)

    return channel(x), channel(y)


def _flops(op_type: str, attrs: dict, in_shapes: Tuple[Shape, ...], out_shapes: Tuple[Shape, ...]) -> int:
    out = numel(out_shapes[0]) if out_shapes else 0
    first = numel(in_shapes[0]) if in_shapes else 0
    if op_type in ("Conv", "ConvTranspose"):
        return _conv_flops(op_type, in_shapes, out, first)
    if op_type == "Gemm":
        return _gemm_flops(attrs, in_shapes, out)
    if op_type == "MatMul":
        k = in_shapes[0][-1] if in_shapes and in_shapes[0] else 0
        return 2 * out * max(k, 0)
    if op_type == "BatchNormalization":
        return 2 * out
    if op_type in _ELEMENTWISE:
        return out * max(len([s for s in in_shapes if s]) - 1, 1)
    if op_type in _ACTIVATIONS:
        return out
    if op_type in ("MaxPool", "AveragePool", "LpPool"):
        kernel = attrs.get("kernel_shape", ())
        return out * int(np.prod(kernel)) if kernel else 0
    if op_type in _REDUCTIONS:
        return first
    if op_type in ("Softmax", "LogSoftmax"):
        return 3 * out
    return 0


def _conv_flops(op_type: str, in_shapes: Tuple[Shape, ...], out: int, first: int) -> int:
    if len(in_shapes) < 2 or len(in_shapes[1]) < 3 or any(d < 0 for d in in_shapes[1]):
        return 0
    weight = in_shapes[1]
    bias = len(in_shapes) > 2 and bool(in_shapes[2])
    window = int(np.prod(weight[2:]))
    if op_type == "Conv":
        # weight is (Cout, Cin/groups, k...): each output element is Cin/groups·k MACs
        return 2 * out * weight[1] * window + (out if bias else 0)
    # ConvTranspose weight is (Cin, Cout/groups, k...): each input element scatters Cout/groups·k MACs
    return 2 * first * weight[1] * window + (out if bias else 0)


def _gemm_flops(attrs: dict, in_shapes: Tuple[Shape, ...], out: int) -> int:
    if len(in_shapes) < 2 or len(in_shapes[0]) != 2:
        return 0
    k = in_shapes[0][0] if attrs.get("transA", 0) else in_shapes[0][1]
    bias = len(in_shapes) > 2 and bool(in_shapes[2])
    return 2 * out * max(k, 0) + (out if bias else 0)
