"""Timing loops. pyperf / TFLite benchmark_model style: warm up by count AND time, measure in windows by count AND
time, keep every sample as integer ns. With a reference, runs alternate item, reference, item, ... so both streams
see the same machine state and their ratio is free of drift."""

import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from edge_agent.bundle.schema import ProtocolConfig


@dataclass
class Timings:
    samples_ns: List[List[int]]
    reference_samples_ns: Optional[List[List[int]]]
    warmup_runs: int


def time_once(run: Callable[[], None]) -> int:
    start = time.perf_counter_ns()
    run()
    return time.perf_counter_ns() - start


def warm_up(runs: List[Callable[[], None]], protocol: ProtocolConfig) -> int:
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


def measure_window(item: Callable[[], None], reference: Optional[Callable[[], None]], min_runs: int,
                   min_time_ns: int, max_runs: int):
    samples, reference_samples = [], []
    deadline = time.perf_counter_ns() + min_time_ns
    while len(samples) < min_runs or time.perf_counter_ns() < deadline:
        samples.append(time_once(item))
        if reference is not None:
            reference_samples.append(time_once(reference))
        if len(samples) >= max_runs:
            break
    return samples, reference_samples


def measure(item: Callable[[], None], reference: Optional[Callable[[], None]], protocol: ProtocolConfig) -> Timings:
    runs = [item] if reference is None else [item, reference]
    warmup_runs = warm_up(runs, protocol)
    windows = max(1, protocol.windows)
    per_window_runs = -(-protocol.min_runs // windows)
    per_window_time_ns = protocol.min_time_ns // windows
    per_window_max = max(per_window_runs, protocol.max_runs // windows)
    samples, reference_samples = [], []
    for _ in range(windows):
        window, reference_window = measure_window(item, reference, per_window_runs, per_window_time_ns, per_window_max)
        samples.append(window)
        reference_samples.append(reference_window)
    return Timings(samples, reference_samples if reference is not None else None, warmup_runs)
