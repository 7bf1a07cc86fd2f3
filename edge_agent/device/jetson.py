"""NVIDIA Jetson state: L4T release, nvpmodel power mode, jetson_clocks, GPU and EMC clocks.
Read from sysfs and the L4T tools; jtop is used only when installed and its service answers."""

import importlib.util
import re
from typing import Dict, List, Optional, Tuple

from edge_agent.device.cpu import policies
from edge_agent.device.fingerprint_models import JetsonInfo
from edge_agent.device.sysroot import SysRoot

# GPU devfreq device names: gp10b (TX2), gv11b (Xavier), ga10b (Orin).
GPU_DEVFREQ_MARKERS = ("gp10b", "gv11b", "ga10b", "gpu")
EMC_RATE = "sys/kernel/debug/bpmp/debug/clk/emc/rate"


def is_jetson(root: SysRoot, board: Optional[str]) -> bool:
    return root.exists("etc/nv_tegra_release") or bool(board and "Jetson" in board)


def l4t_release(root: SysRoot) -> Optional[str]:
    """The raw first line ("# R35 (release), REVISION: 4.1, ..."); a JetPack name would be a guess."""
    text = root.read_text("etc/nv_tegra_release")
    if not text:
        return None
    return text.splitlines()[0].strip() or None


def nvpmodel(root: SysRoot) -> Tuple[Optional[str], Optional[int]]:
    text = root.run_tool("nvpmodel", ["-q"]) or ""
    name = re.search(r"NV Power Mode:\s*(\S+)", text)
    number = re.search(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    return (name.group(1) if name else None), (int(number.group(1)) if number else None)


def gpu_devfreq(root: SysRoot) -> Optional[str]:
    for device in root.glob("sys/class/devfreq", "*"):
        if any(marker in device.rsplit("/", 1)[-1] for marker in GPU_DEVFREQ_MARKERS):
            return device
    return None


def gpu_freqs_hz(root: SysRoot) -> Dict[str, Optional[int]]:
    device = gpu_devfreq(root)
    if device is None:
        return {}
    return {"gpu_cur_freq_hz": root.read_int(device + "/cur_freq"),
            "gpu_min_freq_hz": root.read_int(device + "/min_freq"),
            "gpu_max_freq_hz": root.read_int(device + "/max_freq")}


def parse_tegrastats(line: Optional[str]) -> Dict[str, int]:
    """Clock fields of one tegrastats line: "EMC_FREQ 3%@1866 GR3D_FREQ 0%@114" (MHz) -> Hz."""
    values: Dict[str, int] = {}
    for field, key in (("EMC_FREQ", "emc_freq_hz"), ("GR3D_FREQ", "gpu_cur_freq_hz")):
        match = re.search(field + r"\s+\d+%@\[?(\d+)", line or "")
        if match:
            values[key] = int(match.group(1)) * 1000000
    return values


def emc_freq_hz(root: SysRoot) -> Tuple[Optional[int], str]:
    rate = root.read_int(EMC_RATE)
    if rate is not None:
        return rate, "sysfs"
    stats = parse_tegrastats(root.first_line("tegrastats", ["--interval", "100"]))
    return stats.get("emc_freq_hz"), "tegrastats"


def clocks_pinned(root: SysRoot, gpu: Dict[str, Optional[int]]) -> Optional[bool]:
    """jetson_clocks pins every CPU policy and the GPU at min == max; reading that needs no root."""
    pairs: List[Tuple[Optional[int], Optional[int]]] = [
        (root.read_int(policy + "/scaling_min_freq"), root.read_int(policy + "/scaling_max_freq"))
        for policy in policies(root)]
    if gpu:
        pairs.append((gpu.get("gpu_min_freq_hz"), gpu.get("gpu_max_freq_hz")))
    if not pairs or any(low is None or high is None for low, high in pairs):
        return None
    return all(low == high for low, high in pairs)


def read_info(root: SysRoot) -> JetsonInfo:
    gpu = gpu_freqs_hz(root)
    emc, source = emc_freq_hz(root)
    name, number = nvpmodel(root)
    info = JetsonInfo(l4t_release=l4t_release(root), nvpmodel_name=name, nvpmodel_id=number,
                      jetson_clocks_active=clocks_pinned(root, gpu), emc_freq_hz=emc, source=source, **gpu)
    return _with_jtop(info) if root.is_live else info


def _with_jtop(info: JetsonInfo) -> JetsonInfo:
    """Power mode and jetson_clocks as jtop reports them; any failure keeps the sysfs reading."""
    if importlib.util.find_spec("jtop") is None:
        return info
    try:
        from jtop import (
            jtop,  # AGPL-3.0, optional: only imported when the user installed it
        )

        with jtop() as jetson:
            if not jetson.ok():
                return info
            return info.model_copy(update={
                "nvpmodel_name": str(jetson.nvpmodel.name),
                "nvpmodel_id": int(jetson.nvpmodel.id),
                "jetson_clocks_active": bool(jetson.jetson_clocks.status == "running"),
                "source": "jtop",
            })
    except Exception:  # noqa: BLE001 - jtop raises its own exception types when the service is not active
        return info
