"""`tune` saves the CPU clock settings, then fixes them for measuring; `reset` restores exactly what was saved.
Every write goes through SysRoot, so tests tune a copy of a fixture tree."""

import json
import os
import time
from typing import List, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from edge_agent.bundle.files import atomic_write
from edge_agent.device import cpu, jetson, system
from edge_agent.device.sysroot import SysRoot
from edge_agent.errors import AgentError, InputError

TUNE_STATE_SCHEMA_VERSION = 1
DEFAULT_STATE_FILE = "var/lib/edge-agent/tune-state.json"
MEASURE_GOVERNOR = "performance"


class PolicyState(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy: str
    governor: str
    min_freq_khz: int
    max_freq_khz: int


class TuneState(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: int = TUNE_STATE_SCHEMA_VERSION
    created_unix_s: float
    policies: List[PolicyState]
    # Where `jetson_clocks --store` wrote GPU/EMC/CPU settings on a Jetson; `reset` gives it to --restore.
    jetson_clocks_file: Optional[str] = None


class TuneError(AgentError):
    """tune/reset could not read or write the clock settings."""


def default_state_file(root: SysRoot) -> str:
    return root.path(DEFAULT_STATE_FILE)


def read_policies(root: SysRoot) -> List[PolicyState]:
    states = []
    for policy in cpu.policies(root):
        values = [root.read_str(policy + "/scaling_governor"), root.read_int(policy + "/scaling_min_freq"),
                  root.read_int(policy + "/scaling_max_freq")]
        if any(value is None for value in values):
            raise TuneError("cannot read governor and min/max frequency of {}".format(root.path(policy)))
        states.append(PolicyState(policy=policy, governor=values[0], min_freq_khz=values[1],
                                  max_freq_khz=values[2]))
    if not states:
        raise TuneError("no cpufreq policies under {}: nothing to tune on this machine".format(
            root.path(cpu.CPUFREQ_DIR)))
    return states


def tune(root: SysRoot, state_file: str, freq_khz: Optional[int] = None) -> TuneState:
    """Save the current settings to state_file, then set the performance governor and min = max on every policy
    (max is the policy's current maximum, which respects an nvpmodel cap, or freq_khz when given)."""
    if os.path.exists(state_file):
        raise TuneError("already tuned: {} holds the settings to restore; run `edge-agent reset` first".format(
            state_file))
    saved = read_policies(root)
    on_jetson = jetson.is_jetson(root, system.board_model(root))
    state = TuneState(created_unix_s=time.time(), policies=saved,
                      jetson_clocks_file=state_file + ".jetson_clocks" if on_jetson else None)
    _check_freq(root, saved, freq_khz)
    os.makedirs(os.path.dirname(os.path.abspath(state_file)), exist_ok=True)
    if state.jetson_clocks_file:
        _jetson_clocks(root, ["--store", state.jetson_clocks_file])
    atomic_write(state_file, state.model_dump_json(indent=2) + "\n")
    try:
        if state.jetson_clocks_file:
            _jetson_clocks(root, [])
        for policy in saved:
            target = freq_khz or policy.max_freq_khz
            # Raise max before min so min never exceeds max on the way.
            _write(root, policy.policy + "/scaling_governor", MEASURE_GOVERNOR)
            _write(root, policy.policy + "/scaling_max_freq", str(target))
            _write(root, policy.policy + "/scaling_min_freq", str(target))
    except TuneError as exc:
        try:
            reset(root, state_file)
        except TuneError as undo:
            raise TuneError("{}; undoing it failed too: {}".format(exc, undo)) from None
        raise
    return state


def reset(root: SysRoot, state_file: str) -> TuneState:
    """Write back exactly what tune saved, then remove the state file. Every write is attempted even when one
    fails; then the state file is kept so a second reset can finish the job."""
    state = load_state(state_file)
    failures = []
    if state.jetson_clocks_file:
        failures += _attempt(_jetson_clocks, root, ["--restore", state.jetson_clocks_file])
    for policy in state.policies:
        # Lower min before max: the saved min is never above the saved max.
        for name, value in (("scaling_min_freq", policy.min_freq_khz), ("scaling_max_freq", policy.max_freq_khz),
                            ("scaling_governor", policy.governor)):
            failures += _attempt(_write, root, "{}/{}".format(policy.policy, name), str(value))
    if failures:
        raise TuneError("reset incomplete, {} kept for another try: {}".format(state_file, "; ".join(failures)))
    os.remove(state_file)
    if state.jetson_clocks_file and os.path.exists(state.jetson_clocks_file):
        os.remove(state.jetson_clocks_file)
    return state


def _attempt(action, *args) -> List[str]:
    try:
        action(*args)
    except TuneError as exc:
        return [str(exc)]
    return []


def load_state(state_file: str) -> TuneState:
    try:
        with open(state_file, "r", encoding="utf-8") as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        raise TuneError("nothing to reset: no saved settings at {} (run `edge-agent tune` first)".format(
            state_file)) from None
    except (OSError, ValueError) as exc:
        raise TuneError("cannot read {}: {}".format(state_file, exc)) from None
    if isinstance(raw, dict) and raw.get("schema_version") != TUNE_STATE_SCHEMA_VERSION:
        raise TuneError("{} has schema version {!r}; this agent reads {}".format(
            state_file, raw.get("schema_version"), TUNE_STATE_SCHEMA_VERSION))
    try:
        return TuneState.model_validate(raw)
    except ValidationError as exc:
        raise TuneError("{} is not a tune state file: {}".format(state_file, exc.errors()[0]["msg"])) from None


def _check_freq(root: SysRoot, saved: List[PolicyState], freq_khz: Optional[int]) -> None:
    if freq_khz is None:
        return
    for policy in saved:
        available = (root.read_str(policy.policy + "/scaling_available_frequencies") or "").split()
        if available and str(freq_khz) not in available:
            raise InputError("{} kHz is not one of {}'s frequencies: {}".format(
                freq_khz, policy.policy.rsplit("/", 1)[-1], " ".join(available)))


def _write(root: SysRoot, rel: str, value: str) -> None:
    try:
        root.write_text(rel, value)
    except PermissionError:
        raise TuneError("permission denied writing {}: tune and reset need root (sudo)".format(
            root.path(rel))) from None
    except OSError as exc:
        raise TuneError("writing {!r} to {} failed: {}".format(value, root.path(rel), exc.strerror)) from None


def _jetson_clocks(root: SysRoot, args: List[str]) -> None:
    if root.tool("jetson_clocks") is None:
        raise TuneError("this is a Jetson but jetson_clocks was not found")
    if root.run_tool("jetson_clocks", args, timeout_s=30.0) is None:
        raise TuneError("`jetson_clocks {}` failed (it needs root)".format(" ".join(args)).replace("  ", " "))
