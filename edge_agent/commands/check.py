"""`edge-agent check [--json]` — is this machine fit to measure? Exit 0 ready, 2 not ready, 1 error."""

import json

import click

from edge_agent.commands.common import json_option, sysroot_option
from edge_agent.errors import EXIT_NOT_READY, EXIT_OK

STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@click.command()
@sysroot_option
@json_option
def check(sysroot, as_json):
    """Check governor, throttling, temperature, load, swap and other agents. Exit 0 ready, 2 not ready."""
    from edge_agent.device.check import ready, run_checks
    from edge_agent.device.sysroot import SysRoot

    findings = run_checks(SysRoot(sysroot))
    is_ready = ready(findings)
    if as_json:
        click.echo(json.dumps({"ready": is_ready, "findings": [f.model_dump() for f in findings]}, indent=2))
    else:
        _print(findings, is_ready)
    # ctx.exit gives the exit code both under `edge-agent` and when the command is invoked on its own.
    click.get_current_context().exit(EXIT_OK if is_ready else EXIT_NOT_READY)


def _print(findings, is_ready: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="edge-agent check", title_justify="left")
    for column in ("check", "status", "details"):
        table.add_column(column)
    for finding in findings:
        style = STYLES[finding.severity]
        table.add_row(finding.name, "[{}]{}[/{}]".format(style, finding.severity, style), finding.message)
    console = Console()
    console.print(table)
    console.print("[bold green]ready to measure" if is_ready else "[bold red]not ready: fix the failures above")
