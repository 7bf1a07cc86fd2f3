"""`edge-agent` command line. Each command lives in its own module and is imported only when invoked,
so `edge-agent --help` and `import edge_agent` stay fast on a Raspberry Pi."""

import importlib
import importlib.util
import sys
from typing import Dict, Tuple

import click

from edge_agent import __version__
from edge_agent.errors import EXIT_ERROR, EXIT_INTERRUPTED, AgentError
from kernels.errors import KernelsError

# name -> (module, attribute, one-line help shown by --help without importing the module)
COMMANDS: Dict[str, Tuple[str, str, str]] = {
    "info": ("edge_agent.commands.info", "info", "Print the device fingerprint."),
    "check": ("edge_agent.commands.check", "check", "Is this machine fit to measure? Exit 0 ready, 2 not ready."),
    "bench": ("edge_agent.commands.bench", "bench", "Measure one ONNX model and append the record to a bundle."),
    "pack": ("edge_agent.commands.pack", "pack", "Pack a bundle into BUNDLE.tar.gz with a sha256 for every file."),
    "profile": ("edge_agent.commands.profile", "profile", "Measure a model space (or a folder of ONNX files)."),
    "spaces": ("edge_agent.commands.spaces", "spaces", "List the registered model spaces."),
    "detect-fusion": ("edge_agent.commands.fusion", "detect_fusion", "Detect which ops the runtime fuses."),
    "tune": ("edge_agent.commands.tune", "tune", "Save CPU settings, then set them for measuring (root)."),
    "reset": ("edge_agent.commands.tune", "reset", "Restore the CPU settings saved by `tune` (root)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(name for name, (module, _, _) in COMMANDS.items() if _module_exists(module))

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[name]
        if not _module_exists(module_name):
            return None
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if not rows:
            return
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _module_exists(module_name: str) -> bool:
    return importlib.util.find_spec(module_name) is not None


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="edge-agent")
def cli():
    """Profile neural-network latency on this board."""


def main(argv=None):
    run_group(cli, "edge-agent", argv)


def run_group(group: click.Group, prog_name: str, argv=None) -> None:
    """Run a click group with this project's exit-code contract: one-line errors, never a traceback."""
    try:
        exit_code = group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except AgentError as exc:
        click.echo("error: {}".format(exc), err=True)
        sys.exit(exc.exit_code)
    except KernelsError as exc:  # a bad space spec or arch string; kernels/ cannot raise AgentError
        click.echo("error: {}".format(exc), err=True)
        sys.exit(EXIT_ERROR)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        # Usage errors too: one line, no usage block, so scripts and logs see a single clear reason.
        click.echo("error: {}".format(exc.format_message()), err=True)
        sys.exit(EXIT_ERROR)
    except OSError as exc:
        click.echo("error: {}".format(exc), err=True)
        sys.exit(EXIT_ERROR)
    # Commands signal readiness and similar verdicts by returning an exit code (or calling ctx.exit).
    sys.exit(exit_code if isinstance(exit_code, int) else 0)
