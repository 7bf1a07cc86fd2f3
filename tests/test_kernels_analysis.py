"""kernels.analysis on a hand-built ONNX graph: every figure below is counted by hand from the conventions."""

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from kernels.analysis import analyze, model_flops, model_params


def _hand_model():
    init = [numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "W"),
            numpy_helper.from_array(np.zeros(8, np.float32), "B"),
            numpy_helper.from_array(np.ones((10, 8), np.float32), "FW"),
            numpy_helper.from_array(np.zeros(10, np.float32), "FB"),
            numpy_helper.from_array(np.array(0, np.float32), "lo"),
            numpy_helper.from_array(np.array(6, np.float32), "hi")]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "FW", "FB"], ["y"], transB=1),
             helper.make_node("FooOp", ["y"], ["z"], domain="custom.ops")]
    graph = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)])
    model.ir_version = 8
    return model


def test_conv_geometry_flops_params_bytes():
    conv = analyze(_hand_model())[0]
    assert (conv.op_type, conv.kernel_hw, conv.stride, conv.groups) == ("Conv", (3, 3), (2, 2), 1)
    assert (conv.cin, conv.cout, conv.in_hw, conv.out_hw) == (3, 8, (32, 32), (16, 16))
    assert conv.flops == 2 * 8 * 16 * 16 * 3 * 9 + 8 * 16 * 16
    assert conv.params == 8 * 27 + 8
    assert conv.bytes_moved == 4 * (3 * 32 * 32 + 8 * 16 * 16 + 8 * 27 + 8)


def test_other_ops_and_unknown_op():
    infos = {info.op_type: info for info in analyze(_hand_model())}
    assert infos["Clip"].flops == 8 * 16 * 16 and infos["Clip"].params == 0  # scalar bounds are not params
    assert infos["MaxPool"].flops == 8 * 8 * 8 * 4 and infos["MaxPool"].out_hw == (8, 8)
    assert infos["GlobalAveragePool"].flops == 8 * 8 * 8 and infos["GlobalAveragePool"].kernel_hw == (8, 8)
    assert infos["Flatten"].flops == 0 and infos["Flatten"].out_shapes == ((1, 8),)
    assert (infos["Gemm"].cin, infos["Gemm"].cout, infos["Gemm"].flops) == (8, 10, 2 * 8 * 10 + 10)
    assert infos["FooOp"].flops == 0 and infos["FooOp"].domain == "custom.ops"


def test_model_totals():
    model = _hand_model()
    assert model_params(model) == 8 * 27 + 8 + 80 + 10 + 2
    assert model_flops(model) == sum(info.flops for info in analyze(model))
