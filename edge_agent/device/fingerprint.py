"""collect_fingerprint: everything `edge-agent info` shows and every bundle manifest records."""

import platform
from typing import Optional

from edge_agent.device import cpu, jetson, rpi, system, thermal
from edge_agent.device.fingerprint_models import Fingerprint
from edge_agent.device.sysroot import SysRoot


def collect_fingerprint(root: SysRoot) -> Fingerprint:
    from edge_agent.runtimes import installed_versions

    cpuinfo_text = root.read_text("proc/cpuinfo")
    board = system.board_model(root)
    cores = cpu.read_cores(root)
    zones = thermal.read_zones(root)
    return Fingerprint(
        board_model=board,
        arch=system.arch(root, cpuinfo_text),
        cpu_model=_cpu_model(cores),
        cores=cores,
        clusters=cpu.clusters(cores),
        thermal_zones=zones,
        throttle_temp_mc=thermal.throttle_temp_mc(zones, board),
        memory=system.memory(root),
        kernel=system.kernel(root),
        os=system.os_release(root),
        python_version=platform.python_version(),
        runtime_versions=installed_versions(),
        raspberry_pi=rpi.read_info(root) if rpi.is_raspberry_pi(board) else None,
        jetson=jetson.read_info(root) if jetson.is_jetson(root, board) else None,
    )


def _cpu_model(cores) -> Optional[str]:
    """One name for the CPU: "Cortex-A72", or "Cortex-A78AE+Cortex-A55" style on a mixed board."""
    names = []
    for core in cores:
        if core.model and core.model not in names:
            names.append(core.model)
    return "+".join(names) or None
