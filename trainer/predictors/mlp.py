"""MLP over static features and features aggregated over the graph's nodes (op counts, FLOPs and bytes per op
type, mean of the numeric features) — the research's MLP variant."""

from typing import Optional, Sequence

import numpy as np

from trainer.encoding import NUMERIC_FEATURES, STATIC_FEATURES, GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import TorchHeadsPredictor
from trainer.predictors.torch_fit import initial_bias, train_module

_FLOPS = NUMERIC_FEATURES.index("flops")
_BYTES = NUMERIC_FEATURES.index("bytes_moved")


def aggregate(encoding: GraphEncoding, vocabulary_size: int) -> np.ndarray:
    """Fixed-length vector of one graph (the global node, last, is left out)."""
    nodes = encoding.x[:-1]
    types = nodes[:, :vocabulary_size + 1]
    numeric = nodes[:, vocabulary_size + 2:]
    flops = np.expm1(numeric[:, _FLOPS:_FLOPS + 1])
    moved = np.expm1(numeric[:, _BYTES:_BYTES + 1])
    mean = numeric.mean(0) if len(nodes) else np.zeros(numeric.shape[1], np.float32)
    return np.concatenate([encoding.static, np.log1p(types.sum(0)), np.log1p((types * flops).sum(0)),
                           np.log1p((types * moved).sum(0)), mean]).astype(np.float32)


def _net(in_dim: int, hidden: int, layers: int, dropout: float, heads: int):
    import torch

    class MLPNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(in_dim))
            self.register_buffer("std", torch.ones(in_dim))
            blocks, width = [], in_dim
            for _ in range(layers):
                blocks += [torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
                width = hidden
            self.body = torch.nn.Sequential(*blocks, torch.nn.Linear(width, heads))

        def forward(self, features):
            return self.body((features - self.mean) / self.std)

    return MLPNet()


@register("mlp")
class MLPPredictor(TorchHeadsPredictor):
    defaults = {"layers": 3, "hidden": 256, "dropout": 0.05, "lr": 1e-3, "weight_decay": 1e-4, "epochs": 400,
                "patience": 40, "batch_size": 64}

    def build(self) -> None:
        width = len(STATIC_FEATURES) + 3 * (len(self.vocabulary) + 1) + len(NUMERIC_FEATURES)
        self.net = _net(width, int(self.hyper["hidden"]), int(self.hyper["layers"]), float(self.hyper["dropout"]),
                        self.n_heads)
        self.net.eval()

    def features(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        return np.stack([aggregate(e, len(self.vocabulary)) for e in encodings])

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        import torch

        torch.manual_seed(seed)
        self.build()  # seeded initial weights: the same fit for the same seed
        x = torch.from_numpy(self.features(train))
        with torch.no_grad():
            self.net.mean.copy_(x.mean(0))
            self.net.std.copy_(torch.clamp(x.std(0), min=1e-3))
            self.net.body[-1].bias.copy_(torch.from_numpy(initial_bias(train_y)))
        check = torch.from_numpy(self.features(val if len(val) else train))
        return train_module(self.net, lambda index: self.net(x[index]), len(train), train_y,
                            lambda: self.net(check).numpy(), val_y if len(val) else train_y, self.hyper, seed,
                            progress)

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        import torch

        self.net.eval()
        with torch.no_grad():
            return self.net(torch.from_numpy(self.features(encodings))).numpy()
