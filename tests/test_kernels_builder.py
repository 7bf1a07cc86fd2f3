"""GraphBuilder and single-kernel models: determinism, BN folding, shapes, clear errors."""

import numpy as np
import onnx
import pytest

from kernels.analysis import analyze
from kernels.builder import IR_VERSION, OPSET, GraphBuilder
from kernels.errors import KernelsError
from kernels.single import build_kernel_model


def _small(seed=0, fold_bn=True):
    b = GraphBuilder((1, 3, 16, 16), seed=seed, fold_bn=fold_bn)
    x = b.conv(b.input, 8, kernel=3, stride=2, act="hswish")
    x = b.squeeze_excite(b.channel_shuffle(b.dwconv(x, 3), 2))
    return b.build([b.fc(b.global_pool(x), 4)])


def test_same_seed_same_bytes_other_seed_other_weights():
    assert _small(3).SerializeToString() == _small(3).SerializeToString()
    assert _small(3).SerializeToString() != _small(4).SerializeToString()


def test_fold_bn_option_keeps_batchnorm_nodes():
    folded = [n.op_type for n in _small(fold_bn=True).graph.node]
    unfolded = [n.op_type for n in _small(fold_bn=False).graph.node]
    assert "BatchNormalization" not in folded
    assert unfolded.count("BatchNormalization") == 2
    assert [t for t in unfolded if t != "BatchNormalization"] == folded


def test_opset_ir_version_and_builder_shapes_match_inference():
    model = _small()
    assert model.opset_import[0].version == OPSET == 17 and model.ir_version == IR_VERSION == 8
    onnx.checker.check_model(model, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim] == [1, 4]


def test_unique_names():
    model = _small()
    outputs = [o for n in model.graph.node for o in n.output]
    names = [n.name for n in model.graph.node]
    assert len(set(outputs)) == len(outputs) and len(set(names)) == len(names)


def test_single_kernel_geometry():
    conv = analyze(build_kernel_model("conv", {"hw": [20, 10], "cin": 8, "cout": 16, "kernel": 5, "stride": 2,
                                               "groups": 4, "act": "none"}))
    assert len(conv) == 1
    info = conv[0]
    assert (info.kernel_hw, info.stride, info.groups, info.cin, info.cout) == ((5, 5), (2, 2), 4, 8, 16)
    assert (info.in_hw, info.out_hw) == ((20, 10), (10, 5))
    dw = analyze(build_kernel_model("dwconv", {"hw": 8, "cin": 12, "kernel": 3, "stride": 1}, fold_bn=False))
    assert [i.op_type for i in dw] == ["Conv", "BatchNormalization", "Relu"] and dw[0].groups == 12


def test_mul_kernel_scales_by_a_factor_per_channel_or_elementwise():
    by_channel = build_kernel_model("mul", {"hw": 6, "cin": 40})
    assert [[d.dim_value for d in i.type.tensor_type.shape.dim] for i in by_channel.graph.input] == [
        [1, 40, 6, 6], [1, 40, 1, 1]]
    elementwise = build_kernel_model("mul", {"hw": 6, "cin": 40, "operand": "full"})
    assert [d.dim_value for d in elementwise.graph.input[1].type.tensor_type.shape.dim] == [1, 40, 6, 6]
    assert [n.op_type for n in by_channel.graph.node] == ["Mul"]


@pytest.mark.parametrize("kernel_type,config,message", [
    ("nope", {}, "unknown kernel type"),
    ("conv", {"hw": 8, "cin": 8}, "missing"),
    ("conv", {"hw": 8, "cin": 8, "cout": 8, "kernel": 3, "stride": 1, "colour": 1}, "unknown"),
    ("conv", {"hw": 8, "cin": 6, "cout": 8, "kernel": 3, "stride": 1, "groups": 4}, "groups"),
    ("maxpool", {"hw": 2, "cin": 4, "kernel": 3, "stride": 2}, "does not fit"),
    ("act", {"hw": 8, "cin": 8, "act": "swishy"}, "unknown activation"),
    ("channel_shuffle", {"hw": 8, "cin": 10, "groups": 4}, "groups"),
    ("mul", {"hw": 8, "cin": 8, "operand": "row"}, "operand"),
])
def test_bad_kernel_configs_raise_one_line_errors(kernel_type, config, message):
    with pytest.raises(KernelsError, match=message):
        build_kernel_model(kernel_type, config)


def test_folded_weights_equal_unfolded_conv_bn():
    """Folding is exact algebra: the folded conv's weights are the unfolded conv's weights scaled per channel."""
    config = {"hw": 4, "cin": 2, "cout": 3, "kernel": 1, "stride": 1, "act": "none"}
    folded = {t.name: onnx.numpy_helper.to_array(t) for t in build_kernel_model("conv", config).graph.initializer}
    raw = {t.name: onnx.numpy_helper.to_array(t)
           for t in build_kernel_model("conv", config, fold_bn=False).graph.initializer}
    scale = raw["bn_scale_0"] / np.sqrt(raw["bn_var_0"] + 1e-5)
    np.testing.assert_allclose(folded["w_0"], raw["w_0"] * scale[:, None, None, None], rtol=1e-6)
    np.testing.assert_allclose(folded["b_0"], raw["bn_bias_0"] - raw["bn_mean_0"] * scale, rtol=1e-5, atol=1e-7)
