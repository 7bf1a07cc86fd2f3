"""Predicted-vs-measured scatter and the CDF of relative error: side by side in a PNG (`trainer evaluate --plot`), or
one SVG each for `trainer report`, which inlines them in its HTML page."""

import io
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_scatter(axes, measured: np.ndarray, predicted: np.ndarray, title: str) -> None:
    """Each model as a point, the identity line, and dashed lines at ±10 %."""
    axes.scatter(measured, predicted, s=6, alpha=0.5)
    low, high = float(min(measured.min(), predicted.min())), float(max(measured.max(), predicted.max()))
    axes.plot([low, high], [low, high], color="black", linewidth=0.8)
    for factor in (0.9, 1.1):
        axes.plot([low, high], [low * factor, high * factor], color="grey", linewidth=0.6, linestyle="--")
    axes.set_xlabel("measured (ms)")
    axes.set_ylabel("predicted (ms)")
    axes.set_title(title)


def draw_error_cdf(axes, measured: np.ndarray, predicted: np.ndarray) -> None:
    """Share of models within each relative error, with the ±5 % and ±10 % marks."""
    errors = np.sort(np.abs(predicted - measured) / measured * 100.0)
    axes.plot(errors, np.arange(1, len(errors) + 1) / len(errors))
    for limit in (5, 10):
        axes.axvline(limit, color="grey", linewidth=0.6, linestyle="--")
    axes.set_xlabel("|error| (%)")
    axes.set_ylabel("share of models")
    axes.set_xlim(0, max(20.0, float(np.percentile(errors, 95))))
    axes.set_title("error CDF")


def plot_evaluation(measured: np.ndarray, predicted: np.ndarray, title: str, out: Path) -> None:
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
    draw_scatter(left, measured, predicted, title)
    draw_error_cdf(right, measured, predicted)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def scatter_svg(measured: np.ndarray, predicted: np.ndarray, title: str) -> str:
    return _svg(draw_scatter, measured, predicted, title)


def error_cdf_svg(measured: np.ndarray, predicted: np.ndarray) -> str:
    return _svg(draw_error_cdf, measured, predicted)


def _svg(draw, *args) -> str:
    """One plot as an <svg> element to inline in HTML: text kept as text (no glyph definitions whose ids would
    repeat across the page's plots; the other ids are salted at random), the XML prolog and DOCTYPE dropped."""
    plt = _pyplot()
    with plt.rc_context({"svg.fonttype": "none"}):
        fig, axes = plt.subplots(figsize=(5, 4))
        draw(axes, *args)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]
