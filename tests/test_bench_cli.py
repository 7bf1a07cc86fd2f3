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
    # item and reference alternate in bursts of equal time (the preset's), so the small reference runs more often
    assert record.protocol.burst_warmup_runs == 1 and record.protocol.burst_min_time_ns > 0
    assert all(len(w) >= record.protocol.burst_min_runs for w in record.samples_ns + record.reference_samples_ns)
    assert sum(map(len, record.reference_samples_ns)) > sum(map(len, record.samples_ns))
    assert all(isinstance(s, int) and s > 0 for w in record.samples_ns for s in w)
    assert record.load_ns > 0 and record.first_inference_ns > 0
    assert interleaved_ratio(record.samples_ns, record.reference_samples_ns) > 2  # 64 channels vs 4
    assert os.path.exists(os.path.join(out, record.model.model_path))
    manifest = read_manifest(out)
    assert manifest.settings.runtime == runtime and manifest.fingerprint["device_key"]


def test_second_bench_appends_and_a_repeat_resumes(tmp_path, tiny_models):
    out = str(tmp_path / "bundle")
    for model in tiny_models[:2]:
        assert run_cli("edge_agent", "bench", model, "--out", out, *FAST).returncode == 0
    assert len(read_records(out).records) == 2
    repeat = run_cli("edge_agent", "bench", tiny_models[0], "--out", out, *FAST)
    assert repeat.returncode == 0 and "already measured" in repeat.stdout
    assert len(read_records(out).records) == 2
    other_threads = run_cli("edge_agent", "bench", tiny_models[0], "--out", out, "--threads", "2", *FAST)
    assert other_threads.returncode == 0 and len(read_records(out).records) == 3
    assert run_cli("edge_agent", "bench", tiny_models[0], "--out", out, "--again", *FAST).returncode == 0
    assert len(read_records(out).records) == 4


def _one_line_error(result):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_mnn_winograd_level_is_part_of_the_settings_and_the_device(tmp_path, tiny_models):
    from trainer.ingest import device_name

    out = str(tmp_path / "bundle")
    large = tiny_models[2]
    for level in (("--mnn-winograd-level", "1"), ()):  # unset: MNN's own default, recorded as the level it is
        args = ("edge_agent", "bench", large, "--runtime", "mnn", *level, "--out", out)
        assert run_cli(*args, *FAST).returncode == 0
    assert run_cli("edge_agent", "bench", large, "--runtime", "mnn", "--mnn-winograd-level", "4", "--out", out,
                   *FAST).returncode != 0  # out of range: a clear usage error
    records = read_records(out).records
    assert [r.settings.mnn_winograd_memory_level for r in records] == [1, 3]  # the second level is not a resume
    names = {device_name({"device_key": "box"}, r.settings) for r in records}
    assert names == {"box-mnn-1t-high-winograd1", "box-mnn-1t-high-winograd3"}


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
    model.graph.node.append(onnx.helper.make_node("Hardmax", ["y"], ["h"], axis=1))  # onnxruntime has it, MNN not
    model.graph.output[0].name = "h"
    path = str(tmp_path / "hardmax.onnx")
    onnx.save(model, path)
    out = str(tmp_path / "b")
    line = _one_line_error(run_cli("edge_agent", "bench", path, "--runtime", "mnn", "--out", out, *FAST))
    assert "op not supported by MNN: ONNX::Hardmax" in line
    records = read_records(out).records
    assert len(records) == 1 and records[0].status == "failed" and "Hardmax" in records[0].error
    # The same model runs in onnxruntime, into the same bundle, and the failed record stays.
    assert run_cli("edge_agent", "bench", path, "--runtime", "ort", "--out", out, *FAST).returncode == 0
    assert [r.status for r in read_records(out).records] == ["failed", "ok"]


def test_output_path_that_is_a_file_is_refused_and_kept(tmp_path, tiny_models):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    assert "is a file" in _one_line_error(run_cli("edge_agent", "bench", tiny_models[0], "--out", str(precious)))
    assert precious.read_text() == "keep me"


def test_json_of_records_is_pure_integers(tmp_path, tiny_models):
    out = str(tmp_path / "bundle")
    assert run_cli("edge_agent", "bench", tiny_models[0], "--runtime", "mnn", "--out", out, *FAST).returncode == 0
    line = open(os.path.join(out, "measurements.jsonl")).readline()
    data = json.loads(line)
    assert all(type(s) is int for w in data["samples_ns"] for s in w)
    assert data["settings"]["mnn_precision"] == "high"


def test_bench_on_a_raspberry_pi_fixture_records_board_state(tmp_path, tiny_models):
    from conftest import REPO

    out = str(tmp_path / "pi")
    root = os.path.join(REPO, "tests", "fixtures", "rpi4")
    result = run_cli("edge_agent", "bench", tiny_models[0], "--sysroot", root, "--out", out, *FAST)
    assert result.returncode == 0, result.stderr
    assert "Raspberry Pi 4" in json.dumps(read_manifest(out).fingerprint)
    record = read_records(out).records[0]
    assert record.state_before.arm_clock_hz and record.state_before.max_temp_mc == 47236
    assert record.state_before.throttled_bits == 0 and record.status == "ok"


def test_a_hot_board_waits_on_temperature_then_marks_the_item_invalid(tmp_path, tiny_models):
    from conftest import REPO

    out = str(tmp_path / "hot")
    root = os.path.join(REPO, "tests", "fixtures", "rpi4_throttled")
    result = run_cli("edge_agent", "bench", tiny_models[0], "--sysroot", root, "--out", out, "--retries", "0",
                     "--cooldown-timeout", "0.5", *FAST)
    assert result.returncode == 3, result.stderr
    record = read_records(out).records[0]
    assert record.status == "invalid"
    assert any("to cool to" in reason for reason in record.reasons)


def test_session_per_window_opens_a_session_per_window_and_records_it(tmp_path, tiny_models):
    records = []
    for name, extra in (("fresh", ("--session-per-window",)), ("plain", ())):
        out = str(tmp_path / name)
        args = ("edge_agent", "bench", tiny_models[2], "--runtime", "mnn", "--windows", "3", *extra, "--out", out)
        assert run_cli(*args, *FAST).returncode == 0
        records += read_records(out).records
    fresh, plain = records
    assert fresh.protocol.session_per_window and not plain.protocol.session_per_window
    assert len(fresh.window_load_ns) == 2 and all(ns > 0 for ns in fresh.window_load_ns)
    assert plain.window_load_ns is None and len(fresh.samples_ns) == 3
