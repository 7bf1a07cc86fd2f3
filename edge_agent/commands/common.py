"""Options shared by several commands."""

import click

sysroot_option = click.option(
    "--sysroot",
    default="/",
    show_default=True,
    envvar="EDGE_AGENT_SYSROOT",
    type=click.Path(file_okay=False),
    help="Root that /proc, /sys, /etc and board tools are read under (a fixture tree in tests).",
)
runtime_option = click.option(
    "--runtime", type=click.Choice(["ort", "mnn"]), default="ort", show_default=True, help="Inference runtime.")
threads_option = click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
                              help="Intra-op threads.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")
