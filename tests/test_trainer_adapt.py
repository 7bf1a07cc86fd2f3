"""A new device from its reference and a few measured models: `trainer calibration-set` chooses what to measure,
`edge-agent profile --specs` measures exactly that, `trainer adapt` writes a predictor for the device."""

import csv
import json
import shlex

import numpy as np
import pytest
from conftest import run_cli

from edge_agent.bundle.store import read_records
from kernels.spaces import get_space
from kernels.spaces.nb201 import parse_arch, spec_to_arch
from trainer.adapting import predictor_id
from trainer.cli import main
from trainer.dataset import Dataset, Source
from trainer.examples import load_examples
from trainer.fitting import fit
from trainer.predictors import register
from trainer.predictors.base import Predictor
from trainer.predictors.store import load_predictor, save_predictor
from trainer.tables import import_table

COSTS = ({"none": 0.1, "skip_connect": 0.0, "avg_pool_3x3": 0.6, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0},
         {"none": 0.3, "skip_connect": 0.2, "avg_pool_3x3": 2.5, "nor_conv_1x1": 0.4, "nor_conv_3x3": 0.8})
FAST = ["--protocol", "quick", "--warmup-time", "0.05", "--min-time", "0.15", "--cv-threshold", "10"]


def _latency(arch, cost):
    return 2.0 + sum(cost[op] * (1 + 0.03 * k) for k, op in enumerate(parse_arch(arch)))


def _mixed(arch):
    """The new device: its log ratio is 0.7 · dev's + 0.3 · other's, which neither source head predicts alone."""
    return 3.0 * _latency(arch, COSTS[0]) ** 0.7 * _latency(arch, COSTS[1]) ** 0.3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(dataset with source devices dev and other, the new device mixed, and tiny with one item; a two-head
    additive predictor fitted on the sources; the archs)."""
    root = tmp_path_factory.mktemp("adapt")
    space = get_space("nb201")
    archs = [spec_to_arch(s) for s in space.sample(40, seed=5)] + [spec_to_arch(space.reference_spec())]
    path = root / "lat.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch_str", "dev_ms", "other_ms", "mixed_ms", "tiny_ms"])
        for i, arch in enumerate(archs):
            tiny = _mixed(arch) if i in (0, len(archs) - 1) else ""
            writer.writerow([arch, _latency(arch, COSTS[0]), _latency(arch, COSTS[1]), _mixed(arch), tiny])
    dataset = Dataset(root / "ds", create=True)
    for device in ("dev", "other", "mixed", "tiny"):
        import_table(path, "nb201", "arch_str", device + "_ms", device, dataset)
    fit(dataset, ["dev", "other"], "additive", None, 0, None, root / "pred")
    return dataset, root / "pred", archs


def _run(capsys, *args):
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return done.value.code, out, err


def _predict(capsys, predictor, archs, *extra):
    code, out, _ = _run(capsys, "predict", "--predictor", predictor, "--space", "nb201", "--json",
                        *extra, *[a for arch in archs for a in ("--arch", arch)])
    assert code == 0
    return np.array([p["predicted_ms"] for p in json.loads(out)])


def test_adapted_predictor_is_closer_to_the_new_device(setup, tmp_path, capsys):
    dataset, pred, archs = setup
    code, out, _ = _run(capsys, "adapt", "--predictor", pred, "--dataset", dataset.root, "--device", "mixed",
                        "--shots", 10, "--out", tmp_path / "adapted")
    assert code == 0 and "on 10 of its 40 item(s)" in out
    config = json.loads((tmp_path / "adapted" / "config.json").read_text())
    record = config["training"]["adaptation"]
    assert record["device"] == "mixed" and len(set(record["item_ids"])) == 10
    assert record["source_predictor_id"] == predictor_id(pred)
    reference_ms = _mixed(archs[-1])
    assert config["training"]["reference_ms"] == {"mixed": pytest.approx(reference_ms)}

    adapted_items = set(record["item_ids"])
    unseen = [e.item_id for e in load_examples(dataset, ["mixed"]) if not e.is_reference and e.item_id not in
              adapted_items]
    rows = {r["item_id"]: json.loads(r["spec_json"])["choices"]["arch"] for r in dataset.rows(["mixed"])}
    scored = [rows[i] for i in unseen]
    truth = np.array([_mixed(a) for a in scored])
    error = {name: np.abs(_predict(capsys, p, scored, "--reference-ms", reference_ms) / truth - 1).mean()
             for name, p in (("source", pred), ("adapted", tmp_path / "adapted"))}
    assert error["adapted"] < 0.5 * error["source"], error
    default = _predict(capsys, tmp_path / "adapted", scored[:3])  # the adapted device's reference by default
    assert np.allclose(default, _predict(capsys, tmp_path / "adapted", scored[:3], "--reference-ms", reference_ms))


def test_calibration_set_is_deterministic_and_profile_measures_exactly_it(setup, tmp_path, capsys):
    _, pred, _ = setup
    outputs = []
    for name in ("a", "b"):
        code, out, _ = _run(capsys, "calibration-set", "--predictor", pred, "--space", "nb201", "--k", 3,
                            "--candidates", 40, "--seed", 2, "--out", tmp_path / name)
        assert code == 0
        outputs.append((json.loads((tmp_path / name / "specs.json").read_text()), out))
    (specs, out), (again, _) = outputs
    assert specs == again
    reference_id = get_space("nb201").reference_spec().id
    ids = [get_space("nb201").spec_from_dict(s).id for s in specs]
    assert len(set(ids)) == 3 and reference_id not in ids

    command = shlex.split(next(line for line in out.splitlines() if "edge-agent profile" in line))
    assert command[:2] == ["edge-agent", "profile"] and command[command.index("--specs") + 1] == str(
        tmp_path / "a" / "specs.json")
    bundle = tmp_path / "bundle"
    args = command[2:]
    args[args.index("--out") + 1] = str(bundle)
    result = run_cli("edge_agent", "profile", *args, "--runtime", "ort", *FAST)
    assert result.returncode == 0, result.stderr
    records = read_records(str(bundle)).records
    assert {r.item_id for r in records if r.item_kind == "subnet"} == set(ids)
    assert {r.item_id for r in records if r.item_kind == "reference"} == {reference_id}
    assert all(r.spec in specs for r in records if r.item_kind == "subnet")


def test_profile_refuses_specs_of_another_space(tmp_path):
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps([get_space("nb201").sample(1, 0)[0].to_dict()]))
    result = run_cli("edge_agent", "profile", "--out", str(tmp_path / "b"), "--specs", str(specs))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: {}: spec 0 is of space 'nb201', not 'cifar-supernet'; give --space nb201".format(specs)]


@register("absolute-test")
class AbsolutePredictor(Predictor):
    """Predicts its own device's milliseconds, as a kernel lookup table does."""

    target = "absolute"

    def raw_predict(self, encodings):
        return np.ones(len(encodings))

    def tensors(self):
        return {"unused": np.zeros(1)}

    def load_tensors(self, tensors):
        pass


def _without_reference(dataset):
    rows = [dict(r, device="noref", row_id="noref:" + r["row_id"]) for r in dataset.rows(["mixed"])
            if r["item_kind"] != "reference"]
    dataset.append(rows, Source("noref-test", "table", "noref", "noref", len(rows)))


def test_adapt_refusals_are_one_line(setup, tmp_path, capsys):
    dataset, pred, _ = setup
    if "noref" not in dataset.devices():
        _without_reference(dataset)
    save_predictor(AbsolutePredictor(), tmp_path / "absolute", {"devices": ["dev"], "item_ids": []})
    cases = (((pred, "noref"), "has no measurement of the reference model"),
             ((pred, "tiny"), "has 1 measured item(s) besides the reference; adapting needs at least 2"),
             ((pred, "nowhere"), "device 'nowhere' is not in the dataset"),
             ((tmp_path / "absolute", "mixed"), "'absolute-test' predictor predicts its own device's absolute"))
    for (predictor, device), message in cases:
        code, _, err = _run(capsys, "adapt", "--predictor", predictor, "--dataset", dataset.root, "--device", device,
                            "--out", tmp_path / "out")
        assert code == 1 and len(err.strip().splitlines()) == 1 and message in err, err
    code, _, err = _run(capsys, "adapt", "--predictor", pred, "--dataset", dataset.root, "--device", "mixed",
                        "--out", pred)
    assert code == 1 and "is the source predictor" in err
    assert not (tmp_path / "out").exists()
    assert load_predictor(pred)[1]["training"].get("adaptation") is None
