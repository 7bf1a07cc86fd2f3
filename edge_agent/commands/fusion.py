"""`edge-agent detect-fusion` — which op chains this runtime runs as one kernel, stored as a rule table."""

from typing import List, Tuple

import click

from edge_agent.commands.common import json_option
from edge_agent.commands.measuring import measurement_options


@click.command()
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Bundle directory to store the rule table in (rules/*.json; created or reused).")
@click.option("--case", "case_names", multiple=True, help="Only this case (repeatable); default: all cases.")
@click.option("--alpha", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Fused when sum(T_parts) - T_whole > alpha * (sum - max part) (nn-Meter: 0.5).")
@click.option("--list-cases", is_flag=True, help="List the test cases and exit.")
@json_option
@measurement_options
def detect_fusion(out, case_names, alpha, list_cases, as_json, **options):
    """Time op chains alone and whole, check the runtime's own account, print and store the rules."""
    from edge_agent.commands.measuring import make_manifest, parse_cpus, protocol_config, run_settings
    from edge_agent.fusion.cases import CASES, select_cases
    from edge_agent.fusion.detect import detect_fusion as run_detection
    from edge_agent.fusion.rules import save_table

    if list_cases:
        for case in CASES:
            click.echo("{:18} {}".format(case.name, case.description))
        return 0
    cases = select_cases(list(case_names))
    settings = run_settings(options)
    protocol = protocol_config(options)
    manifest = make_manifest(settings, protocol, options["sysroot"])
    table = run_detection(settings, protocol, cases, fingerprint=manifest.fingerprint, alpha=alpha,
                          cpus=parse_cpus(options.get("cpus")), progress=None if as_json else _print_progress)
    path = None
    if out:
        from edge_agent.bundle.store import Bundle

        with Bundle.open(out, lambda: manifest) as bundle:
            path = save_table(bundle.path, table)
    if as_json:
        click.echo(table.model_dump_json(indent=1))
    else:
        _print_table(table, path)
    return 0


def record_missing_rules(session, cpus) -> None:
    """`profile --kernels`, before the kernels: detect the runtime's fusion rules and store them in the session's
    bundle when it has no table for the session's settings. A kernel LUT needs both, and whoever profiled kernels
    for an hour should not learn only at `trainer fit` that `detect-fusion` had to run too."""
    from edge_agent.bundle.schema import DEVICE_SETTING_KEYS
    from edge_agent.fusion.cases import CASES
    from edge_agent.fusion.detect import detect_fusion as run_detection
    from edge_agent.fusion.rules import save_table, table_for

    settings = {key: getattr(session.settings, key) for key in DEVICE_SETTING_KEYS}
    if table_for([session.bundle.path], settings) is not None:
        return
    click.echo("the bundle has no fusion rules for these settings and a kernel lookup table needs them: detecting "
               "them first ({} op chains)".format(len(CASES)), err=True)
    table = run_detection(session.settings, session.protocol, list(CASES),
                          fingerprint=session.bundle.manifest.fingerprint, cpus=cpus, progress=_print_progress)
    click.echo("fusion rules: {}".format(rules_summary(table, save_table(session.bundle.path, table))))


def rules_summary(table, path) -> str:
    """The one line that ends a detection."""
    fused = sum(1 for rule in table.rules if rule.fused)
    return "{} of {} op chains run as one kernel{}".format(fused, len(table.rules),
                                                           " -> {}".format(path) if path else "")


def _print_progress(rule, done, total) -> None:
    click.echo("[{}/{}] {}: {}".format(done, total, rule.case, "fused" if rule.fused else "separate"), err=True)


RULE_HEADERS = ("case", "fused", "timing", "evidence", "savings", "parts ms", "whole ms", "kernels")


def rule_rows(table) -> List[Tuple[str, ...]]:
    """One row per rule under RULE_HEADERS; a fused verdict marked "*" is one the two tests disagree on, and
    `kernels` counts what the runtime ran (their names are in --json)."""
    return [(rule.case, _yes(rule.fused) + ("*" if rule.disagreement else ""), _yes(rule.timing_fused),
             _yes(rule.evidence_fused), "" if rule.savings_ratio is None else "{:.2f}".format(rule.savings_ratio),
             "{:.3f}".format(sum(rule.parts_median_ns) / 1e6) if rule.parts_median_ns else "",
             "" if rule.whole_median_ns is None else "{:.3f}".format(rule.whole_median_ns / 1e6),
             str(len(rule.evidence_kernels)) if rule.evidence_kernels else "") for rule in table.rules]


def rule_notes(table) -> List[str]:
    """What the rows leave out: the disagreement mark, each rule's error, and the layout rules."""
    notes = ["* timing and the runtime's evidence disagree; the evidence decides"] if any(
        rule.disagreement for rule in table.rules) else []
    notes += ["{}: {}".format(rule.case, rule.error) for rule in table.rules if rule.error]
    return notes + ([layout_summary(table.layout)] if table.layout is not None else [])


def settings_line(table) -> str:
    return "{} {}, {} thread(s), {}".format(table.settings.runtime, table.settings.runtime_version,
                                            table.settings.threads, table.settings.level())


def _print_table(table, path) -> None:
    """The rules in 80 columns, the notes under them, and a one-line summary."""
    from rich.console import Console

    from edge_agent.report import narrow_table

    console = Console()
    console.print("fusion rules: {}".format(settings_line(table)), highlight=False)
    console.print(narrow_table(RULE_HEADERS, rule_rows(table), numeric=range(4, 8)))
    for note in rule_notes(table):
        console.print(note, highlight=False)
    click.echo(rules_summary(table, path))


def layout_summary(layout) -> str:
    """Which channel counts run blocked (up to the probed range) and what a conversion costs."""
    blocked = ["{} {}".format(kind, _ranges(channels)) for kind, channels in layout.blocked.items() if channels]
    line = "blocked layout ({}): {}".format(layout.source, "; ".join(blocked) or "none")
    if layout.costs:
        per_conversion_ns, per_element_ns = layout.cost_coefficients()
        line += "\nlayout conversion: {:.2f} us + {:.3f} ns per element ({} timings)".format(
            per_conversion_ns / 1e3, per_element_ns, len(layout.costs))
    return line


def _ranges(values) -> str:
    """1,2,3,4,8,12 -> 1-4,8,12"""
    parts, start = [], None
    for index, value in enumerate(values):
        if start is None:
            start = value
        if index + 1 == len(values) or values[index + 1] != value + 1:
            parts.append(str(start) if start == value else "{}-{}".format(start, value))
            start = None
    return ",".join(parts)


def _yes(value) -> str:
    return "?" if value is None else ("yes" if value else "no")
