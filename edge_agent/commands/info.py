"""`edge-agent info [--json]` — the device fingerprint."""

from typing import List, Optional, Tuple

import click

from edge_agent.commands.common import json_option, sysroot_option

UNAVAILABLE = "[dim]unavailable[/dim]"


@click.command()
@sysroot_option
@json_option
def info(sysroot, as_json):
    """Print the device fingerprint: board, CPU, clocks, temperatures, memory, OS and runtimes."""
    from edge_agent.device.fingerprint import collect_fingerprint
    from edge_agent.device.sysroot import SysRoot

    fingerprint = collect_fingerprint(SysRoot(sysroot))
    if as_json:
        click.echo(fingerprint.model_dump_json(indent=2))
        return 0
    from rich.console import Console

    console = Console()
    for table in fingerprint_tables(fingerprint):
        console.print(table)
    return 0


def fingerprint_tables(fingerprint) -> list:
    groups = fingerprint_pairs(fingerprint)
    tables = [_pairs_table(*groups[0]), _cores_table(fingerprint)]
    if fingerprint.thermal_zones:
        tables.append(_zones_table(fingerprint))
    return tables + [_pairs_table(title, rows) for title, rows in groups[1:]]


def fingerprint_pairs(fingerprint) -> List[Tuple[str, List[Tuple[str, str]]]]:
    """The fingerprint's name/value groups by title: the device, then the Raspberry Pi firmware or the Jetson where
    there is one (`trainer report` shows the same)."""
    groups = [("Device", _device_rows(fingerprint))]
    if fingerprint.raspberry_pi is not None:
        groups.append(("Raspberry Pi firmware", _pi_rows(fingerprint.raspberry_pi)))
    if fingerprint.jetson is not None:
        groups.append(("Jetson", _jetson_rows(fingerprint.jetson)))
    return groups


def show(value, fmt: str = "{}") -> str:
    return UNAVAILABLE if value is None else fmt.format(value)


def mhz(value_khz: Optional[int]) -> str:
    return show(None if value_khz is None else value_khz / 1000, "{:.0f}")


def celsius(value_mc: Optional[int]) -> str:
    return show(None if value_mc is None else value_mc / 1000, "{:.1f}")


def gib(value_bytes: Optional[int]) -> str:
    return show(None if value_bytes is None else value_bytes / 2 ** 30, "{:.2f} GiB")


def _device_rows(fp) -> List[Tuple[str, str]]:
    runtimes = ", ".join("{} {}".format(name, version or "not installed")
                         for name, version in sorted(fp.runtime_versions.items()))
    return [("device key", fp.device_key), ("board", show(fp.board_model)), ("arch", show(fp.arch)),
            ("CPU", "{} ({} cores)".format(show(fp.cpu_model), len(fp.cores))),
            ("clusters", "; ".join("cpus {}: {} up to {} MHz".format(
                ",".join(map(str, c.cpus)), c.model or "?", mhz(c.hw_max_freq_khz)) for c in fp.clusters) or UNAVAILABLE),
            ("throttle point degC", celsius(fp.throttle_temp_mc)),
            ("memory", "{} total, {} available".format(gib(fp.memory.total_bytes), gib(fp.memory.available_bytes))),
            ("swap", "{} used of {}".format(gib(fp.memory.swap_used_bytes), gib(fp.memory.swap_total_bytes))),
            ("kernel", show(fp.kernel)), ("OS", show(fp.os.pretty_name)), ("Python", fp.python_version),
            ("runtimes", runtimes)]


def _pi_rows(pi) -> List[Tuple[str, str]]:
    flags = ", ".join(pi.throttled_flags) or "none"
    return [("get_throttled", show(pi.throttled_bits, "0x{:x}") + ("" if pi.throttled_bits is None else
                                                                  " ({})".format(flags))),
            ("arm clock MHz", show(None if pi.arm_clock_hz is None else pi.arm_clock_hz / 1e6, "{:.0f}")),
            ("firmware temp degC", celsius(pi.temp_mc)),
            ("under-voltage alarm", show(pi.under_voltage_alarm))]


def _jetson_rows(jetson) -> List[Tuple[str, str]]:
    def hz_to_mhz(value):
        return show(None if value is None else value / 1e6, "{:.0f}")

    return [("L4T release", show(jetson.l4t_release)),
            ("nvpmodel", show(jetson.nvpmodel_name) + ("" if jetson.nvpmodel_id is None
                                                       else " (mode {})".format(jetson.nvpmodel_id))),
            ("jetson_clocks active", show(jetson.jetson_clocks_active)),
            ("GPU MHz cur / min / max", " / ".join(hz_to_mhz(v) for v in (
                jetson.gpu_cur_freq_hz, jetson.gpu_min_freq_hz, jetson.gpu_max_freq_hz))),
            ("EMC MHz", hz_to_mhz(jetson.emc_freq_hz)), ("source", jetson.source)]


def _pairs_table(title: str, rows: List[Tuple[str, str]]):
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _cores_table(fp):
    """One row per core in 80 columns: short headers (clocks in MHz, said in the title) and "-" for a reading this
    board does not have, which "unavailable" in six columns would push past the terminal's edge."""
    from edge_agent.report import narrow_table

    rows = [[str(core.cpu), show(core.online), show(core.model), show(core.policy), show(core.governor),
             mhz(core.min_freq_khz), mhz(core.max_freq_khz), mhz(core.cur_freq_khz), mhz(core.hw_max_freq_khz)]
            for core in fp.cores]
    rows = [["-" if cell == UNAVAILABLE else cell for cell in row] for row in rows]
    return narrow_table(("cpu", "online", "model", "policy", "governor", "min", "max", "cur", "hw max"), rows,
                        numeric=range(5, 9), title="Cores (clocks in MHz; - unavailable)")


def _zones_table(fp):
    from rich.table import Table

    table = Table(title="Thermal zones", title_justify="left")
    for column in ("zone", "type", "degC", "trips degC"):
        table.add_column(column)
    for zone in fp.thermal_zones:
        trips = ", ".join("{} {:.1f}".format(trip.type, trip.temp_mc / 1000) for trip in zone.trips)
        table.add_row(zone.name, show(zone.type), celsius(zone.temp_mc), trips or "-")
    return table
