"""`trainer` command line (workstation side). Heavy imports (torch, pyarrow, matplotlib) happen inside commands."""

import sys

import click

from edge_agent import __version__
from edge_agent.errors import EXIT_ERROR, EXIT_INTERRUPTED, AgentError
from kernels.errors import KernelsError
from trainer.commands_data import devices, import_table, ingest
from trainer.commands_model import evaluate, fit, predict
from trainer.quickstart import quickstart


@click.group()
@click.version_option(__version__, prog_name="trainer")
def cli():
    """Ingest measurements, fit latency predictors, predict and evaluate."""


for _command in (ingest, devices, import_table, fit, predict, evaluate, quickstart):
    cli.add_command(_command)


def main(argv=None):
    try:
        exit_code = cli.main(args=argv, prog_name="trainer", standalone_mode=False)
    except (AgentError, KernelsError) as exc:
        click.echo("error: {}".format(exc), err=True)
        sys.exit(getattr(exc, "exit_code", EXIT_ERROR))
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        click.echo("error: {}".format(exc), err=True)
        sys.exit(EXIT_ERROR)
    sys.exit(exit_code if isinstance(exit_code, int) else 0)
