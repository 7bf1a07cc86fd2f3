"""`trainer fit --kind lut` on a real kernel-profiling bundle (onnxruntime, quick protocol): ingest keeps kernel rows
and rule tables, predict needs no --reference-ms, evaluate scores unseen models, single-kernel models hit exactly."""

import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest
from conftest import run_cli, tiny_conv_model

from edge_agent.bundle.store import MEASUREMENTS, read_records
from kernels import zoo
from kernels.single import build_kernel_model
from edge_agent.fusion.partition import partition
from tests.test_lut import FUSED, _hand_built
from trainer.cli import main
from trainer.dataset import Dataset
from trainer.encoding import encode_model
from trainer.predictors.lut import LUT_VOCABULARY, partition_encoding
from trainer.predictors.store import load_predictor

FAST = ["--protocol", "quick", "--warmup-time", "0.02", "--min-time", "0.06", "--cv-threshold", "5", "--retries", "0"]


def _cli(args, capsys):
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def _single_kernel_specs(bundle):
    """A conv and an add the rules keep in one kernel (conv+relu is a tested fusion, add+relu is not)."""
    specs = [r.spec for r in read_records(str(bundle)).records if r.item_kind == "kernel" and r.valid]
    conv = next(s for s in specs if s["kernel_type"] == "conv" and s["config"]["act"] in ("relu", "none"))
    add = next(s for s in specs if s["kernel_type"] == "add" and s["config"]["act"] == "none")
    return [conv, add]


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    """(bundle, models dir): kernels + fusion rules + whole models in one bundle."""
    root = tmp_path_factory.mktemp("lut")
    bundle, models = root / "bundle", root / "models"
    kernels = run_cli("edge_agent", "profile", "--out", str(bundle), "--kernels", "--no-fusion-rules", "--kernel-types",
                      "conv,add", "--kernel-samples", "5", *FAST)
    assert kernels.returncode == 0, kernels.stderr
    fusion = run_cli("edge_agent", "detect-fusion", "--out", str(bundle), "--case", "conv+relu", "--case", "conv+bn",
                     *FAST)
    assert fusion.returncode == 0, fusion.stderr
    models.mkdir()
    for index, spec in enumerate(_single_kernel_specs(bundle)):
        onnx.save(build_kernel_model(spec["kernel_type"], spec["config"]), str(models / "kernel{}.onnx".format(index)))
    for channels in (4, 8, 24, 32):
        onnx.save(tiny_conv_model(channels, size=32), str(models / "tiny{}.onnx".format(channels)))
    onnx.save(tiny_conv_model(16, size=32), str(root / "reference.onnx"))
    whole = run_cli("edge_agent", "profile", "--out", str(bundle), "--models", str(models), "--reference",
                    str(root / "reference.onnx"), *FAST)
    assert whole.returncode == 0, whole.stderr
    return bundle, models


def test_fit_predict_evaluate_lut(profiled, tmp_path, capsys):
    bundle, models = profiled
    dataset = tmp_path / "ds"
    code, out, err = _cli(["ingest", bundle, "--dataset", dataset], capsys)
    assert code == 0, err
    ds = Dataset(dataset)
    (device,) = ds.devices()
    assert list((ds.device_dir(device) / "rules").glob("fusion-*.json"))
    assert sum(1 for r in ds.rows() if r["item_kind"] == "kernel" and r["valid"]) >= 8

    pred = tmp_path / "pred"
    code, out, err = _cli(["fit", "--dataset", dataset, "--device", device, "--kind", "lut", "--train-size", "3",
                           "--out", pred], capsys)
    assert code == 0, err
    predictor, config = load_predictor(pred)
    assert config["kind"] == "lut" and config["target"] == "absolute" and config["training"]["devices"] == [device]
    assert len(predictor.table.exact) >= 4 and predictor.table.absorbed >= {("conv", "relu")}

    files = sorted(models.glob("*.onnx"))
    code, out, err = _cli(["predict", "--predictor", pred, "--json"] + files, capsys)
    assert code == 0, err
    predicted = {o["input"]: o["predicted_ms"] for o in json.loads(out)}
    measured = {r["model_sha256"]: r["latency_ms"] for r in ds.rows() if r["item_kind"] == "model" and r["valid"]}
    for path in files:
        ms = measured[hashlib.sha256(path.read_bytes()).hexdigest()]
        assert 0 < predicted[str(path)] and ms / 4 < predicted[str(path)] < ms * 4, (path.name, ms, predicted)
    for path in (models / "kernel0.onnx", models / "kernel1.onnx"):
        kernels = predictor.predict_kernels(encode_model(onnx.load(str(path)), LUT_VOCABULARY))
        assert [k.source for k in kernels] == ["exact"]

    code, out, err = _cli(["evaluate", "--predictor", pred, "--dataset", dataset, "--device", device, "--json"],
                          capsys)
    assert code == 0, err
    report = json.loads(out)
    reference = hashlib.sha256((models.parent / "reference.onnx").read_bytes()).hexdigest()
    unseen = len(files) - len(set(config["training"]["item_ids"]) - {reference})  # the reference is never scored
    assert report["mode"] == "training device (unseen items)" and report["metrics"]["n"] == unseen >= 3
    assert 0 <= report["metrics"]["mape_pct"] < 300


def test_a_kernel_only_device_gets_an_uncalibrated_lut(profiled, tmp_path, capsys):
    bundle, models = profiled
    kernels_only = tmp_path / "kernels-only"
    shutil.copytree(bundle, kernels_only)
    lines = (kernels_only / MEASUREMENTS).read_text().splitlines(keepends=True)
    (kernels_only / MEASUREMENTS).write_text("".join(line for line in lines if '"item_kind":"kernel"' in line))
    assert _cli(["ingest", kernels_only, "--dataset", tmp_path / "ds"], capsys)[0] == 0
    (device,) = Dataset(tmp_path / "ds").devices()
    code, out, err = _cli(["fit", "--dataset", tmp_path / "ds", "--device", device, "--kind", "lut", "--out",
                           tmp_path / "p"], capsys)
    assert code == 0 and "uncalibrated" in out, err
    predictor, _ = load_predictor(tmp_path / "p")
    table = predictor.table
    code, out, err = _cli(["predict", "--predictor", tmp_path / "p", "--json", models / "tiny8.onnx"], capsys)
    kernels = table.predict_model(onnx.load(str(models / "tiny8.onnx")))[1]
    expected_ms = (sum(k.latency_ns for k in kernels) + table.call_overhead_ns) / 1e6
    assert code == 0 and json.loads(out)[0]["predicted_ms"] == pytest.approx(expected_ms, rel=1e-6)
    code, _, err = _cli(["fit", "--dataset", tmp_path / "ds", "--device", device, "--kind", "gcn", "--out",
                         tmp_path / "g"], capsys)
    assert code != 0 and "no valid measurements" in err


def test_lut_needs_the_fusion_rules(profiled, tmp_path, capsys):
    bundle, _ = profiled
    bare = tmp_path / "bare"
    shutil.copytree(bundle, bare, ignore=shutil.ignore_patterns("rules"))
    assert _cli(["ingest", bare, "--dataset", tmp_path / "ds"], capsys)[0] == 0
    (device,) = Dataset(tmp_path / "ds").devices()
    code, _, err = _cli(["fit", "--dataset", tmp_path / "ds", "--device", device, "--kind", "lut", "--out",
                         tmp_path / "p"], capsys)
    assert code != 0 and "no fusion rule table" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["hand", "mobilenet_v3_small", "resnet18"])
def test_encoding_partition_matches_the_onnx_partition(name):
    model = _hand_built() if name == "hand" else zoo.build(name, hw=64)
    expected = partition(model, FUSED)
    got = partition_encoding(encode_model(model, LUT_VOCABULARY), FUSED, LUT_VOCABULARY)
    assert [k.kind for k in got] == [k.kind for k in expected]
    # reshape-like kernels are keyed on shapes the encoding does not keep; no kernel type measures them
    assert [k.key() for k in got if "shape" not in k.config] == [k.key() for k in expected if "shape" not in k.config]
    assert np.allclose([k.flops for k in got], [k.flops for k in expected], rtol=1e-5)
