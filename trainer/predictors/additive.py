"""Node-additive baseline: a model's latency ratio as a ridge regression on its FLOPs, bytes moved and node count
summed per node group (op type × kernel size × depthwise), one set of weights per training device.

Why it exists beside the GCN: on a CPU without fusion surprises, latency is close to a sum over nodes whose cost per
FLOP depends on the op, and that structure can be learned from the ~100 subnets a short calibration measures, where
a 4×600 GCN has far too many weights for so few examples.
"""

from typing import Dict, List, Optional, Sequence

import numpy as np

from trainer.encoding import DEFAULT_VOCABULARY, NUMERIC_FEATURES, GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import HeadsPredictor

ALPHAS = tuple(np.logspace(-4, 2, 13))
_SUMMED = ("flops", "bytes_moved")


def node_groups(encoding: GraphEncoding) -> np.ndarray:
    """Group id per node (the global node excluded): op index, kernel height and depthwise flag."""
    op_count = len(DEFAULT_VOCABULARY) + 2
    numeric = np.expm1(encoding.x[:-1, op_count:].astype(np.float64))
    op = encoding.x[:-1, :op_count].argmax(axis=1)
    kernel = np.rint(numeric[:, NUMERIC_FEATURES.index("kernel_h")]).astype(np.int64)
    depthwise = (numeric[:, NUMERIC_FEATURES.index("depthwise")] > 0.5).astype(np.int64)
    return op * 1000 + kernel * 2 + depthwise


def group_features(encoding: GraphEncoding, groups: Sequence[int]) -> np.ndarray:
    op_count = len(DEFAULT_VOCABULARY) + 2
    numeric = np.expm1(encoding.x[:-1, op_count:].astype(np.float64))
    ids = node_groups(encoding)
    columns = [numeric[:, NUMERIC_FEATURES.index(name)] for name in _SUMMED]
    row: List[float] = []
    for group in groups:
        members = ids == group
        row += [float(column[members].sum()) for column in columns] + [float(members.sum())]
    return np.asarray(row, dtype=np.float64)


@register("additive")
class AdditivePredictor(HeadsPredictor):
    closed_form = True

    def build(self) -> None:
        self.groups = np.zeros(0, dtype=np.int64)
        self.scale = np.ones(0)
        self.coef = np.zeros((1, self.n_heads))

    def _design(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        features = np.stack([group_features(e, self.groups.tolist()) for e in encodings]) / self.scale
        return np.hstack([features, np.ones((len(encodings), 1))])

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        self.groups = np.unique(np.concatenate([node_groups(e) for e in train]))
        raw = np.stack([group_features(e, self.groups.tolist()) for e in train])
        # Scale by magnitude, not spread: a group every model shares (the stem) is constant up to float32 rounding,
        # and dividing by that rounding noise would blow the column up.
        self.scale = np.maximum(np.abs(raw).max(axis=0), 1e-12)
        design = self._design(train)
        self.coef = np.zeros((design.shape[1], self.n_heads))
        for head in range(self.n_heads):
            known = np.isfinite(train_y[:, head])
            self.coef[:, head] = self._ridge(design[known], train_y[known, head])
        return self.closed_form_history(val, val_y, progress)

    @staticmethod
    def _ridge(design: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ridge with the strength of least leave-one-out error (closed form through the hat matrix)."""
        best, best_error = None, np.inf
        penalty = np.eye(design.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        for alpha in ALPHAS:
            inverse = np.linalg.pinv(design.T @ design + alpha * penalty)
            coef = inverse @ design.T @ y
            hat = np.einsum("ij,jk,ik->i", design, inverse, design)
            residual = (y - design @ coef) / np.maximum(1 - hat, 1e-6)
            error = float(np.mean((residual / y) ** 2))
            if error < best_error:
                best, best_error = coef, error
        return best

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        return np.log(np.maximum(self._design(encodings) @ self.coef, 1e-9))

    def tensors(self) -> Dict[str, np.ndarray]:
        return dict({"groups": self.groups.astype(np.int64), "scale": self.scale.copy(), "coef": self.coef.copy()},
                    **self.mix_tensors())

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        tensors = dict(tensors)
        self.load_mix(tensors)
        self.groups = np.asarray(tensors["groups"], dtype=np.int64)
        self.scale = np.asarray(tensors["scale"], dtype=np.float64)
        self.coef = np.asarray(tensors["coef"], dtype=np.float64).reshape(-1, self.n_heads)
