"""Statistics derived from raw samples. Nothing here is stored: bundles keep the samples, readers derive these."""

import math
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

# IQR of a normal distribution is 1.349 sigma: robust_cv estimates the CV without letting a few spikes dominate.
_IQR_TO_SIGMA = 1.349


@dataclass(frozen=True)
class Summary:
    runs: int
    median_ns: float
    mean_ns: float
    p10_ns: float
    p90_ns: float
    iqr_ns: float
    cv: float
    robust_cv: float
    window_medians_ns: List[float]

    @property
    def median_ms(self) -> float:
        return self.median_ns / 1e6


def flatten(windows: Sequence[Sequence[int]]) -> "np.ndarray":
    return np.asarray([sample for window in windows for sample in window], dtype=np.float64)


def summarize(windows: Sequence[Sequence[int]]) -> Summary:
    samples = flatten(windows)
    if samples.size == 0:
        raise ValueError("no samples to summarize")
    p10, p25, median, p75, p90 = np.percentile(samples, [10, 25, 50, 75, 90])
    mean = float(samples.mean())
    std = float(samples.std(ddof=1)) if samples.size > 1 else 0.0
    return Summary(
        runs=int(samples.size),
        median_ns=float(median),
        mean_ns=mean,
        p10_ns=float(p10),
        p90_ns=float(p90),
        iqr_ns=float(p75 - p25),
        cv=std / mean if mean > 0 else math.nan,
        robust_cv=float(p75 - p25) / _IQR_TO_SIGMA / float(median) if median > 0 else math.nan,
        window_medians_ns=[float(np.median(w)) for w in windows if len(w)],
    )


def window_ratios(windows: Sequence[Sequence[int]], reference_windows: Sequence[Sequence[int]]) -> List[float]:
    """Per-window ratio of medians; item and reference ran interleaved in the same window, so drift cancels."""
    if len(windows) != len(reference_windows):
        raise ValueError("item and reference have different window counts")
    return [float(np.median(w)) / float(np.median(r)) for w, r in zip(windows, reference_windows) if len(w) and len(r)]


def interleaved_ratio(windows: Sequence[Sequence[int]], reference_windows: Sequence[Sequence[int]]) -> float:
    ratios = window_ratios(windows, reference_windows)
    if not ratios:
        raise ValueError("no paired windows to take a ratio from")
    return float(np.median(ratios))
