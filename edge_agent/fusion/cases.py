"""Fusion test cases: small chains of the ops real CNNs contain, each built whole and split into one model per op.

Graphs are built with BN kept as separate nodes (fold_bn=False): a runtime's BN folding is one of the fusions
under test. Tensors are mid-sized (32 channels, 32x32) so each op costs well above the per-call overhead.
"""

from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import onnx
from onnx import TensorProto, helper

CHANNELS = 32
HW = 32
CASE_SEED = 0


@dataclass(frozen=True)
class FusionCase:
    name: str
    description: str
    build: Callable  # (GraphBuilder) -> list of graph outputs
    input_shape: Tuple[int, ...] = (1, CHANNELS, HW, HW)


@dataclass(frozen=True)
class CaseModels:
    whole: onnx.ModelProto
    parts: List[onnx.ModelProto]  # one model per node of `whole`, in graph order
    classes: List[str]  # the op class of each part


def _conv(b, x, act="none", bn=False, kernel=3, stride=1):
    return b.conv(x, CHANNELS, kernel=kernel, stride=stride, bn=bn, act=act)


def _second(b, x):
    return b.add_input(b.shape(x), "input2")


def _multi_consumer(b):
    y = _conv(b, b.input)
    return [b.act(y, "relu"), y]  # the conv's output also leaves the graph: a fusion would have to keep it


def _concat(b):
    y = _conv(b, b.input)
    return [b.concat([y, _second(b, y)])]


def _gap_fc(b):
    return [b.fc(b.global_pool(b.input, "avg"), 64)]


def _se(b):
    return [b.squeeze_excite(b.input)]


CASES: Tuple[FusionCase, ...] = (
    FusionCase("conv+bn", "Conv then BatchNormalization", lambda b: [_conv(b, b.input, bn=True)]),
    FusionCase("conv+relu", "Conv then Relu", lambda b: [_conv(b, b.input, act="relu")]),
    FusionCase("conv+bn+relu", "Conv, BatchNormalization, Relu", lambda b: [_conv(b, b.input, act="relu", bn=True)]),
    FusionCase("conv+relu6", "Conv then Clip(0, 6)", lambda b: [_conv(b, b.input, act="relu6")]),
    FusionCase("conv+hswish", "Conv then HardSwish", lambda b: [_conv(b, b.input, act="hswish")]),
    FusionCase("conv+sigmoid", "Conv then Sigmoid", lambda b: [_conv(b, b.input, act="sigmoid")]),
    FusionCase("conv+hsigmoid", "Conv then HardSigmoid (the squeeze-excite gate of MobileNetV3 and GhostNet)",
               lambda b: [_conv(b, b.input, act="hsigmoid")]),
    FusionCase("dwconv+bn+relu", "depthwise Conv, BatchNormalization, Relu",
               lambda b: [b.dwconv(b.input, kernel=3, bn=True, act="relu")]),
    FusionCase("dwconv+relu6", "depthwise Conv then Clip(0, 6)", lambda b: [b.dwconv(b.input, bn=False, act="relu6")]),
    FusionCase("conv+add", "Conv then Add of a second input (a residual)",
               lambda b: [b.add(_conv(b, b.input), _second(b, b.input))]),
    FusionCase("add+relu", "Add of two inputs then Relu", lambda b: [b.add(b.input, _second(b, b.input), act="relu")]),
    FusionCase("fc+relu", "Gemm then Relu on a (1, 512) input", lambda b: [b.fc(b.input, 512, act="relu")],
               input_shape=(1, 512)),
    FusionCase("conv+maxpool", "Conv then MaxPool 2x2", lambda b: [b.pool(_conv(b, b.input), "max", 2)]),
    FusionCase("conv+concat", "Conv then Concat with a second input", _concat),
    FusionCase("conv+relu|multi", "Conv whose output feeds Relu and also leaves the graph", _multi_consumer),
    FusionCase("gap+fc", "GlobalAveragePool, Flatten, Gemm (a classifier head)", _gap_fc),
    FusionCase("se", "squeeze-excite: GAP, 1x1 conv+relu, 1x1 conv+sigmoid, Mul", _se),
)
CASES_BY_NAME: Dict[str, FusionCase] = {case.name: case for case in CASES}


def build_case(case: FusionCase) -> CaseModels:
    from kernels.builder import GraphBuilder

    from edge_agent.fusion.ops import op_class

    builder = GraphBuilder(case.input_shape, seed=CASE_SEED, fold_bn=False, name=case.name)
    whole = builder.build(case.build(builder))
    parts, classes = [], []
    for node in whole.graph.node:
        parts.append(_single_node_model(whole, node, builder.shapes))
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        shape_in = builder.shapes.get(node.input[0], ())
        shape_out = builder.shapes.get(node.output[0], ())
        classes.append(op_class(node.op_type, groups, _channels(shape_in), _channels(shape_out)))
    return CaseModels(whole=whole, parts=parts, classes=classes)


def _channels(shape) -> int:
    return int(shape[1]) if len(shape) >= 2 else 0


def _single_node_model(whole: onnx.ModelProto, node: onnx.NodeProto, shapes: Dict[str, tuple]) -> onnx.ModelProto:
    """The node alone: its activation inputs become graph inputs, its weights come along."""
    initializers = {t.name: t for t in whole.graph.initializer}
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shapes[name]))
              for name in node.input if name and name not in initializers]
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shapes[name])) for name in node.output]
    weights = [initializers[name] for name in node.input if name in initializers]
    graph = helper.make_graph([node], node.name, inputs, outputs, initializer=weights)
    model = helper.make_model(graph, opset_imports=list(whole.opset_import), producer_name=whole.producer_name)
    model.ir_version = whole.ir_version
    return model


def overhead_model() -> onnx.ModelProto:
    """One Relu on a single element: what a call costs when the op itself costs nothing."""
    from kernels.builder import GraphBuilder

    builder = GraphBuilder((1, 1, 1, 1), seed=CASE_SEED, name="overhead")
    return builder.build([builder.act(builder.input, "relu")])


def select_cases(names: List[str]) -> List[FusionCase]:
    from edge_agent.errors import InputError

    unknown = [n for n in names if n not in CASES_BY_NAME]
    if unknown:
        raise InputError("unknown fusion case(s) {}; known: {}".format(", ".join(unknown), ", ".join(CASES_BY_NAME)))
    return [CASES_BY_NAME[n] for n in names] if names else list(CASES)
