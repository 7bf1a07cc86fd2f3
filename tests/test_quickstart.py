"""The README's main job, end to end at toy scale: profile this CPU (subnets, then kernels and fusion rules),
ingest, fit the default predictor (nodecost) and the kernel LUT, evaluate both, write the report."""

import json

from conftest import run_cli


def _quickstart(work, kernel_minutes: str):
    """At toy scale: 10 subnets, quick protocol."""
    args = ["trainer", "quickstart", "--work", str(work), "--subnets", "10", "--protocol", "quick",
            "--kernel-minutes", kernel_minutes]
    result = run_cli(*args, env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_quickstart_profiles_fits_and_scores_unseen_subnets(tmp_path):
    work = tmp_path / "run"
    result = _quickstart(work, "0.1")
    assert "ingested" in result.stdout and "Spearman" in result.stdout
    assert result.stdout.count("items scored") == 4  # two predictors, each against ms and against ratios
    summary = [line for line in result.stdout.splitlines() if "unseen subnets within ±10 %" in line]
    assert [line.split(":")[0] for line in summary] == ["nodecost", "lut"]
    for predictor, kind in (("predictor", "nodecost"), ("predictor-lut", "lut")):
        config = json.loads((work / predictor / "config.json").read_text())
        assert config["kind"] == kind
        assert config["training"]["devices"] == json.loads((work / "predictor" / "config.json").read_text())[
            "training"]["devices"]
    assert list((work / "kernels" / "rules").glob("*.json")), "the fusion rules the LUT needs were not stored"
    assert (work / "bundle" / "manifest.json").exists()
    _assert_report(work, result, plots=4)  # a scatter and an error CDF per predictor


def test_quickstart_without_kernels_fits_only_the_whole_model_predictor(tmp_path):
    work = tmp_path / "run"
    result = _quickstart(work, "0")
    assert result.stdout.count("items scored") == 2
    assert not (work / "kernels").exists() and not (work / "predictor-lut").exists()
    _assert_report(work, result, plots=2)


def _assert_report(work, result, plots: int):
    """It ends by writing the HTML report and printing its path, last."""
    report = work / "report.html"
    assert result.stdout.splitlines()[-1] == "report: {}".format(report)
    assert report.read_text(encoding="utf-8").count("<svg") == plots
