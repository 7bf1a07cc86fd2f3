import onnx
import pytest
from conftest import tiny_conv_model

from edge_agent.errors import InputError
from edge_agent.onnx_io import load_model, parse_input_shapes


def test_static_model_is_read_with_its_shapes(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(tiny_conv_model(), str(path))
    info = load_model(str(path))
    assert info.input_shapes == {"x": [1, 3, 16, 16]}
    assert len(info.sha256) == 64
    assert info.content == path.read_bytes()


def test_dynamic_model_asks_for_input_shape(tmp_path):
    path = tmp_path / "dyn.onnx"
    onnx.save(tiny_conv_model(dynamic=True), str(path))
    with pytest.raises(InputError, match="dynamic dims \\[N,3,16,16\\].*--input-shape x="):
        load_model(str(path))
    info = load_model(str(path), {"x": [2, 3, 16, 16]})
    fixed = onnx.load_from_string(info.content)
    assert [d.dim_value for d in fixed.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 16, 16]
    assert info.sha256 != load_model(str(path), {"x": [1, 3, 16, 16]}).sha256


@pytest.mark.parametrize("content, message", [
    (None, "no such model file"),
    (b"this is not a protobuf at all \xff\xfe", "is not an ONNX model"),
])
def test_bad_files_give_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as error:
        load_model(str(path))
    assert "\n" not in str(error.value)


def test_broken_graph_is_refused(tmp_path):
    model = tiny_conv_model()
    model.graph.node[1].input[0] = "does_not_exist"
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    with pytest.raises(InputError, match="broken ONNX"):
        load_model(str(path))


@pytest.mark.parametrize("value", ["x", "x=", "x=1,a", "=1,2", "x=0,3"])
def test_bad_input_shape_option(value):
    with pytest.raises(InputError):
        parse_input_shapes([value])


def test_input_shape_for_unknown_input(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(tiny_conv_model(dynamic=True), str(path))
    with pytest.raises(InputError, match="names no input"):
        load_model(str(path), {"nope": [1, 3, 16, 16]})
