"""Is this machine fit to measure? Each check gives one Finding; any "fail" means not ready."""

import os
from typing import Callable, Iterable, List, Literal, Optional

from pydantic import BaseModel, ConfigDict

from edge_agent.device import cpu, rpi, system, thermal
from edge_agent.device.snapshot import NEAR_THROTTLE_MC
from edge_agent.device.sysroot import SysRoot

# Temperature this far below the throttle point is worth a warning: a long run will get there.
WARM_MARGIN_MC = 15000
# 1-minute load per core above which something else is competing for the CPU.
LOAD_WARN_PER_CORE = 0.25
LOAD_FAIL_PER_CORE = 0.5
AGENT_COMMANDS = frozenset({"profile", "bench"})


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    severity: Literal["ok", "warn", "fail"]
    message: str


def run_checks(root: SysRoot) -> List[Finding]:
    checks: List[Callable[[SysRoot], Finding]] = [
        check_governor, check_throttling, check_temperature, check_load, check_swap, check_other_agents]
    return [check(root) for check in checks]


def ready(findings: Iterable[Finding]) -> bool:
    return all(finding.severity != "fail" for finding in findings)


def check_governor(root: SysRoot) -> Finding:
    governors = {}
    for policy in cpu.policies(root):
        governors[policy.rsplit("/", 1)[-1]] = root.read_str(policy + "/scaling_governor") or "unavailable"
    if not governors:
        return Finding(name="governor", severity="warn",
                       message="cpufreq unavailable: the clock cannot be checked or fixed here")
    others = {name: gov for name, gov in governors.items() if gov != "performance"}
    if others:
        listed = ", ".join("{}={}".format(name, gov) for name, gov in sorted(others.items()))
        return Finding(name="governor", severity="warn",
                       message="{}; `sudo edge-agent tune` sets performance and min=max".format(listed))
    return Finding(name="governor", severity="ok", message="performance on every policy")


def check_throttling(root: SysRoot) -> Finding:
    if not rpi.is_raspberry_pi(system.board_model(root)):
        return Finding(name="throttling", severity="ok", message="no firmware throttle flags on this board")
    bits = rpi.throttled_bits(root)
    alarm = rpi.under_voltage_alarm(root)
    if bits is None:
        return Finding(name="throttling", severity="warn", message="vcgencmd get_throttled unavailable")
    now = rpi.decode_throttled(bits & rpi.NOW_MASK) + (["under_voltage_alarm"] if alarm else [])
    if now:
        return Finding(name="throttling", severity="fail", message="{} (0x{:x}): check the power supply and "
                       "cooling".format(", ".join(now), bits))
    if bits & rpi.SINCE_BOOT_MASK:
        return Finding(name="throttling", severity="warn", message="{} (0x{:x}): happened earlier since boot".format(
            ", ".join(rpi.decode_throttled(bits)), bits))
    return Finding(name="throttling", severity="ok", message="no throttling or under-voltage since boot")


def check_temperature(root: SysRoot) -> Finding:
    temp = thermal.max_temp_mc(root)
    limit = thermal.throttle_temp_mc(thermal.read_zones(root), system.board_model(root))
    if temp is None:
        return Finding(name="temperature", severity="warn", message="no temperature sensor: unavailable")
    text = "{:.1f} degC".format(temp / 1000)
    if limit is None:
        return Finding(name="temperature", severity="ok", message=text + " (throttle point unknown)")
    text += ", throttles at {:.1f} degC".format(limit / 1000)
    if temp >= limit - NEAR_THROTTLE_MC:
        return Finding(name="temperature", severity="fail", message=text + ": let it cool, improve cooling")
    if temp >= limit - WARM_MARGIN_MC:
        return Finding(name="temperature", severity="warn", message=text + ": a long run may throttle")
    return Finding(name="temperature", severity="ok", message=text)


def check_load(root: SysRoot) -> Finding:
    load = system.load_avg_1m(root)
    cores = max(1, len(cpu.cpu_numbers(root, cpu.parse_cpuinfo(root.read_text("proc/cpuinfo")))))
    if load is None:
        return Finding(name="load", severity="warn", message="load average unavailable")
    text = "1-minute load {:.2f} on {} cores".format(load, cores)
    if load >= LOAD_FAIL_PER_CORE * cores:
        return Finding(name="load", severity="fail", message=text + ": something else is using the CPU")
    if load >= LOAD_WARN_PER_CORE * cores:
        return Finding(name="load", severity="warn", message=text)
    return Finding(name="load", severity="ok", message=text)


def check_swap(root: SysRoot) -> Finding:
    used = system.memory(root).swap_used_bytes
    if used is None:
        return Finding(name="swap", severity="warn", message="swap usage unavailable")
    if used > 0:
        return Finding(name="swap", severity="warn", message="{:.0f} MiB of swap in use: memory is short, "
                       "paging stalls timing".format(used / 2 ** 20))
    return Finding(name="swap", severity="ok", message="no swap in use")


def check_other_agents(root: SysRoot) -> Finding:
    others = other_agents(root, exclude={os.getpid(), os.getppid()})
    if others:
        shown = "; ".join("pid {}: {}".format(pid, " ".join(args)) for pid, args in others[:3])
        return Finding(name="other agents", severity="fail", message="another agent is measuring: " + shown)
    return Finding(name="other agents", severity="ok", message="no other edge-agent profile/bench running")


def other_agents(root: SysRoot, exclude: Iterable[int]) -> List[tuple]:
    """(pid, argv) of processes under root's /proc running `edge-agent profile|bench`."""
    skip = set(exclude)
    found = []
    for entry in root.listdir("proc"):
        if not entry.isdigit() or int(entry) in skip:
            continue
        args = _argv(root.read_text("proc/{}/cmdline".format(entry)))
        if args and _is_measuring_agent(args):
            found.append((int(entry), args))
    return found


def _argv(text: Optional[str]) -> List[str]:
    return [arg for arg in (text or "").split("\x00") if arg]


def _is_measuring_agent(args: List[str]) -> bool:
    for index, arg in enumerate(args):
        is_agent = os.path.basename(arg) == "edge-agent" or (
            arg in ("edge_agent", "edge_agent.cli") and index > 0 and args[index - 1] == "-m")
        if is_agent:
            return any(later in AGENT_COMMANDS for later in args[index + 1:])
    return False
