"""`trainer quickstart`: the first thing a new user runs. Profiles this machine with the agent (the local CPU is a
device too), ingests the bundle, fits the GCN on ratios to the supernet, and scores it on subnets it never saw."""

import subprocess
import sys
from pathlib import Path

import click

from edge_agent.errors import EXIT_INVALID, AgentError


@click.command()
@click.option("--work", "work_dir", default="runs/this-cpu", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the bundle, the dataset and the predictor; re-running resumes the profile.")
@click.option("--subnets", type=click.IntRange(10), default=100, show_default=True)
@click.option("--runtime", type=click.Choice(["ort", "mnn"]), default="ort", show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True)
@click.option("--protocol", default="default", show_default=True, help="Measurement protocol preset.")
@click.option("--kind", default="gcn", show_default=True, help="Predictor kind.")
@click.option("--hidden", type=click.IntRange(1), default=None, help="GCN hidden size (default 600).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Maximum training epochs.")
@click.option("--seed", type=int, default=0, show_default=True)
def quickstart(work_dir, subnets, runtime, threads, protocol, kind, hidden, epochs, seed):
    """Profile cifar-supernet subnets here, ingest, fit, and print the evaluation table."""
    from trainer.commands_model import _print_metrics
    from trainer.dataset import Dataset
    from trainer.evaluation import evaluate
    from trainer.fitting import fit
    from trainer.ingest import ingest

    bundle = work_dir / "bundle"
    _profile(bundle, subnets, runtime, threads, protocol, seed)
    dataset = Dataset(work_dir / "dataset", create=True)
    report = ingest(bundle, dataset)
    device = report.devices[0]
    click.echo("ingested {} record(s) for device {}".format(report.added, device))
    hyper = {key: value for key, value in (("hidden", hidden), ("epochs", epochs)) if value is not None}
    result = fit(dataset, [device], kind, None, seed, hyper, work_dir / "predictor")
    click.echo("fitted {} on {} subnets (+{} for validation)".format(kind, len(result.train_items),
                                                                    len(result.val_items)))
    from trainer.predictors.store import load_predictor

    predictor, config = load_predictor(work_dir / "predictor")
    for measured in ("absolute", "ratio"):
        click.echo("scored against the {} measurement".format(
            "absolute median" if measured == "absolute" else "drift-free (interleaved ratio x reference)"))
        _print_metrics(evaluate(predictor, config, dataset, device, 0, seed, measured))


def _profile(bundle: Path, subnets: int, runtime: str, threads: int, protocol: str, seed: int) -> None:
    """The agent's own CLI, as a board would run it; exit 3 (some items invalid) still leaves a usable bundle."""
    command = [sys.executable, "-m", "edge_agent", "profile", "--out", str(bundle), "--subnets", str(subnets),
               "--runtime", runtime, "--threads", str(threads), "--protocol", protocol, "--seed", str(seed)]
    done = subprocess.run(command)
    if done.returncode not in (0, EXIT_INVALID):
        raise AgentError("edge-agent profile failed (exit {}); see its message above".format(done.returncode))
