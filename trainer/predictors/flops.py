"""FLOPs-linear baseline: per training device, ratio = a * FLOPs + b, least squares on its measured items."""

from typing import Dict, Optional, Sequence

import numpy as np

from trainer.encoding import GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import HeadsPredictor
from trainer.predictors.torch_fit import relative_error


@register("flops")
class FlopsPredictor(HeadsPredictor):
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
        history = FitHistory(epochs=1, best_epoch=1)
        if len(val):
            history.val_errors.append(relative_error(self.log_heads(val), val_y))
        if progress is not None:
            progress(1, 1, history.val_errors[-1] if history.val_errors else float("nan"))
        return history

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        return np.log(np.maximum(self._design(encodings) @ self.coef, 1e-9))

    def tensors(self) -> Dict[str, np.ndarray]:
        return dict({"coef": self.coef.copy()}, **self.mix_tensors())

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        tensors = dict(tensors)
        self.load_mix(tensors)
        self.coef = np.asarray(tensors["coef"], dtype=np.float64).reshape(2, self.n_heads)
