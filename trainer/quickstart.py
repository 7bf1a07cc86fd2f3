"""`trainer quickstart`: the first thing a new user runs. Profiles this machine with the agent (the local CPU is a
device too), ingests the bundle, fits the default whole-model predictor (`nodecost`) on ratios to the supernet,
scores it on subnets it never saw, and ends with the HTML report of it all (`trainer report`), printing its path last.

Beside it, unless --kernel-minutes is 0, it profiles single kernels (the supernet's own layers first) and the
runtime's fusion rules, and fits and scores the kernel lookup table on the same split: from ~80 whole-model
examples no whole-model predictor learns how a conv's cost steps with its channel blocking, which the kernels
measure directly.
"""

import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import click

from edge_agent.errors import EXIT_INVALID, AgentError

SPACE = "cifar-supernet"
# The kernel profile uses the quick protocol whatever --protocol says: the supernet's ~400 distinct layers take about
# 6 minutes with it and three times as long with the default one.
KERNEL_PROTOCOL = "quick"
KERNEL_SAMPLES_PER_TYPE = 5  # beyond the space's own layers: a few points per kernel type for the regressor's range
# The supernet's kernel types, the few-config ones first, so that a budget cut falls on the rarest conv layers
# (the space's layers are measured most frequent first) and no type is left without measurements.
KERNEL_TYPES = "global_avgpool,fc,add,dwconv,conv"
# A busy moment can leave every record of a short kernel profile invalid (window ratios spread 14-41 % once in CI, at
# 0.1 minutes); a re-run measures only what is still missing, so a few passes cost little when the first one took.
KERNEL_PASSES = 3


@click.command()
@click.option("--work", "work_dir", default="runs/this-cpu", show_default=True, type=click.Path(path_type=Path),
              help="Folder for the bundles, the dataset and the predictors; re-running resumes the profiles.")
@click.option("--subnets", type=click.IntRange(10), default=100, show_default=True)
@click.option("--runtime", type=click.Choice(["ort", "mnn"]), default="ort", show_default=True)
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True)
@click.option("--protocol", default="default", show_default=True, help="Measurement protocol preset of the subnets.")
@click.option("--kind", default="nodecost", show_default=True, help="Predictor kind.")
@click.option("--hidden", type=click.IntRange(1), default=None, help="GCN/MLP hidden size (gcn default 600).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Maximum training epochs.")
@click.option("--kernel-minutes", type=click.FloatRange(min=0), default=6.0, show_default=True,
              help="Budget of the kernel profile for the kernel lookup table fitted beside --kind (re-running adds "
                   "as much again); 0 skips the kernels, the fusion rules and the table.")
@click.option("--seed", type=int, default=0, show_default=True)
def quickstart(work_dir, subnets, runtime, threads, protocol, kind, hidden, epochs, kernel_minutes, seed):
    """Profile cifar-supernet subnets (then kernels) here, ingest, fit a predictor (and the kernel LUT), score both."""
    from trainer.dataset import Dataset
    from trainer.ingest import ingest
    from trainer.report import write_report

    device_options = ["--runtime", runtime, "--threads", str(threads)]
    bundles = [work_dir / "bundle"]
    _agent(["profile", "--out", str(bundles[0]), "--space", SPACE, "--subnets", str(subnets), "--protocol", protocol,
            "--seed", str(seed)] + device_options)
    with_lut = kernel_minutes > 0
    if with_lut:
        bundles.append(work_dir / "kernels")
        with_lut = _profile_kernels(bundles[1], kernel_minutes, device_options, seed)
    dataset = Dataset(work_dir / "dataset", create=True)
    devices = set()
    for bundle in bundles:
        report = ingest(bundle, dataset)
        devices.update(report.devices)
        click.echo("ingested {} record(s) from {}".format(report.added, bundle))
    if len(devices) != 1:
        raise AgentError("the bundles describe {} devices ({}), expected one".format(len(devices), ", ".join(devices)))
    device = devices.pop()
    hyper = {key: value for key, value in (("hidden", hidden), ("epochs", epochs)) if value is not None}
    scores = {kind: _fit_and_score(dataset, device, kind, hyper, work_dir / "predictor", seed)}
    if with_lut:
        scores["lut"] = _fit_and_score(dataset, device, "lut", {}, work_dir / "predictor-lut", seed)
    for name, metrics in scores.items():
        click.echo("{}: {:.0%} of {} unseen subnets within ±10 % of the drift-free measurement (MAPE {:.1f} %)".format(
            name, metrics["within_10"], metrics["n"], metrics["mape_pct"]))
    predictors = [work_dir / "predictor"] + ([work_dir / "predictor-lut"] if with_lut else [])
    report = write_report(dataset, predictors, work_dir / "report.html")
    lut_missing = kernel_minutes > 0 and not with_lut
    if lut_missing:
        click.echo("lut: skipped, no kernel record came out valid in {} passes (a busy machine?); re-run the same "
                   "command to measure the kernels again".format(KERNEL_PASSES), err=True)
    click.echo("report: {}".format(report))
    return EXIT_INVALID if lut_missing else 0


def _fit_and_score(dataset, device: str, kind: str, hyper, out_dir: Path, seed: int) -> Dict[str, float]:
    """Fits, prints the evaluation tables, and returns the metrics against the drift-free measurement."""
    from trainer.evaluation import evaluate
    from trainer.fitting import fit
    from trainer.predictors.store import load_predictor
    from trainer.terminal import print_evaluation

    result = fit(dataset, [device], kind, None, seed, hyper, out_dir)
    click.echo("fitted {} on {} subnets (+{} for validation) of device {}: {}".format(
        kind, len(result.train_items), len(result.val_items), device, out_dir))
    predictor, config = load_predictor(out_dir)
    for measured in ("absolute", "ratio"):
        click.echo("{} scored against the {} measurement".format(kind, "absolute median" if measured == "absolute"
                                                                 else "drift-free (interleaved ratio x reference)"))
        result = evaluate(predictor, config, dataset, device, 0, seed, measured)
        print_evaluation(result)
    return result.metrics  # the last one: against the drift-free measurement


def _profile_kernels(bundle: Path, minutes: float, device_options: Sequence[str], seed: int) -> bool:
    """Kernels and, on the first pass, the fusion rules (`profile --kernels` detects them when the bundle has none);
    False when no kernel record came out valid."""
    common = ["--out", str(bundle), "--protocol", KERNEL_PROTOCOL] + list(device_options)
    for attempt in range(1, KERNEL_PASSES + 1):
        _agent(["profile", "--kernels", "--kernel-space", SPACE, "--kernel-types", KERNEL_TYPES,
                "--kernel-samples", str(KERNEL_SAMPLES_PER_TYPE),
                "--budget", str(minutes), "--seed", str(seed)] + common)
        if _valid_kernel_records(bundle):
            return True
        if attempt < KERNEL_PASSES:
            click.echo("no kernel record came out valid; measuring the kernels again", err=True)
    return False


def _valid_kernel_records(bundle: Path) -> int:
    from edge_agent.bundle.schema import KIND_KERNEL
    from edge_agent.bundle.store import read_records
    from edge_agent.kernelprof.space import OVERHEAD_SPEC

    return sum(1 for r in read_records(str(bundle)).records
               if r.item_kind == KIND_KERNEL and r.valid and r.spec != OVERHEAD_SPEC)


def _agent(arguments: List[str]) -> None:
    """The agent's own CLI, as a board would run it; exit 3 (some items invalid) still leaves a usable bundle."""
    done = subprocess.run([sys.executable, "-m", "edge_agent"] + arguments)
    if done.returncode not in (0, EXIT_INVALID):
        raise AgentError("edge-agent {} failed (exit {}); see its message above".format(arguments[0],
                                                                                        done.returncode))
