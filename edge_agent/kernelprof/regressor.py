"""Latency between measured configurations, in two layers: a non-negative roofline (ns = a + b*FLOPs + c*bytes, and
+ d*(groups - 1) where the configs have groups) fitted to the kernels it explains, and a bagged forest of regression
trees on the log of what the roofline misses.

Why trees: what a roofline misses on real kernels is steps in sub-regions of the config space (a cache size crossed,
a channel count off the vector width, a fast path for small maps), which axis-aligned splits represent and a smooth
model smears over the whole space. The roofline carries the trend, so predictions outside the measured range still
scale with the work. numpy only, every fitted quantity is a plain array, and the bagging gives each measured config
an out-of-bag prediction: the error estimate adaptive sampling steers by. The LUT fits its own trees on the
workstation (lut.forest: extremely randomized, full depth; more accurate held out on real kernels, no out-of-bag
errors) into the same node table, and predicts with `predict` here.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

_NUMERIC = ("hw", "cin", "cout", "kernel", "stride", "groups")
_CATEGORICAL = ("act", "with", "operand")
TREES = 24
MAX_DEPTH = 8
MIN_LEAF = 2
MAX_ALIGNMENT = 64
TRIM_QUANTILE = 0.6  # the roofline is refitted on the kernels it explains best, so steps do not bend it
# The per-call term is fitted only from this many grouped configs: from one, it took all of that kernel's own step
# (a single grouped conv past a cache cliff), and every grouped conv came out far too high (docs/benchmarks-lut.md).
MIN_GROUPED_FOR_CALLS = 4


def feature_names(configs: Sequence[Dict[str, object]]) -> List[str]:
    """Numeric fields present in the configs, log FLOPs, bytes and weights, and one column per categorical value seen."""
    names = [f for f in _NUMERIC if any(f in c for c in configs)]
    if "cin" in names:
        names.append("cin_alignment")
    if "groups" in names:
        names.append("group_width")
    names += ["flops", "bytes", "weights"]
    for field in _CATEGORICAL:
        names += sorted({"{}={}".format(field, _category(c[field])) for c in configs if field in c})
    return names


def _category(value) -> str:
    return "+".join(value) if isinstance(value, list) else str(value)


def _weights(config: Dict[str, object]) -> float:
    """Weight count: whether the weights fit a cache is a cliff that activations and FLOPs do not show."""
    number = [float(np.mean(config.get(key, 1))) for key in ("cin", "cout", "kernel", "groups")]
    return number[0] * number[1] * number[2] ** 2 / max(number[3], 1.0)


def _group_width(config: Dict[str, object]) -> float:
    """Input channels per group. A difference of the cin and groups columns' logs, which no axis-aligned split
    expresses; and the cost steps with it where the runtime's blocked kernels need whole vector widths per group."""
    return float(np.mean(config.get("cin", 1))) / max(float(config.get("groups", 1)), 1.0)


def _cin_alignment(config: Dict[str, object]) -> float:
    """The largest power of two (up to MAX_ALIGNMENT) dividing the input channels. Vectorized kernels step with it
    (a channel count off the vector width can run several times slower than its neighbours), which neither the
    channel count nor the work shows."""
    channels = int(np.mean(config.get("cin", 1)))
    return float(min(channels & -channels, MAX_ALIGNMENT)) if channels > 0 else 1.0


def features(config: Dict[str, object], flops: int, bytes_moved: int, names: Sequence[str]) -> np.ndarray:
    row = []
    for name in names:
        if name == "flops":
            row.append(math.log1p(flops))
        elif name == "bytes":
            row.append(math.log1p(bytes_moved))
        elif name == "weights":
            row.append(math.log1p(_weights(config)))
        elif name == "group_width":
            row.append(math.log1p(_group_width(config)))
        elif name == "cin_alignment":
            row.append(math.log2(_cin_alignment(config)))
        elif "=" in name:
            field, value = name.split("=", 1)
            row.append(1.0 if field in config and _category(config[field]) == value else 0.0)
        else:
            value = config.get(name, 1 if name == "groups" else 0)  # kernels.single's default: not grouped
            row.append(math.log1p(float(np.mean(value)) if isinstance(value, list) else float(value)))
    return np.asarray(row, dtype=np.float64)


def group_calls(configs: Sequence[Dict[str, object]]) -> Optional[np.ndarray]:
    """Per config, how many calls a runtime makes for it: a grouped conv runs as a loop of one small GEMM per group,
    a cost per group that the work alone does not show. None where no config has groups: the roofline then has no such
    term."""
    if not any("groups" in config for config in configs):
        return None
    return np.asarray([float(config.get("groups", 1)) for config in configs])


def _nonnegative_lstsq(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    active, coef = list(range(x.shape[1])), np.zeros(x.shape[1])
    while active:
        solution = np.linalg.lstsq(x[:, active], target, rcond=None)[0]
        if (solution >= 0).all():
            coef[active] = solution
            break
        active.pop(int(np.argmin(solution)))
    return coef


def roofline(flops, bytes_moved, latency_ns, calls: Optional[np.ndarray] = None) -> np.ndarray:
    """[a, b, c] (and d with calls) >= 0 by least squares on relative error (rows divided by the latency, so a few
    large kernels do not decide the fit for the small ones), dropping the most negative term until none is (a kernel
    never gets faster with more work); refitted twice on the kernels it explains best. Units: ns, ns per MFLOP, ns per
    KB, ns per call beyond the first; [a, b, c] alone when fewer than MIN_GROUPED_FOR_CALLS kernels make several calls."""
    latency_ns = np.asarray(latency_ns, dtype=np.float64)
    columns = [np.ones(len(latency_ns)), np.asarray(flops) / 1e6, np.asarray(bytes_moved) / 1e3]
    if calls is not None and int(np.sum(np.asarray(calls) > 1)) >= MIN_GROUPED_FOR_CALLS:
        columns.append(np.asarray(calls, dtype=np.float64) - 1)
    x = np.stack(columns, axis=1)
    x = x / latency_ns[:, None]
    keep = np.ones(len(latency_ns), dtype=bool)
    for _ in range(3):
        coef = _nonnegative_lstsq(x[keep], np.ones(int(keep.sum())))
        miss = np.abs(np.log(np.maximum(x @ coef, 1e-12)))
        keep = miss <= max(float(np.quantile(miss, TRIM_QUANTILE)), 0.05)
        if keep.sum() < 3:
            break
    return coef


def roofline_ns(coef: np.ndarray, flops, bytes_moved, calls: Optional[np.ndarray] = None) -> np.ndarray:
    ns = coef[0] + coef[1] * np.asarray(flops) / 1e6 + coef[2] * np.asarray(bytes_moved) / 1e3
    if len(coef) > 3 and calls is not None:
        ns = ns + coef[3] * (np.asarray(calls, dtype=np.float64) - 1)
    return np.maximum(ns, 1.0)


def _best_split(x: np.ndarray, y: np.ndarray) -> Tuple[int, float, float]:
    """(feature, threshold, gain) of the split that lowers the squared error most; feature -1 when none does."""
    best = (-1, 0.0, 1e-12)
    n, total = len(y), y.sum()
    for feature in range(x.shape[1]):
        order = np.argsort(x[:, feature], kind="mergesort")
        values, sums = x[order, feature], np.cumsum(y[order])[:-1]
        left = np.arange(1, n)
        gain = sums ** 2 / left + (total - sums) ** 2 / (n - left) - total ** 2 / n
        valid = (values[1:] > values[:-1]) & (left >= MIN_LEAF) & (n - left >= MIN_LEAF)
        if valid.any():
            i = int(np.argmax(np.where(valid, gain, -np.inf)))
            if gain[i] > best[2]:
                best = (feature, float((values[i] + values[i + 1]) / 2), float(gain[i]))
    return best


def _grow(x: np.ndarray, y: np.ndarray, nodes: List[List[float]], depth: int) -> int:
    """Appends the subtree's nodes [feature, threshold, left, right, value] and returns its root's index."""
    index = len(nodes)
    nodes.append([-1.0, 0.0, -1.0, -1.0, float(y.mean())])
    if depth >= MAX_DEPTH or len(y) < 2 * MIN_LEAF:
        return index
    feature, threshold, _ = _best_split(x, y)
    if feature >= 0:
        mask = x[:, feature] <= threshold
        left = _grow(x[mask], y[mask], nodes, depth + 1)
        right = _grow(x[~mask], y[~mask], nodes, depth + 1)
        nodes[index][:4] = [float(feature), threshold, float(left), float(right)]
    return index


def _tree_predict(nodes: np.ndarray, roots: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each row's leaf value in each tree, shape (rows, trees); all trees walked at once, to any depth (the LUT's
    trees, lut.forest, are grown to full depth)."""
    rows = np.arange(len(x))[:, None]
    at = np.broadcast_to(np.asarray(roots, dtype=np.int64), (len(x), len(roots))).copy()
    for _ in range(len(nodes)):
        feature = nodes[at, 0].astype(np.int64)
        inner = feature >= 0
        if not inner.any():
            break
        go_left = x[rows, np.maximum(feature, 0)] <= nodes[at, 1]
        at = np.where(inner, np.where(go_left, nodes[at, 2], nodes[at, 3]).astype(np.int64), at)
    return nodes[at, 4]


def fit(x: np.ndarray, latency_ns: np.ndarray, flops, bytes_moved, seed: int = 0,
        calls: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """The roofline, the forest's node table (all trees, roots listed in "roots"), and "oob": every measured config's
    relative error predicted by the trees whose bootstrap left it out (nan if all drew it)."""
    latency_ns = np.maximum(np.asarray(latency_ns, dtype=np.float64), 1.0)
    roof = roofline(flops, bytes_moved, latency_ns, calls)
    y = np.log(latency_ns) - np.log(roofline_ns(roof, flops, bytes_moved, calls))
    rng = np.random.RandomState(seed)
    nodes: List[List[float]] = []
    roots, oob_sum, oob_count = [], np.zeros(len(y)), np.zeros(len(y))
    for _ in range(TREES):
        drawn = rng.randint(len(y), size=len(y))
        roots.append(_grow(x[drawn], y[drawn], nodes, 0))
        out = np.setdiff1d(np.arange(len(y)), drawn)
        table = np.asarray(nodes, dtype=np.float64)
        oob_sum[out] += _tree_predict(table, roots[-1:], x[out])[:, 0]
        oob_count[out] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        oob = np.abs(np.expm1(oob_sum / oob_count - y))
    return {"roofline": roof, "nodes": np.asarray(nodes, dtype=np.float64), "roots": np.asarray(roots, dtype=np.float64),
            "oob": oob}


def predict(model: Dict[str, np.ndarray], x: np.ndarray, flops, bytes_moved,
            calls: Optional[np.ndarray] = None) -> np.ndarray:
    x = np.atleast_2d(x)
    trees = _tree_predict(model["nodes"], model["roots"], x)
    return roofline_ns(model["roofline"], flops, bytes_moved, calls) * np.exp(trees.mean(axis=1))
