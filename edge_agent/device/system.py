"""Board model, architecture, kernel, OS, memory and load: the plain /proc and /etc facts."""

import platform
import shlex
from typing import Dict, Optional

from edge_agent.device.fingerprint_models import MemoryInfo, OsInfo
from edge_agent.device.sysroot import SysRoot


def board_model(root: SysRoot) -> Optional[str]:
    return root.read_str("proc/device-tree/model") or root.read_str("sys/firmware/devicetree/base/model")


def arch(root: SysRoot, cpuinfo_text: Optional[str]) -> Optional[str]:
    # kernel.arch exists from Linux 6.1; older kernels (JetPack 5 runs 5.10) need the cpuinfo fallback.
    named = root.read_str("proc/sys/kernel/arch")
    if named:
        return named
    if root.is_live:
        return platform.machine() or None
    text = cpuinfo_text or ""
    if "CPU implementer" in text:
        return "aarch64"
    if "vendor_id" in text:
        return "x86_64"
    return None


def parse_meminfo(text: Optional[str]) -> Dict[str, int]:
    values: Dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            scale = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
            values[key.strip()] = int(parts[0]) * scale
    return values


def memory(root: SysRoot) -> MemoryInfo:
    values = parse_meminfo(root.read_text("proc/meminfo"))
    swap_total = values.get("SwapTotal")
    swap_free = values.get("SwapFree")
    return MemoryInfo(
        total_bytes=values.get("MemTotal"),
        available_bytes=values.get("MemAvailable"),
        swap_total_bytes=swap_total,
        swap_used_bytes=(swap_total - swap_free) if swap_total is not None and swap_free is not None else None,
    )


def load_avg_1m(root: SysRoot) -> Optional[float]:
    text = root.read_str("proc/loadavg")
    try:
        return float(text.split()[0]) if text else None
    except ValueError:
        return None


def kernel(root: SysRoot) -> Optional[str]:
    return root.read_str("proc/sys/kernel/osrelease")


def os_release(root: SysRoot) -> OsInfo:
    text = root.read_text("etc/os-release") or root.read_text("usr/lib/os-release") or ""
    fields: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            try:
                fields[key.strip()] = " ".join(shlex.split(value))
            except ValueError:
                fields[key.strip()] = value.strip()
    return OsInfo(pretty_name=fields.get("PRETTY_NAME"), id=fields.get("ID"), version_id=fields.get("VERSION_ID"))
