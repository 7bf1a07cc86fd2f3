"""Rich tables for the terminal: measurement records (every figure derived from the raw samples at print time), and
the narrow tables the commands print so that they fit an 80-column terminal or a CI log."""

from typing import Iterable, List, Optional, Sequence, Tuple

from edge_agent.bundle.schema import STATUS_OK, MeasurementRecord
from edge_agent.stats import interleaved_ratio, summarize


def record_rows(record: MeasurementRecord) -> List[Tuple[str, str]]:
    rows = [("model", record.model.name or record.item_id[:12]),
            ("runtime", "{} {} ({} thread{})".format(record.settings.runtime, record.settings.runtime_version,
                                                     record.settings.threads,
                                                     "" if record.settings.threads == 1 else "s"))]
    if record.model.quantized is not None:
        quantized = record.model.quantized
        rows += [("precision", "{}, made from fp32 {}".format(record.settings.precision, quantized.source_sha256[:12])),
                 ("ops in fp32", ", ".join(quantized.fp32_ops) if quantized.fp32_ops else "none")]
    if any(record.samples_ns):
        summary = summarize(record.samples_ns)
        rows += [("median ms", "{:.4f}".format(summary.median_ns / 1e6)),
                 ("p90 ms", "{:.4f}".format(summary.p90_ns / 1e6)),
                 ("IQR ms", "{:.4f}".format(summary.iqr_ns / 1e6)),
                 ("CV (robust)", "{:.2%}".format(summary.robust_cv)),
                 ("runs", "{} in {} windows".format(summary.runs, len(record.samples_ns))),
                 ("load ms / first run ms", "{:.2f} / {:.3f}".format((record.load_ns or 0) / 1e6,
                                                                     (record.first_inference_ns or 0) / 1e6))]
    if record.reference_samples_ns and any(record.reference_samples_ns):
        rows += [("reference", record.reference.name if record.reference else "?"),
                 ("reference median ms", "{:.4f}".format(summarize(record.reference_samples_ns).median_ns / 1e6)),
                 ("ratio to ref", "{:.4f}".format(interleaved_ratio(record.samples_ns, record.reference_samples_ns)))]
    rows += [("valid", "[green]yes" if record.status == STATUS_OK else "[red]no ({})".format(record.status)),
             ("attempt", str(record.attempt))]
    if record.reasons:
        rows.append(("reasons", "; ".join(record.reasons)))
    return rows


def record_table(record: MeasurementRecord, title: str):
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in record_rows(record):
        table.add_row(name, value)
    return table


def narrow_table(headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (),
                 title: Optional[str] = None):
    """A table without side borders, its cells never wrapped: a name too long for the terminal is cut with an
    ellipsis rather than folded into fragments, so callers print long names (devices) above the table instead.
    The columns in `numeric` are right-aligned."""
    from rich import box
    from rich.table import Table

    right = set(numeric)
    # Two spaces between columns (the box's blank divider and one of padding): a third would cost a fusion table
    # its eighth column at 80.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, title=title, title_justify="left", pad_edge=False,
                  padding=(0, 1, 0, 0))
    for index, header in enumerate(headers):
        table.add_column(header, justify="right" if index in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table
