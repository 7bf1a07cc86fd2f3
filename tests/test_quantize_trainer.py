"""INT8 devices in the trainer: a board's fp32 and `--quantize int8` bundles ingest as two devices that share their
items (the fp32 graphs), the kernel LUT, additive, nodecost and the GCN fit on the INT8 one, and an INT8 device
borrows a predictor fitted on the same board's fp32 data with K shots (`evaluate --shots`, `adapt`)."""

import json

import onnx
import pytest
from conftest import run_cli, tiny_conv_model

from trainer.cli import main
from trainer.dataset import Dataset

FAST = ["--protocol", "quick", "--warmup-time", "0.02", "--min-time", "0.08", "--cv-threshold", "10", "--retries", "0"]
INT8 = ["--quantize", "int8"]

pytestmark = pytest.mark.slow


def _cli(args, capsys):
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def _agent(*args):
    result = run_cli("edge_agent", *[str(a) for a in args])
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(dataset dir, models dir, fp32 device, int8 device): one board's fp32 bundle and its INT8 bundle (kernels,
    fusion rules and whole models), ingested."""
    root = tmp_path_factory.mktemp("int8")
    models = root / "models"
    models.mkdir()
    for channels in (4, 8, 12, 24, 32, 48):
        onnx.save(tiny_conv_model(channels, size=32), str(models / "tiny{}.onnx".format(channels)))
    onnx.save(tiny_conv_model(16, size=32), str(root / "reference.onnx"))
    whole = ["profile", "--models", models, "--reference", root / "reference.onnx"] + FAST
    _agent(*whole, "--out", root / "fp32")
    _agent("profile", "--kernels", "--no-fusion-rules", "--kernel-types", "conv", "--kernel-samples", "4",
           "--out", root / "int8", *INT8, *FAST)
    _agent("detect-fusion", "--case", "conv+relu", "--out", root / "int8", *INT8, *FAST)
    _agent(*whole, "--out", root / "int8", *INT8)
    data = root / "ds"
    for bundle in ("fp32", "int8"):
        with pytest.raises(SystemExit) as done:
            main(["ingest", str(root / bundle), "--dataset", str(data)])
        assert done.value.code == 0
    devices = Dataset(data).devices()
    fp32 = next(d for d in devices if not d.endswith("-int8"))
    return data, models, fp32, fp32 + "-int8"


def test_int8_bundle_is_its_own_device_with_the_fp32_graphs(dataset):
    data, models, fp32, int8 = dataset
    ds = Dataset(data)
    assert sorted(ds.devices()) == sorted([fp32, int8])
    graphs = {device: {r["model_sha256"] for r in ds.rows([device]) if r["item_kind"] == "model"}
              for device in (fp32, int8)}
    assert graphs[fp32] == graphs[int8] and len(graphs[int8]) == 6
    assert all(ds.model_path(sha) is not None for sha in graphs[int8])  # the fp32 files: what a predictor encodes
    assert {r["opt_level"] for r in ds.rows([int8])} == {"all-int8"}


@pytest.mark.parametrize("kind", ["lut", "hybrid", "additive", "nodecost", "gcn"])
def test_predictors_fit_on_an_int8_device(dataset, kind, tmp_path, capsys):
    data, models, _, int8 = dataset
    extra = ["--epochs", "3", "--hidden", "8", "--layers", "2"] if kind == "gcn" else []
    code, _, err = _cli(["fit", "--dataset", data, "--device", int8, "--kind", kind, "--train-size", "4",
                         "--out", tmp_path / "p"] + extra, capsys)
    assert code == 0, err
    code, out, err = _cli(["predict", "--predictor", tmp_path / "p", "--dataset", data, "--device", int8, "--json",
                           models / "tiny24.onnx"], capsys)
    assert code == 0, err
    assert json.loads(out)[0]["predicted_ms"] > 0
    code, out, err = _cli(["evaluate", "--predictor", tmp_path / "p", "--dataset", data, "--device", int8, "--json"],
                          capsys)
    assert code == 0 and json.loads(out)["metrics"]["n"] >= 1, err


def test_an_int8_device_borrows_the_fp32_predictor_with_shots(dataset, tmp_path, capsys):
    data, _, fp32, int8 = dataset
    code, _, err = _cli(["fit", "--dataset", data, "--device", fp32, "--kind", "nodecost", "--out", tmp_path / "p"],
                        capsys)
    assert code == 0, err
    code, out, err = _cli(["evaluate", "--predictor", tmp_path / "p", "--dataset", data, "--device", int8,
                           "--shots", "2", "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["mode"] == "new device" and report["metrics"]["n"] == 6 - 2, err
    code, _, err = _cli(["adapt", "--predictor", tmp_path / "p", "--dataset", data, "--device", int8, "--shots", "2",
                         "--out", tmp_path / "a"], capsys)
    assert code == 0, err
