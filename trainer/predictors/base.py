"""What every predictor kind provides. Predictors of target "ratio" predict latency / the device's reference
latency; the caller multiplies by the target device's reference latency."""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from trainer.encoding import DEFAULT_VOCABULARY, GraphEncoding

ProgressFn = Callable[[int, int, float], None]  # (epoch, max epochs, validation error)


@dataclass
class FitHistory:
    epochs: int = 0
    best_epoch: int = 0
    val_errors: List[float] = field(default_factory=list)  # mean |p - t| / t on the validation split, per epoch


class Predictor:
    kind = ""
    target = "ratio"
    defaults: Dict[str, object] = {}
    # Fitted in closed form, in about a second: its prediction intervals are cross-fitted (trainer.intervals).
    closed_form = False

    def __init__(self, hyper: Optional[Dict[str, object]] = None, vocabulary: Sequence[str] = DEFAULT_VOCABULARY):
        self.hyper = dict(self.defaults, **(hyper or {}))
        self.vocabulary = tuple(vocabulary)
        # Few-shot calibration on a new device: log r' = a * log r + b (identity until `calibrate`).
        self.calibration = (1.0, 0.0)
        self.build()

    def build(self) -> None:
        """Create the kind's model from self.hyper and self.vocabulary (kinds with weights override this)."""

    def prepare(self, dataset, devices: Sequence[str]) -> None:
        """Called by `trainer fit` before `fit` with the dataset and training devices: kinds that learn from more
        than whole-model examples (kernel records, for a lookup table) read them here."""

    def bind_device(self, dataset, device: str) -> None:
        """Called before predicting for `device` where its dataset is at hand (evaluate, adapt, predict and search
        with --dataset/--device): kinds whose features come from the device's own records (hybrid: its kernel
        LUT) read them here."""

    def fit(self, train: Sequence[GraphEncoding], train_y: np.ndarray, val: Sequence[GraphEncoding],
            val_y: np.ndarray, seed: int, progress: Optional[ProgressFn] = None) -> FitHistory:
        raise NotImplementedError

    def raw_predict(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        raise NotImplementedError

    def tensors(self) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def predict(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        raw = np.maximum(self.raw_predict(encodings), 1e-9)
        a, b = self.calibration
        return np.exp(a * np.log(raw) + b)

    def adapt(self, encodings: Sequence[GraphEncoding], y: np.ndarray, seed: int) -> None:
        """Few-shot adaptation to a new device; kinds with weights may fine-tune first (override), then calibrate."""
        self.calibrate(encodings, y)

    def calibrate(self, encodings: Sequence[GraphEncoding], y: np.ndarray) -> None:
        """Fit the log-space affine map on K samples: a shift always; a slope too from 5 samples on, bounded so a
        handful of noisy points cannot flip or flatten the ranking."""
        self.calibration = (1.0, 0.0)
        if len(y) == 0:
            return
        p = np.log(np.maximum(self.raw_predict(encodings), 1e-9))
        t = np.log(np.asarray(y, dtype=np.float64))
        a = 1.0
        if len(y) >= 5 and np.var(p) > 1e-12:
            a = float(np.clip(np.cov(p, t, bias=True)[0, 1] / np.var(p), 0.5, 2.0))
        self.calibration = (a, float(np.mean(t - a * p)))
