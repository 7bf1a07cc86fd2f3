"""Named protocols. `default` is the full protocol; `quick` trades rigour for throughput in long profiles and
still interleaves the reference, which is what keeps ratios repeatable on a drifting machine.

All of them alternate item and reference in bursts of 20 ms, each opened by one untimed run that brings the
burst's model back into the cache: drift over seconds still cancels in the ratio, and the item is timed the way
runtimes' own benchmark tools time it, back to back, not cold after the reference."""

from typing import Dict

from edge_agent.bundle.schema import ProtocolConfig
from edge_agent.errors import InputError

_BURSTS = {"burst_min_runs": 2, "burst_min_time_ns": 20_000_000, "burst_warmup_runs": 1}
PRESETS: Dict[str, ProtocolConfig] = {
    "quick": ProtocolConfig(warmup_min_runs=10, warmup_min_time_ns=300_000_000, min_runs=15,
                            min_time_ns=600_000_000, windows=3, cv_threshold=0.10, max_retries=1, timeout_s=300.0,
                            **_BURSTS),
    "default": ProtocolConfig(**_BURSTS),
    "rigorous": ProtocolConfig(warmup_min_runs=50, warmup_min_time_ns=2_000_000_000, min_runs=60,
                               min_time_ns=5_000_000_000, windows=5, cv_threshold=0.03, max_retries=3, **_BURSTS),
}


def protocol_from_options(preset: str, overrides: Dict[str, object]) -> ProtocolConfig:
    if preset not in PRESETS:
        raise InputError("unknown protocol {!r}; choose one of: {}".format(preset, ", ".join(PRESETS)))
    chosen = {key: value for key, value in overrides.items() if value is not None}
    return PRESETS[preset].model_copy(update=chosen)
