"""`edge-agent bench` end to end with the real onnxruntime and MNN on tiny models."""

import json
import os

import onnx
import pytest
from conftest import run_cli, tiny_conv_model

from edge_agent.bundle.store import read_manifest, read_records
from edge_agent.stats import interleaved_ratio

FAST = ["--protocol", "quick", "--warmup-time", "0.05", "--min-time", "0.15", "--cv-threshold", "10"]


@pytest.mark.parametrize("runtime", ["ort", "mnn"])
def test_bench_with_reference_appends_interleaved_record(tmp_path, tiny_models, runtime):
    out = str(tmp_path / "bundle")
    small, _, large = tiny_models
    result = run_cli("edge_agent", "bench", large, "--reference", small, "--runtime", runtime, "--out", out, *FAST)
    assert result.returncode == 0, result.stderr
    assert "ratio to ref" in result.stdout
    records = read_records(out).records
    assert len(records) == 1
    record = records[0]
    assert record.status == "ok" and record.settings.runtime == runtime
    assert len(record.samples_ns) == 3 and len(record.reference_samples_ns) == 3
    assert [len(w) for w in record.samples_ns] == [len(w) for w in record.reference_samples_ns]
    assert all(isinstance(s, int) and s > 0 for w in record.samples_ns for s in w)
    assert record.load_ns > 0 and record.first_inference_ns > 0
    assert interleaved_ratio(record.samples_ns, record.reference_samples_ns) > 1  # 16 channels vs 4
    assert os.path.exists(os.path.join(out, record.model.model_path))
    manifest = read_manifest(out)
    assert manifest.settings.runtime == runtime and manifest.fingerprint["device_key"]


def test_second_bench_appends_to_the_same_bundle(tmp_path, tiny_models):
    out = str(tmp_path / "bundle")
    for model in tiny_models[:2]:
        assert run_cli("edge_agent", "bench", model, "--out", out, *FAST).returncode == 0
    assert len(read_records(out).records) == 2


def _one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_missing_and_non_onnx_files(tmp_path):
    assert "no such model file" in _one_line_error(run_cli("edge_agent", "bench", str(tmp_path / "nope.onnx")))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01garbage")
    assert "not an ONNX model" in _one_line_error(run_cli("edge_agent", "bench", str(junk)))
    assert not (tmp_path / "edge-agent-bundle").exists()


def test_dynamic_shapes_need_input_shape(tmp_path):
    path = str(tmp_path / "dyn.onnx")
    onnx.save(tiny_conv_model(dynamic=True), path)
    assert "--input-shape" in _one_line_error(run_cli("edge_agent", "bench", path, "--out", str(tmp_path / "b")))
    result = run_cli("edge_agent", "bench", path, "--input-shape", "x=1,3,16,16", "--out", str(tmp_path / "b"), *FAST)
    assert result.returncode == 0, result.stderr
    assert read_records(str(tmp_path / "b")).records[0].input_shapes == {"x": [1, 3, 16, 16]}


def test_op_mnn_lacks_is_named_and_recorded(tmp_path):
    model = tiny_conv_model()
    model.graph.node.append(onnx.helper.make_node("Det", ["y"], ["d"]))  # determinant: ONNX has it, MNN does not
    model.graph.output[0].CopyFrom(onnx.helper.make_tensor_value_info("d", onnx.TensorProto.FLOAT, [1, 8]))
    model.graph.node[-1].input[0] = "y2"
    model.graph.node.insert(3, onnx.helper.make_node("Reshape", ["y", "shape"], ["y2"]))
    model.graph.initializer.append(onnx.numpy_helper.from_array(__import__("numpy").array([1, 2, 2, 2]), "shape"))
    path = str(tmp_path / "det.onnx")
    onnx.save(model, path)
    out = str(tmp_path / "b")
    line = _one_line_error(run_cli("edge_agent", "bench", path, "--runtime", "mnn", "--out", out, *FAST))
    records = read_records(out).records
    assert len(records) == 1 and records[0].status == "failed"
    assert "Det" in line or "Det" in records[0].error


def test_unwritable_output_is_a_clear_error(tmp_path, tiny_models):
    locked = tmp_path / "ro"
    locked.mkdir()
    os.chmod(str(locked), 0o500)
    try:
        if os.access(str(locked), os.W_OK):
            pytest.skip("running as a user that can write anywhere (root)")
        line = _one_line_error(run_cli("edge_agent", "bench", tiny_models[0], "--out", str(locked / "b")))
        assert "ro" in line
    finally:
        os.chmod(str(locked), 0o700)


def test_output_path_that_is_a_file_is_refused_and_kept(tmp_path, tiny_models):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    assert "not a bundle" in _one_line_error(run_cli("edge_agent", "bench", tiny_models[0], "--out", str(precious)))
    assert precious.read_text() == "keep me"


def test_json_of_records_is_pure_integers(tmp_path, tiny_models):
    out = str(tmp_path / "bundle")
    assert run_cli("edge_agent", "bench", tiny_models[0], "--runtime", "mnn", "--out", out, *FAST).returncode == 0
    line = open(os.path.join(out, "measurements.jsonl")).readline()
    data = json.loads(line)
    assert all(type(s) is int for w in data["samples_ns"] for s in w)
    assert data["settings"]["mnn_precision"] == "high"
