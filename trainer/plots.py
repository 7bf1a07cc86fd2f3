"""`trainer evaluate --plot`: predicted-vs-measured scatter and the CDF of relative error."""

from pathlib import Path

import numpy as np


def plot_evaluation(measured: np.ndarray, predicted: np.ndarray, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    left.scatter(measured, predicted, s=6, alpha=0.5)
    low, high = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
    left.plot([low, high], [low, high], color="black", linewidth=0.8)
    for factor in (0.9, 1.1):
        left.plot([low, high], [low * factor, high * factor], color="grey", linewidth=0.6, linestyle="--")
    left.set_xlabel("measured (ms)")
    left.set_ylabel("predicted (ms)")
    left.set_title(title)
    errors = np.sort(np.abs(predicted - measured) / measured * 100.0)
    right.plot(errors, np.arange(1, len(errors) + 1) / len(errors))
    for limit in (5, 10):
        right.axvline(limit, color="grey", linewidth=0.6, linestyle="--")
    right.set_xlabel("|error| (%)")
    right.set_ylabel("share of models")
    right.set_xlim(0, max(20.0, float(np.percentile(errors, 95))))
    right.set_title("error CDF")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
