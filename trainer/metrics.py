"""The research's accuracy metrics of predicted vs measured latency."""

from typing import Dict

import numpy as np


def score(measured: np.ndarray, predicted: np.ndarray) -> Dict[str, float]:
    """mean accuracy = mean(1 - |p - t| / t); within_10/within_5 = share with accuracy >= 90 % / 95 %."""
    from scipy.stats import kendalltau, spearmanr

    t = np.asarray(measured, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if len(t) == 0:
        return {"n": 0}
    relative = np.abs(p - t) / t
    ranked = len(t) > 1 and np.ptp(t) > 0 and np.ptp(p) > 0
    return {
        "n": int(len(t)),
        "mean_gap_ms": float(np.mean(np.abs(p - t))),
        "mean_accuracy": float(np.mean(1.0 - relative)),
        "within_10": float(np.mean(relative <= 0.10 + 1e-12)),
        "within_5": float(np.mean(relative <= 0.05 + 1e-12)),
        "rmse_ms": float(np.sqrt(np.mean((p - t) ** 2))),
        "mape_pct": float(100.0 * np.mean(relative)),
        "spearman": float(spearmanr(t, p)[0]) if ranked else float("nan"),
        "kendall": float(kendalltau(t, p)[0]) if ranked else float("nan"),
    }
