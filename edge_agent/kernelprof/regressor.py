"""Latency between measured configurations, in three layers: a non-negative roofline (ns = a + b*FLOPs + c*bytes),
a ridge regression of the log of what the roofline misses on log-scaled config features, and the k nearest measured
configurations' remaining residuals added back (exact at measured points, fading with distance from them).
numpy only, and every fitted quantity is a plain array, so the LUT file holds it as JSON lists."""

import math
from typing import Dict, List, Sequence

import numpy as np

_NUMERIC = ("hw", "cin", "cout", "kernel", "stride", "groups")
_CATEGORICAL = ("act", "with")
RIDGE = 1e-2
NEIGHBOURS = 4
FADE = 3.0  # distance (in feature standard deviations) over which neighbours' residuals fade


def feature_names(configs: Sequence[Dict[str, object]]) -> List[str]:
    """Numeric fields present in the configs, log FLOPs and bytes, and one column per categorical value seen."""
    names = [f for f in _NUMERIC if any(f in c for c in configs)] + ["flops", "bytes"]
    for field in _CATEGORICAL:
        names += sorted({"{}={}".format(field, _category(c[field])) for c in configs if field in c})
    return names


def _category(value) -> str:
    return "+".join(value) if isinstance(value, list) else str(value)


def features(config: Dict[str, object], flops: int, bytes_moved: int, names: Sequence[str]) -> np.ndarray:
    row = []
    for name in names:
        if name == "flops":
            row.append(math.log1p(flops))
        elif name == "bytes":
            row.append(math.log1p(bytes_moved))
        elif "=" in name:
            field, value = name.split("=", 1)
            row.append(1.0 if field in config and _category(config[field]) == value else 0.0)
        else:
            value = config.get(name, 0)
            row.append(math.log1p(float(np.mean(value)) if isinstance(value, list) else float(value)))
    return np.asarray(row, dtype=np.float64)


def roofline(flops: np.ndarray, bytes_moved: np.ndarray, latency_ns: np.ndarray) -> np.ndarray:
    """[a, b, c] >= 0 by least squares on relative error (rows divided by the latency, so a few large kernels do not
    decide the fit for the small ones), dropping the most negative term until none is (a kernel never gets faster
    with more work). Units: ns, ns per MFLOP, ns per KB."""
    latency_ns = np.asarray(latency_ns, dtype=np.float64)
    x = np.stack([np.ones(len(flops)), np.asarray(flops) / 1e6, np.asarray(bytes_moved) / 1e3], axis=1)
    x, target = x / latency_ns[:, None], np.ones(len(latency_ns))
    active, coef = [0, 1, 2], np.zeros(3)
    while active:
        solution = np.linalg.lstsq(x[:, active], target, rcond=None)[0]
        if (solution >= 0).all():
            coef[active] = solution
            break
        active.pop(int(np.argmin(solution)))
    return coef


def roofline_ns(coef: np.ndarray, flops, bytes_moved) -> np.ndarray:
    return np.maximum(coef[0] + coef[1] * np.asarray(flops) / 1e6 + coef[2] * np.asarray(bytes_moved) / 1e3, 1.0)


def fit(x: np.ndarray, latency_ns: np.ndarray, flops: np.ndarray, bytes_moved: np.ndarray) -> Dict[str, np.ndarray]:
    latency_ns = np.maximum(np.asarray(latency_ns, dtype=np.float64), 1.0)
    roof = roofline(flops, bytes_moved, latency_ns)
    y = np.log(latency_ns) - np.log(roofline_ns(roof, flops, bytes_moved))
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    penalty = RIDGE * np.eye(z.shape[1])
    penalty[-1, -1] = 0.0  # never shrink the intercept
    coef = np.linalg.solve(z.T @ z + penalty, z.T @ y)
    return {"roofline": roof, "mean": mean, "scale": scale, "coef": coef, "points": z[:, :-1],
            "residuals": y - z @ coef}


def predict(model: Dict[str, np.ndarray], x: np.ndarray, flops, bytes_moved) -> np.ndarray:
    z = (np.atleast_2d(x) - model["mean"]) / model["scale"]
    base = np.hstack([z, np.ones((len(z), 1))]) @ model["coef"]
    distances = np.sqrt(((z[:, None, :] - model["points"][None, :, :]) ** 2).sum(axis=2))
    k = min(NEIGHBOURS, distances.shape[1])
    nearest = np.argsort(distances, axis=1)[:, :k]
    d = np.take_along_axis(distances, nearest, axis=1)
    weights = 1.0 / (d + 1e-6)
    correction = (weights * model["residuals"][nearest]).sum(axis=1) / weights.sum(axis=1)
    # far from every measured point the residuals say nothing: fade them out with distance
    correction *= np.exp(-d.min(axis=1) / FADE)
    return roofline_ns(model["roofline"], flops, bytes_moved) * np.exp(base + correction)
