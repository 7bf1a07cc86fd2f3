"""Every single-kernel model and every space's models pass the ONNX checker and give the same outputs in
onnxruntime and MNN (real runtimes, tiny models)."""

import numpy as np
import onnx
import pytest

from edge_agent.runtimes import get_runtime
from kernels.single import KERNEL_TYPES, build_kernel_model
from kernels.spaces import get_space, list_spaces

KERNEL_CONFIGS = {
    "conv": {"hw": 12, "cin": 8, "cout": 16, "kernel": 3, "stride": 2, "groups": 2, "act": "relu6"},
    "group_conv": {"hw": 6, "cin": 24, "cout": 24, "kernel": 3, "stride": 1, "groups": 3, "act": "relu"},
    "dwconv": {"hw": [10, 14], "cin": 16, "kernel": 5, "stride": 1, "act": "hswish"},
    "maxpool": {"hw": 12, "cin": 8, "kernel": 3, "stride": 2, "pad": 1},
    "avgpool": {"hw": 12, "cin": 8, "kernel": 3, "stride": 1, "pad": 1},
    "global_avgpool": {"hw": 7, "cin": 32},
    "fc": {"cin": 64, "cout": 10, "act": "relu"},
    "add": {"hw": 8, "cin": 16, "act": "relu"},
    "mul": {"hw": 8, "cin": 16},
    "concat": {"hw": 8, "cin": 16, "cin2": 8},
    "channel_shuffle": {"hw": 8, "cin": 16, "groups": 4},
    "se": {"hw": 8, "cin": 32, "gate": "hsigmoid"},
    "act": {"hw": 8, "cin": 8, "act": "sigmoid"},
    "bn": {"hw": 8, "cin": 8},
}


def _outputs(model: onnx.ModelProto, path, runtime: str):
    onnx.save(model, str(path))
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    session = get_runtime(runtime).open_session(str(path), shapes, 1, 0)
    return session.outputs()


def assert_runtimes_agree(model: onnx.ModelProto, tmp_path, name: str) -> None:
    onnx.checker.check_model(model, full_check=True)
    ort_out = _outputs(model, tmp_path / (name + ".onnx"), "ort")
    mnn_out = _outputs(model, tmp_path / (name + "_mnn.onnx"), "mnn")
    assert len(ort_out) == len(mnn_out) == 1
    expected = np.asarray(ort_out[0])
    got = np.asarray(mnn_out[0]).reshape(expected.shape)
    assert np.isfinite(expected).all() and np.abs(expected).max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_configs_cover_every_kernel_type():
    assert set(KERNEL_CONFIGS) == set(KERNEL_TYPES)


@pytest.mark.parametrize("kernel_type", sorted(KERNEL_CONFIGS))
def test_single_kernel_runs_in_both_runtimes(kernel_type, tmp_path):
    model = build_kernel_model(kernel_type, KERNEL_CONFIGS[kernel_type], seed=1)
    assert_runtimes_agree(model, tmp_path, kernel_type)


@pytest.mark.parametrize("name", ["calib-cnn", "cifar-supernet", "nb201"])
def test_space_models_run_in_both_runtimes(name, tmp_path):
    space = get_space(name)
    specs = [space.reference_spec()] + space.sample(2, seed=5)
    for k, spec in enumerate(specs):
        assert_runtimes_agree(space.build(spec, seed=k), tmp_path, "{}_{}".format(name, k))
    assert_runtimes_agree(space.build(specs[1], fold_bn=False), tmp_path, name + "_unfolded")


def test_every_registered_space_is_tested():
    assert set(list_spaces()) == {"calib-cnn", "cifar-supernet", "nb201"}
