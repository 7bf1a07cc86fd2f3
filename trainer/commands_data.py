"""Data commands: ingest, devices, import-table."""

import json
from pathlib import Path

import click

from trainer import tables

dataset_option = click.option("--dataset", "dataset_dir", required=True, type=click.Path(path_type=Path),
                              help="Dataset directory (created on first ingest).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


def only_device(dataset) -> str:
    """What an omitted --device means: the dataset's device when it has exactly one, so that a user need not run
    `trainer devices` to learn a name there is no choice about; with none or several, a one-line error says what to
    give."""
    from edge_agent.errors import InputError

    names = dataset.devices()
    if len(names) == 1:
        return names[0]
    if not names:
        raise InputError("{}: the dataset has no measurements yet (`trainer ingest` or `trainer import-table` "
                         "first)".format(dataset.root))
    raise InputError("{}: the dataset has {} devices, give --device NAME: {}".format(
        dataset.root, len(names), ", ".join(names)))


@click.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path))
@dataset_option
@click.option("--device", default=None, help="Device name (default: fingerprint + runtime + threads + opt level).")
def ingest(bundles, dataset_dir, device):
    """Verify and add bundles to the dataset: bundle directories, .tar.gz from `edge-agent pack`, or directories of
    such archives (every .tar.gz below, e.g. a fleet's fetched results). Bundles already ingested add nothing; with
    several, a refused one is reported and the others go on."""
    from edge_agent.errors import AgentError, InputError
    from trainer.dataset import Dataset
    from trainer.ingest import bundle_paths
    from trainer.ingest import ingest as ingest_one

    targets = bundle_paths(bundles)
    dataset = Dataset(dataset_dir, create=True)
    refused = 0
    for path, label in targets:
        try:
            report = ingest_one(path, dataset, device, label)
        except AgentError as exc:
            if len(targets) == 1:
                raise
            click.echo("{}: refused: {}".format(label, exc), err=True)
            refused += 1
            continue
        click.echo(_ingest_line(report))
    if refused:
        raise InputError("{} of {} bundles refused (listed above); the others are in the dataset".format(
            refused, len(targets)))


def _ingest_line(report) -> str:
    if report.already_ingested:
        return "{}: already ingested, nothing added".format(report.bundle)
    torn = ", {} torn line(s) skipped".format(report.torn_lines) if report.torn_lines else ""
    return "{}: {} record(s), {} added, {} not valid{} -> {}".format(
        report.bundle, report.records, report.added, report.invalid, torn, ", ".join(report.devices))


@click.command()
@dataset_option
@json_option
def devices(dataset_dir, as_json):
    """List the dataset's devices: measurements, validity and reference latency."""
    from trainer.dataset import Dataset
    from trainer.summary import device_summaries

    summaries = device_summaries(Dataset(dataset_dir))
    if as_json:
        click.echo(json.dumps([s.__dict__ for s in summaries], indent=1))
        return
    from trainer.terminal import print_devices

    print_devices(summaries)


@click.command("import-table")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--space", default=None, help="Rows are architecture strings of this space (e.g. nb201).")
@click.option("--arch-column", default=None, help="With --space: the column holding the architecture string.")
@click.option("--models", "models_dir", default=None, type=click.Path(path_type=Path), metavar="DIR",
              help="Rows name ONNX files: a row's model is DIR/<name>.onnx (stored in the dataset by sha256).")
@click.option("--model-column", default=None, help="With --models: the column holding the model name (default model).")
@click.option("--reference", default=None,
              help="With --models: the model whose row is each device's reference (labels are latency / its latency "
                   "on the same device; a device where its cell is blank is skipped, with the reason printed).")
@click.option("--unit", type=click.Choice(list(tables.UNIT_MS)), default=None,
              help="With --models: the unit of the latency cells (default ms); stored in ms.")
@click.option("--latency-column", "latency_columns", multiple=True,
              help="A column of latencies (repeatable, paired in order with --device; with --space in ms).")
@click.option("--device", "devices", multiple=True, help="The device to file the paired column under (repeatable).")
@click.option("--columns", "columns_glob", default=None,
              help="With --models: import every column matching this glob (fnmatch, case-sensitive), each as the "
                   "device named by the column minus the glob's literal suffix (what follows its last wildcard): "
                   "'*|mean' files 'pixel4|1large|float|mean' under 'pixel4|1large|float'. A column ending in 'mean' "
                   "whose twin ending in 'std' exists keeps that standard deviation with each row.")
@click.option("--device-prefix", default="", help="With --columns: put this before every device name (e.g. "
              "'tflite:', so two runtimes' tables of the same phones keep their devices apart).")
@dataset_option
@json_option
def import_table(csv_path, space, arch_column, models_dir, model_column, reference, unit, latency_columns, devices,
                 columns_glob, device_prefix, dataset_dir, as_json):
    """Import a public measured table: one model per row (a space's architecture string or the name of an ONNX
    file), one latency column per device. Blank or invalid cells, missing ONNX files and models that fail to encode
    are skipped and counted per device. Re-importing the same table adds nothing."""
    from trainer.dataset import Dataset

    _check_table_mode(space, arch_column, models_dir, model_column, reference, unit, columns_glob)
    dataset = Dataset(dataset_dir, create=True)
    if models_dir is None:
        _import_space_table(csv_path, space, arch_column, latency_columns, devices, dataset, as_json)
        return
    table = tables.NamedTable(models_dir, reference, unit or "ms", model_column or "model", tuple(latency_columns),
                       tuple(devices), columns_glob, device_prefix)
    report = tables.import_named_table(csv_path, table, dataset)
    if as_json:
        click.echo(json.dumps(dict(report.__dict__, devices=[d.__dict__ for d in report.devices]), indent=1))
        return
    for device in report.devices:
        click.echo(_device_line(device))
    click.echo(_summary_line(report))


def _check_table_mode(space, arch_column, models_dir, model_column, reference, unit, columns_glob) -> None:
    """A table's rows are either a space's architectures or named ONNX files; each form has its own options."""
    from edge_agent.errors import InputError

    if (space is None) == (models_dir is None):
        raise InputError("give either --space (rows are architecture strings) or --models (rows name ONNX files)")
    if space is not None:
        extra = [name for name, value in (("--model-column", model_column), ("--reference", reference),
                                          ("--unit", unit), ("--columns", columns_glob)) if value is not None]
        if extra:
            raise InputError("{} applies to --models tables, not to --space ones".format(", ".join(extra)))
        if arch_column is None:
            raise InputError("--space needs --arch-column")
    elif arch_column is not None:
        raise InputError("--arch-column applies to --space tables; with --models give --model-column")
    elif reference is None:
        raise InputError("--models needs --reference NAME: the model every device's latencies are divided by")


def _import_space_table(csv_path, space, arch_column, latency_columns, devices, dataset, as_json) -> None:
    reports = []
    for latency_column, device in tables.paired_columns(latency_columns, devices):
        report = tables.import_table(csv_path, space, arch_column, latency_column, device, dataset)
        reports.append(dict(report.__dict__, device=device, column=latency_column))
        if as_json:
            continue
        click.echo("{} {}: {}; skipped {} blank, {} disconnected, {} invalid; reference {:.4g} ms".format(
            device, latency_column, _state(report), report.skipped_blank, report.skipped_disconnected, report.skipped_invalid,
            report.reference_ms))
    if as_json:
        click.echo(json.dumps(reports, indent=1))


def _device_line(device) -> str:
    if device.skipped_reason:
        return "{} ({}): skipped: {}".format(device.device, device.column, device.skipped_reason)
    return ("{} ({}{}): {}; skipped {} blank, {} invalid, {} missing file, {} failed to encode; "
            "reference {:.4g} ms").format(
        device.device, device.column, " ± " + device.std_column if device.std_column else "", _state(device),
        device.skipped_blank, device.skipped_invalid, device.skipped_missing, device.skipped_unencodable,
        device.reference_ms)


def _state(report) -> str:
    return "already imported, nothing added" if report.already_imported else "{} row(s) imported".format(
        report.imported)


def _summary_line(report) -> str:
    imported = [d for d in report.devices if d.skipped_reason is None and not d.already_imported]
    return ("{} model(s): {} encoded, {} missing, {} failed to encode; {} device(s) imported ({} row(s)), {} already "
            "imported, {} skipped; {:.1f} s").format(
        report.models, report.models_encoded, report.models_missing, report.models_unencodable, len(imported),
        sum(d.imported for d in imported), sum(1 for d in report.devices if d.already_imported),
        sum(1 for d in report.devices if d.skipped_reason), report.seconds)
