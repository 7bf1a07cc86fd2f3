"""`trainer fit`, `evaluate` and `adapt` without --device: a dataset of one device needs no name (no `trainer devices`
first); one of several devices, or of none, gets a one-line error that says what to give."""

import csv
import json

import pytest

from kernels.spaces import get_space
from kernels.spaces.nb201 import parse_arch, spec_to_arch
from trainer.cli import main
from trainer.dataset import Dataset
from trainer.fitting import fit
from trainer.predictors.store import load_predictor
from trainer.tables import import_table

COST = {"none": 0.1, "skip_connect": 0.0, "avg_pool_3x3": 0.6, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Datasets `one` (device pi4), `two` (pi4 and other) and `empty`, from one synthetic NB201 table, and `pred`,
    an additive predictor fitted on pi4."""
    root = tmp_path_factory.mktemp("device-default")
    space = get_space("nb201")
    archs = [spec_to_arch(s) for s in space.sample(16, seed=3)] + [spec_to_arch(space.reference_spec())]
    with open(root / "lat.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "pi4_ms", "other_ms"])
        for arch in archs:
            ms = 2.0 + sum(COST[op] * (1 + 0.03 * k) for k, op in enumerate(parse_arch(arch)))
            writer.writerow([arch, ms, 1.0 + 2.0 * ms])
    for name, devices in (("one", ["pi4"]), ("two", ["pi4", "other"]), ("empty", [])):
        dataset = Dataset(root / name, create=True)
        for device in devices:
            import_table(root / "lat.csv", "nb201", "arch", device + "_ms", device, dataset)
    fit(Dataset(root / "one"), ["pi4"], "additive", None, 0, None, root / "pred")
    return root


def _run(capsys, *args):
    """(exit code, stdout, stderr) of `trainer ARGS`, through the same error handling as the console script."""
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    return (done.value.code,) + tuple(capsys.readouterr())


def test_fit_evaluate_and_adapt_default_to_the_only_device(datasets, capsys):
    pred = datasets / "fitted"
    code, out, err = _run(capsys, "fit", "--dataset", datasets / "one", "--kind", "additive", "--out", pred)
    assert code == 0 and "of pi4;" in out, err
    assert load_predictor(pred)[1]["training"]["devices"] == ["pi4"]
    code, out, err = _run(capsys, "evaluate", "--predictor", pred, "--dataset", datasets / "one", "--json")
    assert code == 0 and json.loads(out)["device"] == "pi4", err
    code, out, err = _run(capsys, "adapt", "--predictor", pred, "--dataset", datasets / "one",
                          "--out", datasets / "adapted")
    assert code == 0 and "adapted {} to pi4 ".format(pred) in out, err


@pytest.mark.parametrize("command", [
    ["fit", "--kind", "additive", "--out", "{root}/never"],
    ["evaluate", "--predictor", "{root}/pred"],
    ["adapt", "--predictor", "{root}/pred", "--out", "{root}/never"],
])
@pytest.mark.parametrize("dataset, message", [
    ("two", "the dataset has 2 devices, give --device NAME: other, pi4"),
    ("empty", "the dataset has no measurements yet"),
])
def test_without_one_device_the_error_says_what_to_give(datasets, capsys, command, dataset, message):
    args = [a.format(root=datasets) for a in command] + ["--dataset", datasets / dataset]
    code, out, err = _run(capsys, *args)
    assert code == 1 and not out and err.count("\n") == 1 and message in err, err
    assert not (datasets / "never").exists()
