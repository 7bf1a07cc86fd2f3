"""FLOPs-linear baseline: ratio = a * FLOPs + b, least squares on the training examples."""

from typing import Dict, Optional, Sequence

import numpy as np

from trainer.encoding import GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, Predictor, ProgressFn


@register("flops")
class FlopsPredictor(Predictor):
    def build(self) -> None:
        self.coef = np.zeros(2)

    @staticmethod
    def _design(encodings: Sequence[GraphEncoding]) -> np.ndarray:
        flops = np.asarray([e.total_flops for e in encodings], dtype=np.float64) / 1e9
        return np.stack([flops, np.ones_like(flops)], axis=1)

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        self.coef = np.linalg.lstsq(self._design(train), np.asarray(train_y, np.float64), rcond=None)[0]
        history = FitHistory(epochs=1, best_epoch=1)
        if len(val):
            pred = self.raw_predict(val)
            history.val_errors.append(float(np.mean(np.abs(pred - val_y) / val_y)))
        if progress is not None:
            progress(1, 1, history.val_errors[-1] if history.val_errors else float("nan"))
        return history

    def raw_predict(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        return self._design(encodings) @ self.coef

    def tensors(self) -> Dict[str, np.ndarray]:
        return {"coef": self.coef.copy()}

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        self.coef = np.asarray(tensors["coef"], dtype=np.float64)
