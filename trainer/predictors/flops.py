"""FLOPs-linear baseline: per training device, ratio = a * FLOPs + b, least squares on its measured items."""

from typing import Dict, Optional, Sequence

import numpy as np

from trainer.encoding import GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import HeadsPredictor


@register("flops")
class FlopsPredictor(HeadsPredictor):
    closed_form = True

    def build(self) -> None:
        self.coef = np.zeros((2, self.n_heads))

    @staticmethod
    def _design(encodings: Sequence[GraphEncoding]) -> np.ndarray:
        flops = np.asarray([e.total_flops for e in encodings], dtype=np.float64) / 1e9
        return np.stack([flops, np.ones_like(flops)], axis=1)

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        design = self._design(train)
        for head in range(self.n_heads):
            known = np.isfinite(train_y[:, head])
            self.coef[:, head] = np.linalg.lstsq(design[known], train_y[known, head], rcond=None)[0]
        return self.closed_form_history(val, val_y, progress)

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        return np.log(np.maximum(self._design(encodings) @ self.coef, 1e-9))

    def tensors(self) -> Dict[str, np.ndarray]:
        return dict({"coef": self.coef.copy()}, **self.mix_tensors())

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        tensors = dict(tensors)
        self.load_mix(tensors)
        self.coef = np.asarray(tensors["coef"], dtype=np.float64).reshape(2, self.n_heads)
