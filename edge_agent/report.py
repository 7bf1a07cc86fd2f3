"""Rich tables of measurement records; every figure is derived from the raw samples at print time."""

from typing import Iterable

from edge_agent.bundle.schema import STATUS_OK, MeasurementRecord
from edge_agent.stats import interleaved_ratio, summarize


def records_table(records: Iterable[MeasurementRecord], title: str = "Measurements"):
    from rich.table import Table

    table = Table(title=title)
    for column in ("item", "runtime", "thr", "median ms", "p90 ms", "IQR ms", "CV", "runs", "ratio to ref", "valid",
                   "reasons"):
        table.add_column(column, justify="right" if column not in ("item", "runtime", "reasons", "valid") else "left")
    for record in records:
        table.add_row(*record_row(record))
    return table


def record_row(record: MeasurementRecord) -> list:
    name = record.model.name or record.item_id[:12]
    settings = "{} {}".format(record.settings.runtime, record.settings.runtime_version)
    valid = "[green]yes" if record.status == STATUS_OK else "[red]{}".format(record.status)
    reasons = "; ".join(record.reasons)
    if not record.samples_ns or not any(record.samples_ns):
        return [name, settings, str(record.settings.threads), "-", "-", "-", "-", "0", "-", valid, reasons]
    summary = summarize(record.samples_ns)
    ratio = "-"
    if record.reference_samples_ns:
        ratio = "{:.4f}".format(interleaved_ratio(record.samples_ns, record.reference_samples_ns))
    return [name, settings, str(record.settings.threads), "{:.3f}".format(summary.median_ns / 1e6),
            "{:.3f}".format(summary.p90_ns / 1e6), "{:.3f}".format(summary.iqr_ns / 1e6),
            "{:.2%}".format(summary.robust_cv), str(summary.runs), ratio, valid, reasons]
