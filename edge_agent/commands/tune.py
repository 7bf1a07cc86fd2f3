"""`edge-agent tune` / `edge-agent reset` — fix the CPU clocks for measuring, then put them back (root)."""

import click

from edge_agent.commands.common import sysroot_option

state_file_option = click.option(
    "--state-file", type=click.Path(dir_okay=False), default=None,
    help="Where the saved settings live [default: /var/lib/edge-agent/tune-state.json under --sysroot].")


@click.command()
@sysroot_option
@state_file_option
@click.option("--freq-khz", type=click.IntRange(1), default=None,
              help="Pin every core at this frequency instead of its current maximum (a Pi without a fan stays "
                   "cooler at a lower fixed clock).")
def tune(sysroot, state_file, freq_khz):
    """Save governor and min/max frequencies (and jetson_clocks on a Jetson), then set performance, min = max."""
    from edge_agent.device.sysroot import SysRoot
    from edge_agent.device.tune import default_state_file
    from edge_agent.device.tune import tune as tune_clocks

    root = SysRoot(sysroot)
    path = state_file or default_state_file(root)
    state = tune_clocks(root, path, freq_khz)
    for policy in state.policies:
        click.echo("{}: {} {}-{} kHz -> performance, min = max".format(
            policy.policy.rsplit("/", 1)[-1], policy.governor, policy.min_freq_khz, policy.max_freq_khz))
    click.echo("saved to {}; run `edge-agent reset` to restore".format(path))
    return 0


@click.command()
@sysroot_option
@state_file_option
def reset(sysroot, state_file):
    """Restore exactly the settings `edge-agent tune` saved."""
    from edge_agent.device.sysroot import SysRoot
    from edge_agent.device.tune import default_state_file
    from edge_agent.device.tune import reset as reset_clocks

    root = SysRoot(sysroot)
    path = state_file or default_state_file(root)
    state = reset_clocks(root, path)
    for policy in state.policies:
        click.echo("{}: restored {} {}-{} kHz".format(policy.policy.rsplit("/", 1)[-1], policy.governor,
                                                      policy.min_freq_khz, policy.max_freq_khz))
    return 0
