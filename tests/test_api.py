"""The Python API (trainer.api): its docstring example runs, it predicts what `trainer predict` prints for the same
inputs, every kind of input of one network predicts the same, and it loads no torch for predictors that need none."""

import csv
import doctest
import json
import subprocess
import sys

import onnx
import pytest
from click.testing import CliRunner
from conftest import REPO, tiny_conv_model

import trainer.api
from edge_agent.errors import InputError
from kernels.spaces import get_space
from kernels.spaces.nb201 import arch_to_spec, parse_arch, spec_to_arch
from lut.table import KernelSample, fit_lut
from trainer import LatencyPredictor, Prediction, load_predictor
from trainer.cell_encoding import cell_vocabulary
from trainer.cli import cli
from trainer.dataset import Dataset
from trainer.fitting import fit
from trainer.predictors.lut import LutPredictor
from trainer.predictors.store import save_predictor
from trainer.tables import import_table

COST = {"none": 0.1, "skip_connect": 0.0, "avg_pool_3x3": 0.6, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _write_table(path, archs) -> None:
    """Synthetic latencies: a cost per op on "pi4", twice that plus a constant on "other"."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "pi4_ms", "other_ms"])
        for arch in archs:
            ms = 2.0 + sum(COST[op] * (1 + 0.03 * k) for k, op in enumerate(parse_arch(arch)))
            writer.writerow([arch, ms, 1.0 + 2.0 * ms])


def _save_lut(out_dir) -> None:
    """A kernel LUT of a few conv and add kernels (too few for a regressor: the roofline fallback predicts)."""
    samples = [KernelSample("conv", {"hw": hw, "cin": 8, "cout": 8, "kernel": 3, "stride": 1, "act": "relu"},
                            1000.0 + 8 * hw * hw) for hw in (8, 16, 32)]
    samples.append(KernelSample("add", {"hw": 8, "cin": 8, "act": "none"}, 900.0))
    predictor = LutPredictor()
    predictor.table = fit_lut(samples, frozenset({("conv", "relu")}), {"runtime": "ort"}, call_overhead_ns=500.0)
    save_predictor(predictor, out_dir, {"devices": ["pi4"], "item_ids": []})


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The folder of the docstring example: data/ (devices pi4 and other), pred/{additive, two, cell, lut} and
    model.onnx; besides, ref.onnx (the nb201 reference network) and specs.json (two nb201 specs)."""
    root = tmp_path_factory.mktemp("api")
    space = get_space("nb201")
    archs = [spec_to_arch(s) for s in space.sample(24, seed=2)] + [spec_to_arch(space.reference_spec())]
    _write_table(root / "lat.csv", archs)
    dataset = Dataset(root / "data", create=True)
    for device in ("pi4", "other"):
        import_table(root / "lat.csv", "nb201", "arch", device + "_ms", device, dataset)
    fit(dataset, ["pi4"], "additive", None, 0, None, root / "pred" / "additive")
    fit(dataset, ["pi4", "other"], "additive", None, 0, None, root / "pred" / "two")
    fit(dataset, ["pi4"], "flops", None, 0, None, root / "pred" / "cell", vocabulary=cell_vocabulary("nb201"))
    _save_lut(root / "pred" / "lut")
    onnx.save(tiny_conv_model(8, size=32), str(root / "model.onnx"))
    onnx.save(space.build(space.reference_spec()), str(root / "ref.onnx"))
    (root / "specs.json").write_text(json.dumps([s.to_dict() for s in space.sample(2, seed=5)]))
    return root


def test_docstring_example_runs(work, monkeypatch):
    monkeypatch.chdir(work)
    failed, attempted = doctest.testmod(trainer.api, report=True)
    assert attempted >= 8 and failed == 0


def _cli_predict(args):
    result = CliRunner().invoke(cli, ["predict", "--json"] + [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("predictor, options", [
    ("additive", ["--dataset", "data", "--device", "pi4"]),
    ("two", ["--device", "other"]),  # a training device: its reference and its own head
    ("two", ["--reference-ms", "7.5"]),  # the mix of both heads
    ("lut", []),  # absolute: no reference
])
def test_api_predicts_what_the_cli_prints(work, monkeypatch, predictor, options):
    monkeypatch.chdir(work)
    printed = _cli_predict(["--predictor", "pred/" + predictor, "model.onnx", "ref.onnx", "--space", "nb201",
                            "--arch", ARCH, "--spec", "specs.json"] + options)
    specs = json.loads((work / "specs.json").read_text())
    keywords = {"dataset": "data", "device": "pi4"} if "--dataset" in options else \
        {"device": "other"} if "--device" in options else {"reference_ms": 7.5} if options else {}
    predicted = load_predictor("pred/" + predictor, **keywords).predict_many(
        ["model.onnx", "ref.onnx", ARCH] + specs, space="nb201")
    assert [p["predicted_ms"] for p in printed] == [r.ms for r in predicted]
    assert [p["input"] for p in printed[:3]] == [r.input for r in predicted[:3]] == ["model.onnx", "ref.onnx", ARCH]
    assert [p["input"] for p in printed[3:]] == ["specs.json[0]", "specs.json[1]"]


def test_every_kind_of_input_of_one_network_predicts_the_same(work):
    subnet = get_space("nb201").reference_spec()
    predictor = load_predictor(work / "pred" / "additive")
    results = predictor.predict_many([work / "ref.onnx", str(work / "ref.onnx"), onnx.load(str(work / "ref.onnx")),
                                      subnet.to_dict(), subnet, spec_to_arch(subnet)], space="nb201")
    assert len({r.ms for r in results}) == 1 and results[0].ms > 0
    assert results[3].input == results[4].input == "nb201:" + subnet.id
    assert results[2].input.startswith("onnx:") and results[5].input == spec_to_arch(subnet)
    labelled = predictor.predict_many([subnet], labels=["candidate 0"])
    assert labelled == [Prediction(results[0].ms, "candidate 0", results[0].low_ms, results[0].high_ms, 0.9)]
    assert predictor.predict_many([]) == []
    assert isinstance(predictor, LatencyPredictor) and predictor.reference_ms > 0


def test_cell_predictor_reads_arch_strings_and_specs_not_onnx(work):
    predictor = load_predictor(work / "pred" / "cell", space="nb201")
    by_arch, by_spec = predictor.predict_many([ARCH, arch_to_spec(ARCH).to_dict()])
    assert by_arch.ms == by_spec.ms > 0
    with pytest.raises(InputError, match="not ONNX models"):
        predictor.predict(work / "ref.onnx")


def test_torch_module_is_exported_in_memory(work):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
    predictor = load_predictor(work / "pred" / "additive")
    result = predictor.predict(net, input_shape=(1, 3, 32, 32))
    # the same network as model.onnx (Conv 3->8 3x3 pad 1, Relu, GlobalAveragePool on 32x32)
    assert result.input == "torch:Sequential" and result.ms == pytest.approx(predictor.predict(work / "model.onnx").ms)
    assert net.training  # the export put it in eval mode only for the export
    with pytest.raises(InputError, match="input_shape"):
        predictor.predict(net)


def test_unusable_inputs_and_a_missing_reference_say_what_to_give(work):
    predictor = load_predictor(work / "pred" / "additive")
    with pytest.raises(InputError, match="cannot predict a int"):
        predictor.predict(3)
    with pytest.raises(InputError, match="no such file .*space="):
        predictor.predict(ARCH)
    with pytest.raises(InputError, match="labels for"):
        predictor.predict_many([ARCH], space="nb201", labels=["a", "b"])
    with pytest.raises(InputError, match="reference latency"):
        load_predictor(work / "pred" / "two")  # two training devices: which one?
    with pytest.raises(InputError, match="did not train on device 'pi5'"):
        load_predictor(work / "pred" / "two", device="pi5")
    with pytest.raises(InputError, match="not in the dataset"):
        load_predictor(work / "pred" / "two", dataset=work / "data", device="pi5")
    assert load_predictor(work / "pred" / "lut", device="pi5").reference_ms is None


NO_TORCH = """
import json, sys
import trainer
for kind in ("additive", "lut"):
    predictor = trainer.load_predictor(sys.argv[1] + "/pred/" + kind)
    predictor.predict_many([sys.argv[1] + "/model.onnx", json.loads(sys.argv[2])])
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
"""


def test_predicting_with_an_additive_or_lut_predictor_loads_no_torch(work):
    spec = json.dumps(get_space("nb201").reference_spec().to_dict())
    done = subprocess.run([sys.executable, "-c", NO_TORCH, str(work), spec], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
