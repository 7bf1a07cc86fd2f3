"""Prediction intervals (trainer.intervals): on a planted noisy device the interval holds the nominal share of unseen
items; `predict --json` carries them; `search --confident` keeps only picks whose interval's upper end meets the
budget; a predictor directory from before intervals still loads and predicts, with none."""

import csv
import json
import math

import numpy as np
import pytest

from kernels.spaces import get_space
from kernels.spaces.nb201 import parse_arch, spec_to_arch
from trainer import load_predictor
from trainer.cell_encoding import cell_vocabulary, encode_nb201_cell
from trainer.cli import main
from trainer.dataset import Dataset
from trainer.evaluation import evaluate
from trainer.fitting import fit
from trainer.intervals import (DEFAULT_COVERAGE, FOLDS, adapted_interval, conformal_quantile, coverage_report,
                               interval_for)
from trainer.predictors.store import load_predictor as load_stored
from trainer.tables import import_table

NOISE = 0.08  # sd of the planted device's log-normal noise
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _planted_ms(arch: str, rng) -> float:
    """Linear in FLOPs, times noise no predictor can learn: the residuals of any fit are exchangeable."""
    flops = encode_nb201_cell(parse_arch(arch)).total_flops
    return (1.0 + 4.0 * flops / 1e9) * math.exp(rng.normal(0.0, NOISE))


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A dataset with 600 distinct NB201 cells on "planted" (and "twin", the same law with its own noise), and a
    cell-level flops predictor fitted on 200 of the planted device's items."""
    root = tmp_path_factory.mktemp("intervals")
    space = get_space("nb201")
    archs = sorted({spec_to_arch(s) for s in space.sample(700, seed=3)} - {spec_to_arch(space.reference_spec())})
    archs = archs[:600] + [spec_to_arch(space.reference_spec())]
    rng = np.random.default_rng(0)
    with open(root / "lat.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "planted_ms", "twin_ms"])
        writer.writerows([arch, _planted_ms(arch, rng), _planted_ms(arch, rng)] for arch in archs)
    dataset = Dataset(root / "data", create=True)
    for device in ("planted", "twin"):
        import_table(root / "lat.csv", "nb201", "arch", device + "_ms", device, dataset)
    fit(dataset, ["planted"], "flops", 200, 0, None, root / "pred", vocabulary=cell_vocabulary("nb201"))
    return root, dataset


@pytest.fixture
def run(capsys):
    """Run a trainer command as its console entry point does: (exit code, stdout, stderr)."""
    def invoke(*args):
        capsys.readouterr()
        with pytest.raises(SystemExit) as done:
            main([str(a) for a in args])
        out, err = capsys.readouterr()
        return done.value.code, out, err
    return invoke


def test_conformal_rank_and_too_few_residuals():
    residuals = [0.1 * i for i in range(1, 9)]
    assert conformal_quantile(residuals, 0.9) == math.inf  # rank ⌈9 · 0.9⌉ = 9 of 8: none, not made up
    assert conformal_quantile(residuals + [0.9], 0.9) == pytest.approx(0.9)  # rank 9 of 9
    assert conformal_quantile([0.1 * i for i in range(1, 20)], 0.9) == pytest.approx(1.8)  # rank 18 of 19


def test_coverage_on_unseen_items_is_near_nominal(work):
    root, dataset = work
    predictor, config = load_stored(root / "pred")
    assert config["intervals"]["method"] == "cross-fit" and config["intervals"]["folds"] == FOLDS
    assert len(config["intervals"]["residuals"]["planted"]) == 200  # every item the predictor used
    for coverage in (0.8, DEFAULT_COVERAGE):
        result = evaluate(predictor, config, dataset, "planted", coverage=coverage)
        assert result.metrics["n"] == 400
        assert abs(result.interval["empirical_coverage"] - coverage) <= 0.05, result.interval
        inside = (result.measured_ms >= result.low_ms) & (result.measured_ms <= result.high_ms)
        assert np.mean(inside) == result.interval["empirical_coverage"]
    # the noise's own 90 % interval is ±1.645 sd in log space: the interval is about that wide, not wider
    assert result.interval["half_width_log"] == pytest.approx(1.645 * NOISE, rel=0.25)


def test_evaluate_reports_coverage_beside_nominal_within_80_columns(work, run):
    root, dataset = work
    code, out, _ = run("evaluate", "--predictor", root / "pred", "--dataset", dataset.root, "--device", "planted")
    assert code == 0 and all(len(line) <= 80 for line in out.splitlines())
    for row in ("coverage, nominal", "coverage, empirical", "interval width", "interval from"):
        assert row in out
    code, out, _ = run("evaluate", "--predictor", root / "pred", "--dataset", dataset.root, "--device", "planted",
                       "--json", "--coverage", "0.8")
    interval = json.loads(out)["interval"]
    assert code == 0 and interval["coverage"] == 0.8 and interval["basis"] == "device"
    assert abs(interval["empirical_coverage"] - 0.8) <= 0.05 and interval["mean_relative_width"] > 0


def test_many_seeds_hold_coverage_on_average(work, tmp_path):
    """One split's coverage varies by ±3 points with 100 residuals (Beta-distributed); over ten it holds on average."""
    _, dataset = work
    shares = []
    for seed in range(10):
        fitted = fit(dataset, ["planted"], "flops", 100, seed, None, tmp_path / str(seed),
                     vocabulary=cell_vocabulary("nb201"))
        predictor, config = load_stored(tmp_path / str(seed))
        assert len(fitted.intervals["residuals"]["planted"]) == 100
        shares.append(evaluate(predictor, config, dataset, "planted").interval["empirical_coverage"])
    assert abs(np.mean(shares) - DEFAULT_COVERAGE) <= 0.03, shares


def test_predict_json_carries_the_interval(work, run):
    root, _ = work
    code, out, _ = run("predict", "--predictor", root / "pred", "--space", "nb201", "--arch", ARCH, "--json")
    assert code == 0
    (wide,) = json.loads(out)
    assert wide["coverage"] == DEFAULT_COVERAGE and wide["low_ms"] < wide["predicted_ms"] < wide["high_ms"]
    code, out, _ = run("predict", "--predictor", root / "pred", "--space", "nb201", "--arch", ARCH, "--json",
                        "--coverage", "0.5")
    (narrow,) = json.loads(out)
    assert narrow["predicted_ms"] == wide["predicted_ms"] and narrow["coverage"] == 0.5
    assert wide["low_ms"] < narrow["low_ms"] < narrow["high_ms"] < wide["high_ms"]
    api = load_predictor(root / "pred").predict(ARCH, space="nb201")
    assert (api.low_ms, api.high_ms) == (wide["low_ms"], wide["high_ms"])
    code, out, _ = run("predict", "--predictor", root / "pred", "--space", "nb201", "--arch", ARCH)
    assert code == 0 and "ms at 90 %" in out


def test_search_confident_never_returns_a_pick_over_the_budget(work, run):
    root, _ = work
    args = ("search", "--predictor", root / "pred", "--space", "nb201", "--candidates", 300, "--top", 10, "--json")
    budget = 1.5  # the planted device's reference runs ~2.4 ms: a budget near the middle of the sample
    code, out, _ = run(*args, "--budget-ms", budget, "--reference-ms", 2.4)
    plain = json.loads(out)
    assert code == 0 and any(f["high_ms"] > budget for f in plain)  # without the flag, some picks risk the budget
    for coverage in ("0.8", "0.9", "0.99"):
        code, out, err = run(*args, "--budget-ms", budget, "--reference-ms", 2.4, "--confident", "--coverage",
                              coverage)
        found = json.loads(out)
        assert code == 0 and found, err
        assert all(f["high_ms"] <= budget and f["predicted_ms"] <= budget for f in found)
        assert all(f["coverage"] == float(coverage) for f in found)
    code, _, err = run(*args, "--budget-ms", 0.2, "--reference-ms", 2.4, "--confident")
    assert code == 1 and "upper end" in err and "Traceback" not in err


def test_a_predictor_from_before_intervals_loads_and_predicts_without(work, tmp_path, run):
    root, dataset = work
    old = tmp_path / "old"
    old.mkdir()
    config = json.loads((root / "pred" / "config.json").read_text())
    del config["intervals"]
    (old / "config.json").write_text(json.dumps(config))
    (old / "weights.safetensors").write_bytes((root / "pred" / "weights.safetensors").read_bytes())
    prediction = load_predictor(old).predict(ARCH, space="nb201")
    assert prediction.ms > 0 and (prediction.low_ms, prediction.high_ms, prediction.coverage) == (None, None, None)
    code, out, _ = run("predict", "--predictor", old, "--space", "nb201", "--arch", ARCH, "--json")
    assert code == 0 and json.loads(out)[0]["low_ms"] is None and json.loads(out)[0]["high_ms"] is None
    code, out, _ = run("evaluate", "--predictor", old, "--dataset", dataset.root, "--device", "planted", "--json")
    assert code == 0 and json.loads(out)["interval"] is None
    code, _, err = run("search", "--predictor", old, "--space", "nb201", "--budget-ms", 2, "--candidates", 20,
                        "--confident")
    assert code == 1 and "records none" in err


def test_a_slow_kind_with_few_validation_items_gives_an_unbounded_interval(work, tmp_path, run):
    _, dataset = work
    fit(dataset, ["planted"], "mlp", 40, 0, {"epochs": 2, "hidden": 8, "layers": 1}, tmp_path / "mlp",
        vocabulary=cell_vocabulary("nb201"))
    _, config = load_stored(tmp_path / "mlp")
    assert config["intervals"]["method"] == "validation"
    assert len(config["intervals"]["residuals"]["planted"]) == 4  # 10 % of 40: too few for 90 %, enough for 75 %
    prediction = load_predictor(tmp_path / "mlp").predict(ARCH, space="nb201")
    assert (prediction.low_ms, prediction.high_ms) == (0.0, math.inf)
    assert load_predictor(tmp_path / "mlp", coverage=0.75).predict(ARCH, space="nb201").high_ms < math.inf
    code, out, _ = run("predict", "--predictor", tmp_path / "mlp", "--space", "nb201", "--arch", ARCH, "--json")
    assert code == 0 and json.loads(out)[0]["low_ms"] == 0.0 and json.loads(out)[0]["high_ms"] is None


def test_a_device_with_too_few_residuals_borrows_the_pooled_ones():
    config = {"intervals": {"residuals": {"big": [0.01 * i for i in range(1, 41)], "small": [0.5, 0.6]}}}
    assert interval_for(config, "big").basis == "device"
    small = interval_for(config, "small")
    assert small.basis == "pooled" and small.residuals == 42 and small.bounded
    assert interval_for(config, "unknown-board").basis == "pooled"  # a new device before any shot


def test_novel_predictions_are_bounded_by_novel_residuals_alone():
    record = {"residuals": {"a": [0.01 * i for i in range(1, 21)]}, "domain": {},
              "novel_residuals": {"a": [0.1 * i for i in range(1, 21)]}}
    interval = interval_for({"intervals": record}, "a")
    assert interval.half_width == pytest.approx(0.19) and interval.novel_half_width == pytest.approx(1.9)
    low, high = interval.bounds(np.array([1.0, 1.0]), np.array([False, True]))
    assert high == pytest.approx([math.exp(0.19), math.exp(1.9)]) and low == pytest.approx(1 / high)
    assert interval_for({"intervals": record}, "new-board").novel_half_width == pytest.approx(1.9)  # pooled
    assert adapted_interval(record, [2.5] * 10, 0.9).novel_half_width == pytest.approx(2.5)  # shots widen it too
    # too few novel residuals held out: a novel prediction is unbounded, the others keep their interval
    few = interval_for({"intervals": dict(record, novel_residuals={"a": [0.5]})}, "a")
    low, high = few.bounds(np.array([1.0, 1.0]), np.array([False, True]))
    assert np.isfinite(high[0]) and (low[1], high[1]) == (0.0, math.inf)
    report = coverage_report(few, np.array([1.1, 5.0]), np.array([1.0, 1.0]), np.array([False, True]))
    assert report["unbounded_items"] == 1 and report["novel_items"] == 1 and report["empirical_coverage"] == 1.0
    assert report["mean_relative_width"] == pytest.approx(2 * math.sinh(0.19))  # over the bounded one
    # a predictor fitted before domains were recorded: one width for every prediction
    plain = interval_for({"intervals": {"residuals": record["residuals"]}}, "a")
    assert plain.novel_half_width is None and plain.novel([], ()) is None
    assert plain.bounds(np.ones(2), np.array([False, True]))[1][1] < 2


def test_few_shots_still_widen_and_a_higher_coverage_is_never_narrower():
    record = {"residuals": {"a": [0.001 * i for i in range(1, 41)]}}  # narrower than the shots': they decide
    shots = [0.05, 0.3, 0.1, 0.2, 0.02, 0.04, 0.03, 0.06, 0.07, 0.08]  # 10: a 90 % quantile, no 95 % one
    widths = [adapted_interval(record, shots, c).half_width for c in (0.5, 0.8, 0.9, 0.95, 0.99)]
    assert widths == sorted(widths) and widths[2] == widths[3] == 0.3  # too few for 95 %: the largest still floors
    assert adapted_interval(record, [], 0.9) == interval_for({"intervals": record}, "new-board", 0.9)
    assert adapted_interval({"residuals": {"a": [0.1]}}, shots, 0.95).half_width == math.inf  # nothing bounds it


def test_adapted_device_widens_the_source_interval_by_its_own_shots(work, tmp_path, run):
    root, dataset = work
    code, out, err = run("adapt", "--predictor", root / "pred", "--dataset", dataset.root, "--device", "twin",
                          "--shots", 12, "--out", tmp_path / "twin")
    assert code == 0, err
    config = json.loads((tmp_path / "twin" / "config.json").read_text())
    assert config["intervals"]["adapted"]["device"] == "twin"
    assert len(config["intervals"]["adapted"]["residuals"]) == 12  # leave-one-out on the 12 shots
    source, adapted = interval_for(json.loads((root / "pred" / "config.json").read_text()), None), \
        interval_for(config, None)
    assert adapted.basis == "adapted" and adapted.half_width >= source.half_width
    result = evaluate(*load_stored(root / "pred"), dataset, "twin", shots=12)
    assert result.interval["basis"] == "adapted" and result.interval["empirical_coverage"] >= 0.8
