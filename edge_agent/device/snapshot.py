"""Per-item device snapshots: read just before and just after every measured item, then compared.

A snapshot reads a handful of small files and, on a Raspberry Pi, runs `vcgencmd` twice (its firmware clock and
throttle bits are the only honest ones there)."""

import time
from typing import List, Optional

from edge_agent.device import cpu, rpi, system, thermal
from edge_agent.device.models import DeviceSnapshot
from edge_agent.device.sysroot import SysRoot

# A clock that fell by more than this between before and after means the item ran slower than it started.
FREQ_DROP_FRACTION = 0.03
# Within this many m°C of the throttle point the board may throttle any moment.
NEAR_THROTTLE_MC = 5000
COOLDOWN_POLL_S = 0.5


def take_snapshot(root: SysRoot) -> DeviceSnapshot:
    board = system.board_model(root)
    pi = rpi.is_raspberry_pi(board)
    memory = system.memory(root)
    return DeviceSnapshot(
        monotonic_ns=time.monotonic_ns(),
        # One entry per cpufreq policy (cores in a policy share one clock).
        cpu_cur_freq_khz=cpu.cur_freqs_khz(root),
        arm_clock_hz=rpi.arm_clock_hz(root) if pi else None,
        max_temp_mc=thermal.max_temp_mc(root),
        throttled_bits=rpi.throttled_bits(root) if pi else None,
        load_avg_1m=system.load_avg_1m(root),
        swap_used_bytes=memory.swap_used_bytes,
        throttle_temp_mc=thermal.throttle_temp_mc(thermal.read_zones(root), board),
    )


def compare_snapshots(before: DeviceSnapshot, after: DeviceSnapshot) -> List[str]:
    """Reasons the item measured between the two snapshots cannot be trusted; empty when there are none."""
    return _throttle_reasons(before, after) + _clock_reasons(before, after) + _temperature_reasons(after)


def _throttle_reasons(before: DeviceSnapshot, after: DeviceSnapshot) -> List[str]:
    if after.throttled_bits is None:
        return []
    earlier = before.throttled_bits or 0
    active = (earlier | after.throttled_bits) & rpi.NOW_MASK
    began = after.throttled_bits & ~earlier & rpi.SINCE_BOOT_MASK
    reasons = ["{} during the item".format(flag) for flag in rpi.decode_throttled(active)]
    reasons += ["{} bit set during the item".format(flag) for flag in rpi.decode_throttled(began)]
    return reasons


def _clock_reasons(before: DeviceSnapshot, after: DeviceSnapshot) -> List[str]:
    reasons = []
    if _fell(before.arm_clock_hz, after.arm_clock_hz):
        reasons.append("arm clock fell from {} to {} MHz".format(before.arm_clock_hz // 1000000,
                                                                 after.arm_clock_hz // 1000000))
    for index, (old, new) in enumerate(zip(before.cpu_cur_freq_khz, after.cpu_cur_freq_khz)):
        if _fell(old, new):
            reasons.append("cpufreq policy #{} fell from {} to {} MHz".format(index, old // 1000, new // 1000))
    return reasons


def _fell(old: Optional[int], new: Optional[int]) -> bool:
    return old is not None and new is not None and old > 0 and new < old * (1 - FREQ_DROP_FRACTION)


def _temperature_reasons(after: DeviceSnapshot) -> List[str]:
    if after.max_temp_mc is None or after.throttle_temp_mc is None:
        return []
    if after.max_temp_mc < after.throttle_temp_mc - NEAR_THROTTLE_MC:
        return []
    return ["temperature reached {:.1f} degC, within {} degC of the throttle point {:.1f} degC".format(
        after.max_temp_mc / 1000, NEAR_THROTTLE_MC // 1000, after.throttle_temp_mc / 1000)]


def wait_for_cooldown(root: SysRoot, target_mc: int, timeout_s: float,
                      poll_s: float = COOLDOWN_POLL_S) -> Optional[str]:
    """Poll the hottest sensor until it is at or below target_mc. None when cool (or there is no sensor),
    otherwise why the wait gave up."""
    deadline = time.monotonic() + timeout_s
    while True:
        temp = thermal.max_temp_mc(root)
        if temp is None or temp <= target_mc:
            return None
        if time.monotonic() >= deadline:
            return "still {:.1f} degC after waiting {:.0f} s to cool to {:.1f} degC".format(
                temp / 1000, timeout_s, target_mc / 1000)
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
