"""`trainer` command line (workstation side). Heavy imports (torch, pyarrow, matplotlib) happen inside commands."""

import click

from edge_agent import __version__
from edge_agent.cli import run_group
from trainer.commands_data import devices, import_table, ingest
from trainer.commands_model import adapt, calibration_set, evaluate, fit, predict, search
from trainer.quickstart import quickstart
from trainer.report import report


@click.group()
@click.version_option(__version__, prog_name="trainer")
def cli():
    """Ingest measurements, fit latency predictors, predict and evaluate."""


for _command in (ingest, devices, import_table, fit, predict, evaluate, calibration_set, adapt, search, quickstart,
                 report):
    cli.add_command(_command)


def main(argv=None):
    run_group(cli, "trainer", argv)
