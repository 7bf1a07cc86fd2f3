"""Node-cost predictor: a model's latency as the sum of its nodes' costs, one output per training device.

Why this shape: a CPU runs a CNN's kernels one after another, so its latency is close to a sum over nodes. Each
node's cost is its work — FLOPs, output elements, weights and one call — priced per node kind (dense k×k, 1×1,
depthwise and grouped convs, FC, pools, element-wise, activations, data movement) with non-negative prices per
device, times an efficiency factor learned from what else costs time on a CPU (trainer.cost_features: channels per
group, arithmetic intensity, SIMD misfits, neighbours) and bounded to [e^-B, e^B]. The prices are what carries to
CNN families never seen (work extrapolates linearly); the bounded factor refines them without ever running away on
a graph unlike the training set. The prices start from the per-device non-negative least-squares fit of the summed
work (the plain additive model) and are trained with the factor; a shared factor network with one output per device
learns every device at once (HELP's idea). A new device is a mix of the heads (trainer.predictors.heads).
"""

from typing import Optional, Sequence, Tuple

import numpy as np

from trainer.cost_features import conv_kinds, node_cost_features, node_feature_count, op_index
from trainer.encoding import DEFAULT_VOCABULARY, NUMERIC_FEATURES, GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import TorchHeadsPredictor
from trainer.predictors.torch_fit import train_module

# Ops real CNN exports carry beyond the default vocabulary (hard-swish written out, channel shuffles, SE gates).
NODECOST_VOCABULARY: Tuple[str, ...] = DEFAULT_VOCABULARY + ("Div", "Sub", "Slice", "Max", "Min", "PRelu",
                                                            "LeakyRelu", "Tanh", "Squeeze", "Unsqueeze")
_OP_KINDS = {
    "gemm": ("Gemm", "MatMul"),
    "pool": ("MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean"),
    "elementwise": ("Add", "Mul", "Div", "Sub", "Max", "Min"),
    "activation": ("Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "PRelu", "LeakyRelu", "Tanh",
                   "Softmax"),
    "norm": ("BatchNormalization",),
    "movement": ("Concat", "Split", "Slice", "Reshape", "Flatten", "Transpose", "Pad", "Squeeze", "Unsqueeze"),
}
NODE_KINDS = ("conv_kxk", "conv_1x1", "conv_depthwise", "conv_grouped") + tuple(_OP_KINDS) + ("other",)
# Work units chosen so every price starts near 1 on a mid-sized CNN's reference ratio.
_WORK_SCALE = np.asarray([1e9, 1e7, 1e7, 1e3])


def node_work(encoding: GraphEncoding, vocabulary: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(kind index per node [nodes], work per node [nodes, 4]: FLOPs, output elements, params, one call)."""
    numeric = np.expm1(encoding.x[:-1, len(vocabulary) + 2:].astype(np.float64))
    ops = op_index(encoding, len(vocabulary))
    names = list(vocabulary) + ["other"]
    kind = np.full(len(ops), NODE_KINDS.index("other"))
    for index, name in enumerate(NODE_KINDS):
        members = [names.index(op) for op in _OP_KINDS.get(name, ()) if op in names]
        kind[np.isin(ops, members)] = index
    convs = conv_kinds(encoding, vocabulary)
    kind[convs.any(axis=1)] = convs.argmax(axis=1)[convs.any(axis=1)]
    column = {name: numeric[:, NUMERIC_FEATURES.index(name)] for name in ("flops", "params", "cout", "in_h",
                                                                            "in_w", "stride_h")}
    stride = np.maximum(column["stride_h"], 1.0)
    out_elements = np.maximum(column["cout"], 1.0) * np.maximum(column["in_h"] / stride, 1.0) * \
        np.maximum(column["in_w"] / stride, 1.0)
    work = np.stack([column["flops"], out_elements, column["params"], np.ones(len(ops))], axis=1) / _WORK_SCALE
    return kind, work


def summed_work(encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]) -> np.ndarray:
    """[graphs, kinds × 4] each graph's work summed per node kind: the plain additive model's design."""
    rows = []
    for encoding in encodings:
        kind, work = node_work(encoding, vocabulary)
        total = np.zeros((len(NODE_KINDS), work.shape[1]))
        np.add.at(total, kind, work)
        rows.append(total.ravel())
    return np.asarray(rows).reshape(len(encodings), len(NODE_KINDS) * 4)


def nnls_prices(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[kinds × 4, devices] non-negative prices per device minimising the relative error of the summed work."""
    from scipy.optimize import nnls

    prices = np.zeros((design.shape[1], y.shape[1]))
    for j in range(y.shape[1]):
        known = np.isfinite(y[:, j])
        if known.sum() >= 2:
            prices[:, j] = nnls(design[known] / y[known, j, None], np.ones(int(known.sum())), maxiter=5000)[0]
    return prices


class _Batch:
    """Node tensors of a set of graphs."""

    def __init__(self, encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]):
        import torch

        parts = [node_work(e, vocabulary) for e in encodings]
        features = [node_cost_features(e, vocabulary) for e in encodings]
        self.graphs = len(encodings)
        self.kind = torch.from_numpy(np.concatenate([k for k, _ in parts]).astype(np.int64))
        self.work = torch.from_numpy(np.concatenate([w for _, w in parts]).astype(np.float32))
        self.features = torch.from_numpy(np.concatenate(features))
        self.graph = torch.from_numpy(np.concatenate([np.full(len(k), i) for i, (k, _) in enumerate(parts)]))


def _net(in_dim: int, hidden: int, layers: int, heads: int, bound: float):
    import torch

    class NodeCostNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(in_dim))
            self.register_buffer("std", torch.ones(in_dim))
            self.log_price = torch.nn.Parameter(torch.zeros(len(NODE_KINDS), 4, heads))
            blocks, width = [], in_dim
            for _ in range(layers):
                blocks += [torch.nn.Linear(width, hidden), torch.nn.SiLU()]
                width = hidden
            self.efficiency = torch.nn.Sequential(*blocks, torch.nn.Linear(width, heads))
            torch.nn.init.zeros_(self.efficiency[-1].weight)
            torch.nn.init.zeros_(self.efficiency[-1].bias)

        def node_costs(self, batch: "_Batch"):
            """[nodes, heads] each node's cost as a share of the device's reference latency."""
            base = torch.einsum("nj,njh->nh", batch.work, torch.exp(self.log_price[batch.kind]))
            factor = torch.exp(bound * torch.tanh(self.efficiency((batch.features - self.mean) / self.std)))
            return base * factor

        def forward(self, batch: "_Batch"):
            """[graphs, heads] log of the summed node costs."""
            costs = self.node_costs(batch)
            total = torch.zeros(batch.graphs, costs.shape[1], dtype=costs.dtype).index_add_(0, batch.graph, costs)
            return torch.log(torch.clamp(total, min=1e-12))

    return NodeCostNet()


@register("nodecost")
class NodeCostPredictor(TorchHeadsPredictor):
    defaults = {"layers": 2, "hidden": 32, "bound": 0.7, "lr": 3e-3, "weight_decay": 1e-3, "epochs": 600,
                "patience": 100, "batch_size": 1 << 20}

    def __init__(self, hyper=None, vocabulary: Sequence[str] = NODECOST_VOCABULARY):
        super().__init__(hyper, vocabulary=vocabulary)

    def build(self) -> None:
        self.net = _net(node_feature_count(self.vocabulary), int(self.hyper["hidden"]), int(self.hyper["layers"]),
                        self.n_heads, float(self.hyper["bound"]))
        self.net.eval()

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        import torch

        torch.manual_seed(seed)
        self.build()  # seeded initial weights: the same fit for the same seed
        batch = _Batch(train, self.vocabulary)
        check = _Batch(val, self.vocabulary) if len(val) else batch
        prices = nnls_prices(summed_work(train, self.vocabulary), train_y)
        with torch.no_grad():
            self.net.mean.copy_(batch.features.mean(0))
            self.net.std.copy_(torch.clamp(batch.features.std(0), min=1e-3))
            # a price the fit set to zero starts small, not at -inf, so training can still raise it
            floor = np.maximum(prices.max(axis=0, keepdims=True), 1e-6) * 1e-4
            self.net.log_price.copy_(torch.from_numpy(np.log(np.maximum(prices, floor))).reshape(
                len(NODE_KINDS), 4, self.n_heads).float())
        return train_module(self.net, lambda index: self.net(batch)[torch.as_tensor(index)], len(train), train_y,
                            lambda: self.net(check).detach().numpy(), val_y if len(val) else train_y, self.hyper,
                            seed, progress)

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.net(_Batch(encodings, self.vocabulary)).numpy().astype(np.float64)
