"""The LUT's regressor for one kernel kind: the roofline of edge_agent.kernelprof.regressor, and scikit-learn's
extremely randomized trees on the log of what it misses, exported to the node table regressor.predict reads (so the
LUT file stays JSON and predicting needs numpy only).

Why not the board's forest (bagged best-split trees, depth 8, kept there for its out-of-bag errors, which steer
adaptive sampling): held out on real kernels, and on the zoo networks' own kernels measured alone, extremely
randomized trees grown to full depth on every sample put more kernels within ±10 % (`bench_lut.py regressor` and
`zoo-kernels`; figures in docs/benchmarks-lut.md). Random thresholds average into a smoother surface between measured
configs than best splits on a bootstrap; on a noiseless step that lies along one axis the best splits win, but
measured kernels are not that.
"""

from typing import Dict, Optional

import numpy as np

from edge_agent.kernelprof import regressor

TREES = 50
_LEAF = -1  # the node table's feature of a leaf (scikit-learn's is -2)


def fit(x: np.ndarray, latency_ns: np.ndarray, flops, bytes_moved, seed: int = 0,
        calls: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """{"roofline", "nodes", "roots"} as regressor.predict reads them."""
    from sklearn.ensemble import ExtraTreesRegressor

    latency_ns = np.maximum(np.asarray(latency_ns, dtype=np.float64), 1.0)
    roof = regressor.roofline(flops, bytes_moved, latency_ns, calls)
    residual = np.log(latency_ns) - np.log(regressor.roofline_ns(roof, flops, bytes_moved, calls))
    forest = ExtraTreesRegressor(n_estimators=TREES, random_state=seed).fit(x, residual)
    tables, roots, offset = [], [], 0
    for estimator in forest.estimators_:
        tables.append(_node_table(estimator.tree_, offset))
        roots.append(offset)
        offset += len(tables[-1])
    return {"roofline": roof, "nodes": np.concatenate(tables), "roots": np.asarray(roots, dtype=np.float64)}


def _node_table(tree, offset: int) -> np.ndarray:
    """Rows [feature, threshold, left, right, value], child indices shifted to the tree's place in the table."""
    leaf = tree.children_left < 0
    return np.stack([np.where(leaf, _LEAF, tree.feature), np.where(leaf, 0.0, tree.threshold),
                     np.where(leaf, -1, tree.children_left + offset), np.where(leaf, -1, tree.children_right + offset),
                     tree.value[:, 0, 0]], axis=1).astype(np.float64)
