"""Model commands: fit, predict, evaluate, and a new device's calibration-set and adapt."""

import csv
import json
from pathlib import Path

import click

from trainer.commands_data import dataset_option, json_option, only_device

predictor_option = click.option("--predictor", "predictor_dir", required=True,
                                type=click.Path(exists=True, file_okay=False, path_type=Path),
                                help="Predictor directory written by `trainer fit`.")
# None: trainer.intervals.DEFAULT_COVERAGE, resolved when used so that `trainer --help` imports no numpy.
coverage_option = click.option("--coverage", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
                               help="Probability that a prediction's interval holds the latency (default 0.9).")


def _coverage(coverage):
    from trainer.intervals import DEFAULT_COVERAGE

    return DEFAULT_COVERAGE if coverage is None else coverage


def _finite(value):
    """A bound for JSON, which has no infinity: an unbounded upper end is null."""
    return None if value is None or value == float("inf") else value


def _kind_choices():
    from trainer.predictors import kinds

    return kinds()


@click.command()
@dataset_option
@click.option("--device", "devices", multiple=True,
              help="Device to train on (repeatable; default: the dataset's only device).")
@click.option("--kind", default="nodecost", show_default=True, help="Predictor kind: " + ", ".join(_kind_choices()) + ".")
@click.option("--train-size", type=click.IntRange(2), default=None, help="Items to train on (default 80 %).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--layers", type=click.IntRange(1), default=None, help="GCN/MLP layers (gcn default 4).")
@click.option("--hidden", type=click.IntRange(1), default=None, help="GCN/MLP hidden size (gcn default 600).")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Maximum epochs.")
@click.option("--patience", type=click.IntRange(1), default=None, help="Early-stopping patience (epochs).")
@click.option("--cell-space", default=None,
              help="Encode this space's cells (e.g. nb201) instead of ONNX graphs: faster, but predicts only that "
                   "space's architectures.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Predictor directory to write.")
def fit(dataset_dir, devices, kind, train_size, seed, layers, hidden, epochs, patience, cell_space, out_dir):
    """Fit a predictor of latency / reference latency on one or more devices."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from trainer.cell_encoding import cell_vocabulary
    from trainer.dataset import Dataset
    from trainer.fitting import fit as run_fit

    dataset = Dataset(dataset_dir)
    devices = devices or (only_device(dataset),)
    hyper = {k: v for k, v in (("layers", layers), ("hidden", hidden), ("epochs", epochs), ("patience", patience))
             if v is not None}
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        encode_task = bar.add_task("encoding graphs", total=None)
        epoch_task = bar.add_task("training", total=None, visible=False)

        def on_epoch(epoch, total, error):
            bar.update(epoch_task, completed=epoch, total=total, visible=True,
                       description="training (val error {:.2%})".format(error))

        result = run_fit(dataset, list(devices), kind, train_size, seed, hyper, out_dir, on_epoch,
                         lambda: bar.advance(encode_task), cell_vocabulary(cell_space) if cell_space else None)
    history = result.history
    if not result.train_items:
        click.echo("{}: no whole-model measurements of {}: kernel sums plus the call overhead, uncalibrated "
                   "-> {}".format(kind, ", ".join(devices), out_dir))
        return
    best = min(history.val_errors) if history.val_errors else float("nan")
    click.echo("{}: trained {} on {} item(s) (+{} validation) of {}; {} epoch(s), best {} with validation error "
               "{:.2%}; {} item(s) left unseen -> {}".format(
                   kind, kind, len(result.train_items), len(result.val_items), _device_list(devices), history.epochs,
                   history.best_epoch, best, result.unused_items, out_dir))


def _device_list(devices) -> str:
    """The devices by name, or by count when naming them would flood the terminal (a public table has 124)."""
    return ", ".join(devices) if len(devices) <= 3 else "{} devices ({}, ...)".format(len(devices), devices[0])


@click.command()
@predictor_option
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--space", default=None, help="Space of the --arch strings.")
@click.option("--arch", "archs", multiple=True, help="Architecture string of --space (repeatable).")
@click.option("--spec", "spec_files", multiple=True, type=click.Path(path_type=Path),
              help="JSON file with a subnet spec or a list of specs (repeatable).")
@click.option("--reference-ms", type=float, default=None, help="The target device's reference-model latency (ms).")
@click.option("--dataset", "dataset_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset that measured --device's reference latency (instead of --reference-ms).")
@click.option("--device", default=None,
              help="Target device: its reference latency from --dataset, else from the predictor's training; a "
                   "training device also predicts with its own head.")
@coverage_option
@json_option
def predict(predictor_dir, files, space, archs, spec_files, reference_ms, dataset_dir, device, coverage, as_json):
    """Predict the latency of ONNX files, space architectures or specs, each with an interval that holds it with
    probability --coverage (low_ms / high_ms in --json; null for a predictor fitted before intervals existed, and a
    null high_ms when it held out too few items for the coverage)."""
    from trainer.api import load_predictor
    from trainer.predicting import command_inputs
    from trainer.terminal import interval_text, percent

    predictor = load_predictor(predictor_dir, dataset_dir, device, reference_ms, space, _coverage(coverage))
    inputs, labels = command_inputs(files, space, archs, spec_files)
    results = predictor.predict_many(inputs, labels=labels)
    if as_json:
        click.echo(json.dumps([{"input": r.input, "predicted_ms": r.ms, "low_ms": r.low_ms,
                                "high_ms": _finite(r.high_ms), "coverage": r.coverage} for r in results]))
        return
    for r in results:
        interval = "" if r.coverage is None else "  {} ms at {}".format(interval_text(r.low_ms, r.high_ms),
                                                                         percent(r.coverage))
        click.echo("{:.4f} ms{}  {}".format(r.ms, interval, r.input))


@click.command()
@predictor_option
@dataset_option
@click.option("--device", default=None,
              help="Device whose measurements are scored (default: the dataset's only device).")
@click.option("--shots", type=click.IntRange(0), default=0, show_default=True,
              help="Measured samples of the device used to adapt the predictor (not scored).")
@click.option("--shot-selection", type=click.Choice(["chosen", "random"]), default="chosen", show_default=True,
              help="Which K items adapt the predictor: the ones it chooses as most informative (what "
                   "`trainer calibration-set` asks a user to measure), or a random draw with --seed.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--predictions-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV of id,measured_ms,predicted_ms,low_ms,high_ms per scored item (the interval's bounds at "
                   "--coverage; empty for a predictor without one).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG with a predicted-vs-measured scatter and an error CDF.")
@click.option("--measured", type=click.Choice(["absolute", "ratio"]), default="absolute", show_default=True,
              help="Score against each item's absolute median, or against its drift-free interleaved ratio x the "
                   "device's reference latency.")
@coverage_option
@json_option
def evaluate(predictor_dir, dataset_dir, device, shots, shot_selection, seed, predictions_out, plot_out, measured,
             coverage, as_json):
    """Score a predictor on a device's measurements it did not train on, and its intervals: the share of items inside
    their interval beside the nominal --coverage."""
    from trainer.dataset import Dataset
    from trainer.evaluation import evaluate as run_evaluate
    from trainer.predictors.store import load_predictor

    predictor, config = load_predictor(predictor_dir)
    dataset = Dataset(dataset_dir)
    device = device or only_device(dataset)
    result = run_evaluate(predictor, config, dataset, device, shots, seed, measured, shot_selection,
                          coverage=_coverage(coverage))
    if predictions_out:
        import numpy as np

        with open(predictions_out, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "measured_ms", "predicted_ms", "low_ms", "high_ms"])
            bounds = [[""] * len(result.ids)] * 2 if result.low_ms is None else [
                np.asarray(result.low_ms).tolist(), np.asarray(result.high_ms).tolist()]
            writer.writerows(zip(result.ids, result.measured_ms.tolist(), result.predicted_ms.tolist(), *bounds))
    if plot_out:
        from trainer.plots import plot_evaluation

        plot_evaluation(result.measured_ms, result.predicted_ms, "{} ({} shots)".format(device, shots), plot_out)
    if as_json:
        click.echo(json.dumps({"device": device, "mode": result.mode, "shots": shots, "shot_selection": shot_selection,
                               "measured": measured,
                               "reference_ms": result.reference_ms, "metrics": result.metrics,
                               "interval": result.interval}))
        return
    from trainer.terminal import evaluation_summary, print_evaluation

    print_evaluation(result)
    click.echo(evaluation_summary(result))


@click.command("calibration-set")
@predictor_option
@click.option("--space", required=True, help="Space the new device will measure (`edge-agent spaces`).")
@click.option("--k", type=click.IntRange(1), default=10, show_default=True, help="Subnets to measure.")
@click.option("--candidates", type=click.IntRange(1), default=2000, show_default=True,
              help="Subnets sampled from the space to choose from.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the candidate sample.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for specs.json (created).")
@coverage_option
def calibration_set(predictor_dir, space, k, candidates, seed, out_dir, coverage):
    """Choose the K subnets a new device should measure (besides the reference) to adapt the predictor; shows what
    it predicts for them before any is measured."""
    import shlex

    from rich.console import Console
    from rich.progress import Progress

    from trainer.adapting import calibration_specs
    from trainer.predictors.store import load_predictor

    predictor, config = load_predictor(predictor_dir)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("encoding candidates", total=candidates)
        specs = calibration_specs(predictor, space, k, candidates, seed, lambda: bar.advance(task))
    _print_chosen(predictor, config, specs, _coverage(coverage))
    out_dir.mkdir(parents=True, exist_ok=True)
    specs_path = out_dir / "specs.json"
    specs_path.write_text(json.dumps(specs, indent=1, sort_keys=True), encoding="utf-8")
    click.echo("{} subnet(s) of {} chosen from {} candidate(s) -> {}".format(len(specs), space, candidates, specs_path))
    click.echo("on the new device, with specs.json copied there, measure them and the reference (add the device's "
               "runtime and thread options):")
    click.echo("  " + " ".join(shlex.quote(a) for a in ("edge-agent", "profile", "--space", space, "--specs",
                                                         str(specs_path), "--out", "calibration-bundle")))


def _print_chosen(predictor, config, specs, coverage: float) -> None:
    """The chosen subnets' predictions for a new device, as ratios to its reference (absolute kinds: ms), with a new
    device's interval before any shot: the training devices' residuals pooled, which its error will exceed."""
    from rich.console import Console

    from edge_agent.report import narrow_table
    from kernels.spaces import spec_from_dict
    from trainer.encoding_cache import EncodingCache
    from trainer.intervals import new_device_interval
    from trainer.terminal import interval_text, percent

    cache = EncodingCache(None, predictor.vocabulary)
    encodings = [cache.for_spec(spec) for spec in specs]
    predicted = predictor.predict(encodings)
    interval = new_device_interval(config, coverage)
    low, high = ([None] * len(specs), [None] * len(specs)) if interval is None else \
        interval.bounds(predicted, interval.novel(encodings, predictor.vocabulary))
    unit = "x reference" if predictor.target == "ratio" else "ms"
    rows = [(spec_from_dict(spec).id, "{:.4g}".format(p), interval_text(a, b))
            for spec, p, a, b in zip(specs, predicted, low, high)]
    Console().print(narrow_table(("spec id", "predicted " + unit, "{} interval".format(percent(coverage))), rows,
                                 numeric=(1, 2)))
    if interval is not None:
        click.echo("(interval from the training devices; a new device errs more until measured)")


@click.command()
@predictor_option
@dataset_option
@click.option("--device", default=None,
              help="The new device (measured reference and items in the dataset; default: its only device).")
@click.option("--shots", type=click.IntRange(2), default=None,
              help="Adapt to at most this many of the device's items (default: all it measured).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Adapted predictor directory to write.")
def adapt(predictor_dir, dataset_dir, device, shots, seed, out_dir):
    """Adapt a predictor to a new device from its reference and a few measured items."""
    from trainer.adapting import adapt_to_device, save_adapted
    from trainer.dataset import Dataset
    from trainer.predictors.store import load_predictor

    predictor, config = load_predictor(predictor_dir)
    dataset = Dataset(dataset_dir)
    device = device or only_device(dataset)
    adaptation = adapt_to_device(predictor, dataset, device, shots, seed)
    save_adapted(predictor, config, predictor_dir, adaptation, seed, out_dir)
    click.echo("adapted {} to {} on {} of its {} item(s) and its reference ({:.4g} ms) -> {}".format(
        predictor_dir, device, len(adaptation.item_ids), adaptation.available, adaptation.reference_ms, out_dir))


@click.command()
@predictor_option
@click.option("--space", required=True, help="Space to search (`edge-agent spaces`).")
@click.option("--budget-ms", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Latency budget on the device, in ms.")
@click.option("--reference-ms", type=float, default=None, help="The device's reference-model latency (ms).")
@click.option("--dataset", "dataset_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Dataset that measured --device (its reference latency, and a hybrid's kernel profile).")
@click.option("--device", default=None,
              help="Target device: its reference from --dataset, else from the predictor's training; a training "
                   "device also predicts with its own head.")
@click.option("--candidates", type=click.IntRange(1), default=1000, show_default=True,
              help="Subnets sampled from the space.")
@click.option("--top", type=click.IntRange(1), default=10, show_default=True, help="Subnets to keep.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the candidate sample.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the kept specs here (a JSON list for `edge-agent profile --specs`).")
@coverage_option
@click.option("--confident", is_flag=True,
              help="Keep only subnets whose interval's upper end is within the budget, not only their prediction.")
@json_option
def search(predictor_dir, space, budget_ms, reference_ms, dataset_dir, device, candidates, top, seed, out_file,
           coverage, confident, as_json):
    """Subnets predicted within a latency budget, the most FLOPs first, each with its prediction's interval."""
    from rich.console import Console
    from rich.progress import Progress

    from trainer.api import load_predictor
    from trainer.searching import search as run_search

    loaded = load_predictor(predictor_dir, dataset_dir, device, reference_ms, space, _coverage(coverage))
    interval = loaded.interval
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("predicting candidates", total=candidates)
        result = run_search(loaded.predictor, loaded.reference_ms or 1.0, space, budget_ms, candidates, seed, top,
                            lambda: bar.advance(task), interval, confident)
    if out_file is not None:
        out_file.write_text(json.dumps([f.spec for f in result.found], indent=1, sort_keys=True), encoding="utf-8")
    if as_json:
        click.echo(json.dumps([{"spec": f.spec, "predicted_ms": f.predicted_ms, "flops": f.flops, "low_ms": f.low_ms,
                                "high_ms": _finite(f.high_ms), "coverage": interval.coverage if interval else None}
                               for f in result.found]))
        return
    _print_found(result, budget_ms, out_file, confident)


def _print_found(result, budget_ms: float, out_file, confident: bool) -> None:
    """The kept subnets, then one line: how many were within the budget, and where their specs went."""
    from rich.console import Console

    from edge_agent.report import narrow_table
    from kernels.spaces import spec_from_dict
    from trainer.terminal import interval_text, percent

    interval = "{} interval".format(percent(result.interval.coverage)) if result.interval else "interval"
    rows = [(spec_from_dict(f.spec).id, "{:.4g}".format(f.predicted_ms), interval_text(f.low_ms, f.high_ms),
             "{:.1f}".format(f.flops / 1e6)) for f in result.found]
    Console().print(narrow_table(("spec id", "predicted ms", interval, "MFLOPs"), rows, numeric=(1, 2, 3)))
    written = "; specs -> {} (measure them with `edge-agent profile --space ... --specs {}`)".format(
        out_file, out_file) if out_file is not None else ""
    within = "with their {} within".format(interval) if confident else "predicted within"
    click.echo("{} of {} candidate(s) {} {:g} ms, {} kept{}".format(
        result.under_budget, result.candidates, within, budget_ms, len(result.found), written))
