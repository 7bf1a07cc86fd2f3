"""The README's main job, end to end at toy scale: profile this CPU, ingest, fit, evaluate."""

from conftest import run_cli


def test_quickstart_profiles_fits_and_scores_unseen_subnets(tmp_path):
    work = tmp_path / "run"
    args = ["trainer", "quickstart", "--work", str(work), "--subnets", "10", "--protocol", "quick", "--hidden", "16",
            "--epochs", "5"]
    result = run_cli(*args, env={"COLUMNS": "120"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ingested" in result.stdout and "items scored" in result.stdout and "Spearman" in result.stdout
    assert (work / "predictor" / "config.json").exists()
    assert (work / "bundle" / "manifest.json").exists()
