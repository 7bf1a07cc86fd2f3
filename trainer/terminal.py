"""What the trainer's commands print for people: tables that fit an 80-column terminal or a CI log. Device names are
long (board + runtime + threads + level), so they go on a line of their own above their figures instead of into a
column a narrow terminal would fold into fragments; `--json` is the form for machines."""

from typing import List, Sequence, Tuple

NUMERIC = "right"


def print_evaluation(result, console=None) -> None:
    """`trainer evaluate`'s metrics: the device and how it was scored above the table."""
    from rich.console import Console

    from edge_agent.report import narrow_table
    from trainer.evaluation import interval_rows, metric_rows

    console = console or Console()
    console.print("device {}".format(result.device), highlight=False, soft_wrap=True)
    console.print("{}, {} shot(s), reference {:.4g} ms".format(result.mode, result.shots, result.reference_ms),
                  highlight=False)
    rows = metric_rows(result.metrics) + interval_rows(result.interval)
    console.print(narrow_table(("metric", "value"), rows, numeric=(1,)))


def evaluation_summary(result) -> str:
    """The one line that ends `trainer evaluate`."""
    m = result.metrics
    return "{}: {:.1%} of {} item(s) within ±10 % (MAPE {:.1f} %, Spearman {:.3f})".format(
        result.device, m["within_10"], m["n"], m["mape_pct"], m["spearman"])


def percent(share: float) -> str:
    """0.9 -> "90 %", 0.975 -> "97.5 %": a coverage as the docs write it."""
    return "{:g} %".format(round(100 * share, 4))


def interval_text(low, high) -> str:
    """A prediction's interval in a table cell: "low–high", "unbounded" (too few held-out residuals for the
    coverage) or "-" (the predictor records none)."""
    if low is None or high is None:
        return "-"
    if high == float("inf"):
        return "unbounded"
    return "{:.4g}–{:.4g}".format(low, high)


def print_devices(summaries, console=None) -> None:
    """`trainer devices`: each device's name on its own line, its figures under it in aligned columns."""
    from rich.console import Console

    console = console or Console()
    headers = ("runtime", "threads", "level", "rows", "valid", "not valid", "reference ms")
    aligns = ("left", NUMERIC, "left", NUMERIC, NUMERIC, NUMERIC, NUMERIC)
    cells = [(s.runtime or "-", str(s.threads or "-"), s.opt_level or "-", str(s.rows), str(s.valid),
              str(s.rows - s.valid), "{:.4g}".format(s.reference_ms) if s.reference_ms else "-") for s in summaries]
    lines = aligned([headers] + cells, aligns)
    console.print("[bold]device[/bold]", highlight=False)
    console.print("  " + lines[0], style="bold", highlight=False)
    for summary, line in zip(summaries, lines[1:]):
        console.print(summary.device, highlight=False, soft_wrap=True)
        console.print("  " + line, highlight=False)
    console.print("{} device(s), {} row(s), {} valid".format(
        len(summaries), sum(s.rows for s in summaries), sum(s.valid for s in summaries)), highlight=False)


def aligned(rows: Sequence[Tuple[str, ...]], aligns: Sequence[str]) -> List[str]:
    """Rows of cells as lines of columns two spaces apart, each column as wide as its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(aligns))]
    return ["  ".join(cell.rjust(width) if align == NUMERIC else cell.ljust(width)
                      for cell, width, align in zip(row, widths, aligns)).rstrip() for row in rows]
