"""Timing loops. pyperf / TFLite benchmark_model style: warm up by count AND time, measure in windows by count AND
time, keep every sample as integer ns. With a reference, item and reference alternate in bursts (ProtocolConfig
burst_*) so both streams see the same machine state and their ratio is free of drift, while each is timed warm,
back to back, as a runtime's own benchmark tool would time it."""

import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from edge_agent.bundle.schema import ProtocolConfig

Run = Callable[[], None]


@dataclass
class Timings:
    samples_ns: List[List[int]]
    reference_samples_ns: Optional[List[List[int]]]
    warmup_runs: int
    window_load_ns: Optional[List[int]] = None


def time_once(run: Run) -> int:
    start = time.perf_counter_ns()
    run()
    return time.perf_counter_ns() - start


def warm_up(runs: List[Run], protocol: ProtocolConfig) -> int:
    """Alternate the given callables until both the minimum count and the minimum time are met."""
    count = 0
    deadline = time.perf_counter_ns() + protocol.warmup_min_time_ns
    while count < protocol.warmup_min_runs or time.perf_counter_ns() < deadline:
        for run in runs:
            run()
        count += 1
        if count >= protocol.max_runs:
            break
    return count


def measure_window(item: Run, reference: Optional[Run], min_runs: int,
                   min_time_ns: int, max_runs: int, protocol: ProtocolConfig):
    samples, reference_samples = [], []
    deadline = time.perf_counter_ns() + min_time_ns
    while len(samples) < min_runs or time.perf_counter_ns() < deadline:
        if reference is None:
            samples.append(time_once(item))
        else:
            samples += burst(item, protocol)
            reference_samples += burst(reference, protocol)
        if len(samples) >= max_runs:
            break
    return samples, reference_samples


def burst(run: Run, protocol: ProtocolConfig) -> List[int]:
    """The untimed runs that bring this model back into the cache after the other one ran, then timed runs until
    both the burst's count and its time are met."""
    for _ in range(protocol.burst_warmup_runs):
        run()
    samples: List[int] = []
    deadline = time.perf_counter_ns() + protocol.burst_min_time_ns
    while len(samples) < protocol.burst_min_runs or time.perf_counter_ns() < deadline:
        samples.append(time_once(run))
        if len(samples) >= protocol.max_runs:
            break
    return samples


def measure(item: Run, reference: Optional[Run], protocol: ProtocolConfig,
            reopen: Optional[Callable[[], Tuple[Run, int]]] = None) -> Timings:
    """With protocol.session_per_window, `reopen` opens a fresh session of the item (its run and load ns) for every
    window after the first, warmed up as the first one was."""
    runs = [item] if reference is None else [item, reference]
    warmup_runs = warm_up(runs, protocol)
    window_load_ns: Optional[List[int]] = [] if protocol.session_per_window and reopen is not None else None
    windows = max(1, protocol.windows)
    per_window_runs = -(-protocol.min_runs // windows)
    per_window_time_ns = protocol.min_time_ns // windows
    per_window_max = max(per_window_runs, protocol.max_runs // windows)
    samples, reference_samples = [], []
    for index in range(windows):
        if window_load_ns is not None and index > 0:
            item, load_ns = reopen()
            window_load_ns.append(load_ns)
            warmup_runs += warm_up([item] if reference is None else [item, reference], protocol)
        window, reference_window = measure_window(item, reference, per_window_runs, per_window_time_ns,
                                                  per_window_max, protocol)
        samples.append(window)
        reference_samples.append(reference_window)
    return Timings(samples, reference_samples if reference is not None else None, warmup_runs, window_load_ns)
