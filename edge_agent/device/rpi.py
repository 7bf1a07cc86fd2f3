"""Raspberry Pi firmware readings through `vcgencmd` (scaling_cur_freq does not show firmware throttling)."""

import re
from typing import List, Optional

from edge_agent.device.fingerprint_models import RaspberryPiInfo
from edge_agent.device.sysroot import SysRoot

# `vcgencmd get_throttled` bits (Raspberry Pi documentation, "vcgencmd"): 0-3 now, 16-19 since boot.
THROTTLED_BITS = {
    0: "under_voltage_now",
    1: "freq_capped_now",
    2: "throttled_now",
    3: "soft_temp_limit_now",
    16: "under_voltage_since_boot",
    17: "freq_capped_since_boot",
    18: "throttled_since_boot",
    19: "soft_temp_limit_since_boot",
}
NOW_MASK = 0xF
SINCE_BOOT_MASK = 0xF0000


def is_raspberry_pi(board: Optional[str]) -> bool:
    return bool(board and board.startswith("Raspberry Pi"))


def decode_throttled(bits: int) -> List[str]:
    return [name for bit, name in sorted(THROTTLED_BITS.items()) if bits & (1 << bit)]


def throttled_bits(root: SysRoot) -> Optional[int]:
    match = re.search(r"throttled=(0x[0-9a-fA-F]+)", root.run_tool("vcgencmd", ["get_throttled"]) or "")
    return int(match.group(1), 16) if match else None


def arm_clock_hz(root: SysRoot) -> Optional[int]:
    match = re.search(r"frequency\(\d+\)=(\d+)", root.run_tool("vcgencmd", ["measure_clock", "arm"]) or "")
    return int(match.group(1)) if match else None


def firmware_temp_mc(root: SysRoot) -> Optional[int]:
    match = re.search(r"temp=([0-9.]+)", root.run_tool("vcgencmd", ["measure_temp"]) or "")
    return int(round(float(match.group(1)) * 1000)) if match else None


def under_voltage_alarm(root: SysRoot) -> Optional[bool]:
    """The rpi_volt hwmon's alarm (kernels from 4.19); None where the driver is absent."""
    for hwmon in root.glob("sys/class/hwmon", "hwmon*"):
        if root.read_str(hwmon + "/name") == "rpi_volt":
            value = root.read_int(hwmon + "/in0_lcrit_alarm")
            return None if value is None else value != 0
    return None


def read_info(root: SysRoot) -> RaspberryPiInfo:
    bits = throttled_bits(root)
    return RaspberryPiInfo(
        throttled_bits=bits,
        throttled_flags=decode_throttled(bits) if bits is not None else [],
        arm_clock_hz=arm_clock_hz(root),
        temp_mc=firmware_temp_mc(root),
        under_voltage_alarm=under_voltage_alarm(root),
    )
