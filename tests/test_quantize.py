"""INT8 on the board (`--quantize int8`): onnxruntime static quantization made in-process, deterministic for a seed;
the record says INT8, names the quantized model and the ops left in fp32; fusion detection sees QLinearConv; old
bundles still read as fp32."""

import hashlib
import json

import onnx
from conftest import run_cli, tiny_conv_model

from edge_agent.bundle.schema import QuantizeSettings, RunSettings
from edge_agent.bundle.store import MEASUREMENTS, read_records
from edge_agent.quant.fallback import ort_account
from edge_agent.quant.ort_static import quantize_file
from kernels.builder import GraphBuilder

FAST = ["--protocol", "quick", "--warmup-time", "0.05", "--min-time", "0.15", "--cv-threshold", "10"]


def _with_sin(path):
    """Conv+Relu (quantizable) then Sin, which onnxruntime has no INT8 kernel for and the quantizer leaves in fp32."""
    b = GraphBuilder((1, 3, 16, 16))
    y = b.conv(b.input, 8, act="relu")
    onnx.save(b.build([b.op("Sin", [y], b.shape(y))]), str(path))
    return str(path)


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_quantization_is_deterministic_for_a_seed(tmp_path):
    src = tmp_path / "tiny.onnx"
    onnx.save(tiny_conv_model(8), str(src))
    shapes = {"x": [1, 3, 16, 16]}
    paths = {}
    for label, seed in (("a", 0), ("b", 0), ("c", 1)):
        paths[label] = str(tmp_path / "{}.onnx".format(label))
        quantize_file(str(src), paths[label], shapes, QuantizeSettings(tool_version="t", calibration_seed=seed))
    assert _sha(paths["a"]) == _sha(paths["b"])
    assert _sha(paths["a"]) != _sha(paths["c"])  # other calibration inputs, other activation scales
    ops = [n.op_type for n in onnx.load(paths["a"]).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops and "Conv" in ops


def test_runtime_account_lists_the_ops_left_in_fp32(tmp_path):
    quantized = str(tmp_path / "q.onnx")
    quantize_file(_with_sin(tmp_path / "m.onnx"), quantized, {"input": [1, 3, 16, 16]},
                  QuantizeSettings(tool_version="t"))
    source, int8, fp32 = ort_account(quantized, 1, "all")
    assert source == "ort-optimized-graph:all" and "QLinearConv" in int8
    assert [op.split(":")[0] for op in fp32] == ["Sin"]
    _, int8, fp32 = ort_account(quantized, 1, "disable")  # no QDQ fusion: every op computes in fp32
    assert not int8 and [op.split(":")[0] for op in fp32] == ["Conv", "Sin"]


def test_bench_quantize_records_int8_and_the_fp32_fallback(tmp_path):
    model, reference = _with_sin(tmp_path / "sin.onnx"), str(tmp_path / "ref.onnx")
    onnx.save(tiny_conv_model(16), reference)
    out = str(tmp_path / "bundle")
    result = run_cli("edge_agent", "bench", model, "--reference", reference, "--quantize", "int8",
                     "--calibration-seed", "3", "--out", out, *FAST)
    assert result.returncode == 0, result.stderr
    assert "ops in fp32" in result.stdout and "Sin:sin_0" in result.stdout
    (record,) = read_records(out).records
    settings = record.settings
    assert settings.precision == "int8" and settings.mnn_precision is None and settings.level() == "all-int8"
    assert settings.quantization.quant_format == "QDQ" and settings.quantization.per_channel
    assert settings.quantization.calibration_seed == 3 and settings.quantization.activation_type == "QUInt8"
    assert json.loads((tmp_path / "bundle" / MEASUREMENTS).read_text())["settings"]["precision"] == "int8"
    quantized = record.model.quantized
    assert quantized.source_sha256 == _sha(model) == record.model.graph_sha256 == record.item_id
    assert _sha(str(tmp_path / "bundle" / record.model.model_path)) == record.model.model_sha256 != _sha(model)
    assert (tmp_path / "bundle" / quantized.source_path).is_file()
    assert "QLinearConv" in quantized.int8_kernels and [op.split(":")[0] for op in quantized.fp32_ops] == ["Sin"]
    assert record.reference.quantized is not None and not record.reference.quantized.fp32_ops
    again = run_cli("edge_agent", "bench", model, "--reference", reference, "--quantize", "int8",
                    "--calibration-seed", "3", "--out", out, *FAST)
    assert again.returncode == 0 and "already measured" in again.stdout  # the same INT8 model: resumed
    fp32 = run_cli("edge_agent", "bench", model, "--reference", reference, "--out", out, *FAST)
    assert fp32.returncode == 0 and "already measured" not in fp32.stdout
    assert read_records(out).records[-1].settings.precision == "fp32"


def test_quantize_needs_onnxruntime(tmp_path):
    model = str(tmp_path / "m.onnx")
    onnx.save(tiny_conv_model(4), model)
    result = run_cli("edge_agent", "bench", model, "--runtime", "mnn", "--quantize", "int8",
                     "--out", str(tmp_path / "b"), *FAST)
    assert result.returncode == 1 and "--runtime ort" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_fusion_detection_finds_qlinearconv(tmp_path):
    result = run_cli("edge_agent", "detect-fusion", "--quantize", "int8", "--case", "conv+relu", "--json", *FAST,
                     "--out", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout)
    (rule,) = table["rules"]
    assert table["settings"]["precision"] == "int8" and rule["evidence_fused"] is True
    assert "QLinearConv" in rule["evidence_kernels"] and "QuantizeLinear" in rule["evidence_kernels"]
    assert [p.name for p in (tmp_path / "b" / "rules").iterdir()] == ["fusion-ort-{}-t1-all-int8.json".format(
        table["settings"]["runtime_version"])]


def test_records_of_schema_1_read_as_fp32(tmp_path):
    line = {"schema_version": 1, "record_id": "r", "session_id": "s", "item_id": "i", "status": "ok",
            "model": {"item_id": "i", "model_sha256": "abc"}, "started_utc": "t", "finished_utc": "t",
            "protocol": {}, "settings": {"runtime": "ort", "runtime_version": "1.32.0", "threads": 1,
                                         "ort_graph_optimization_level": "all"}}
    (tmp_path / MEASUREMENTS).write_text(json.dumps(line) + "\n")
    (record,) = read_records(str(tmp_path)).records
    assert record.settings.precision == "fp32" and record.settings.quantization is None
    assert record.settings.level() == "all" and record.model.graph_sha256 == "abc"
    mnn = RunSettings(runtime="mnn", runtime_version="3", threads=1, mnn_precision="low", mnn_winograd_memory_level=1)
    assert mnn.level() == "low-winograd1"


def test_int8_settings_change_the_device_not_the_fp32_name():
    from trainer.ingest import device_name

    fp32 = RunSettings(runtime="ort", runtime_version="1", threads=2, ort_graph_optimization_level="extended")
    int8 = fp32.model_copy(update={"quantization": QuantizeSettings(tool_version="1")})
    assert device_name({"device_key": "box"}, fp32) == "box-ort-2t-extended"
    assert device_name({"device_key": "box"}, int8) == "box-ort-2t-extended-int8"
    s8s8 = fp32.model_copy(update={"quantization": QuantizeSettings(tool_version="1", activation_type="QInt8")})
    assert s8s8.precision == "int8-s8s8" and device_name({"device_key": "box"}, s8s8) == "box-ort-2t-extended-int8-s8s8"
