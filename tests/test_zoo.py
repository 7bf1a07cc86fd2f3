"""The architecture zoo: every model is a valid ONNX graph that onnxruntime runs, with the paper's layer structure
visible in the graph (residual adds, depthwise convs, concatenations where the family has them)."""

import numpy as np
import onnx
import pytest

from kernels import zoo
from kernels.errors import KernelsError


@pytest.mark.parametrize("name", zoo.NAMES)
def test_every_architecture_is_valid_and_runs(name):
    import onnxruntime

    model = zoo.build(name, hw=64)
    onnx.checker.check_model(model, full_check=True)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": np.zeros((1, 3, 64, 64), np.float32)})
    assert out.shape == (1, 1000) and np.isfinite(out).all()


def test_families_have_their_signature_ops():
    ops = {name: [n.op_type for n in zoo.build(name, hw=64).graph.node] for name in zoo.NAMES}
    assert len(zoo.NAMES) >= 20
    assert ops["resnet50"].count("Add") == 16 and ops["vgg16"].count("Conv") == 13
    assert "Concat" in ops["densenet_like"] and "Transpose" in ops["shufflenet_v2"]
    assert "HardSwish" in ops["mobilenet_v3_large"] and "Mul" in ops["efficientnet_b0"]


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(KernelsError, match="unknown architecture"):
        zoo.build("alexnet")
