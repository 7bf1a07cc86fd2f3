"""Data commands: ingest, devices, import-table."""

import json
from pathlib import Path

import click

dataset_option = click.option("--dataset", "dataset_dir", required=True, type=click.Path(path_type=Path),
                              help="Dataset directory (created on first ingest).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")


@click.command()
@click.argument("bundles", nargs=-1, required=True, type=click.Path(path_type=Path))
@dataset_option
@click.option("--device", default=None, help="Device name (default: fingerprint + runtime + threads + opt level).")
def ingest(bundles, dataset_dir, device):
    """Verify and add bundles (directories or .tar.gz from `edge-agent pack`) to the dataset."""
    from trainer.dataset import Dataset
    from trainer.ingest import ingest as ingest_one

    dataset = Dataset(dataset_dir, create=True)
    for bundle in bundles:
        report = ingest_one(bundle, dataset, device)
        if report.already_ingested:
            click.echo("{}: already ingested, nothing added".format(report.bundle))
            continue
        torn = ", {} torn line(s) skipped".format(report.torn_lines) if report.torn_lines else ""
        click.echo("{}: {} record(s), {} added, {} not valid{} -> {}".format(
            report.bundle, report.records, report.added, report.invalid, torn, ", ".join(report.devices)))


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
    from rich.console import Console
    from rich.table import Table

    table = Table("device", "runtime", "threads", "opt level", "rows", "valid", "not valid", "reference ms")
    for s in summaries:
        table.add_row(s.device, s.runtime or "", str(s.threads or ""), s.opt_level or "", str(s.rows), str(s.valid),
                      str(s.rows - s.valid), "{:.4g}".format(s.reference_ms) if s.reference_ms else "-")
    Console().print(table)


@click.command("import-table")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--space", required=True, help="Model space the architectures belong to (e.g. nb201).")
@click.option("--arch-column", required=True, help="Column holding the architecture string.")
@click.option("--latency-column", required=True, help="Column holding the latency in milliseconds.")
@click.option("--device", required=True, help="Device name to file the rows under.")
@dataset_option
def import_table(csv_path, space, arch_column, latency_column, device, dataset_dir):
    """Import a public measured table (one architecture per row, latency in ms)."""
    from trainer.dataset import Dataset
    from trainer.tables import import_table as run_import

    report = run_import(csv_path, space, arch_column, latency_column, device, Dataset(dataset_dir, create=True))
    state = "already imported, nothing added" if report.already_imported else "{} row(s) imported".format(
        report.imported)
    click.echo("{} {}: {}; skipped {} blank, {} disconnected, {} invalid; reference {:.4g} ms".format(
        device, latency_column, state, report.skipped_blank, report.skipped_disconnected, report.skipped_invalid,
        report.reference_ms))
