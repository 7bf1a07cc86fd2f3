"""Node-cost predictor: a model's latency as the sum of its nodes' costs, one output per training device.

Why this shape: a CPU runs a CNN's kernels one after another, so its latency is close to a sum over nodes. Each
node's cost is its work (FLOPs, output elements, weights, one call) priced per node kind: dense k×k, 1×1, depthwise
and grouped convs, FC, pools, element-wise, activations, data movement, and point-wise nodes that run inside the
kernel before them (trainer.cost_features.fused_pointwise). Prices are non-negative and fitted per device on relative
error. Work extrapolates linearly and a non-negative price cannot run away on a graph unlike the training set, which
is what carries to CNN families never seen; signed weights (the `additive` kind) do run away.
A device has ~56 prices and often fewer than 100 models, so two things keep a price list from fitting its own
training models' quirks (fit_prices): a Huber loss (a model the node kinds cannot explain, say one kind a runtime runs
pathologically slowly, is not allowed to bend every price), and a pull toward the prices of its kin — the training
devices whose labels are closest to its own (same runtime and precision, as a rule), found from the labels alone.
A learned per-node efficiency factor on top was tried and lowered the unseen-family scores (docs/benchmarks-qed.md).
Every device is one head; a new device is a mix of the heads (trainer.predictors.heads).
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from edge_agent.errors import InputError
from trainer.cost_features import CONV_KINDS, conv_kinds, fused_pointwise, numeric_features, op_index
from trainer.encoding import DEFAULT_VOCABULARY, NUMERIC_FEATURES, GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import HeadsPredictor, choose_strength

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
# "fused": point-wise nodes that run inside the kernel that made their tensor (trainer.cost_features.fused_pointwise)
NODE_KINDS = CONV_KINDS + tuple(_OP_KINDS) + ("other", "fused")
WORK_COLUMNS = ("flops", "output_elements", "params", "calls", "bytes_moved")
# Work units that keep the prices of one device within a few orders of magnitude (the fit's conditioning).
_WORK_SCALE = np.asarray([1e9, 1e7, 1e7, 1e3, 4e7])
# Conv FLOPs priced across conv kinds (each kind's own FLOPs price is its excess): all of them, so a kind no training
# model has still costs its arithmetic, and those on output maps of at most SMALL_MAP_PIXELS (7×7, the last stage of
# a 224×224 CNN) from a larger input, where a CPU's GEMM tiles and threads run short of pixels.
SHARED_COLUMNS = ("conv_flops", "small_map_conv_flops")
SMALL_MAP_PIXELS = 49
DESIGN_WIDTH = len(NODE_KINDS) * len(WORK_COLUMNS) + len(SHARED_COLUMNS)


def node_work(encoding: GraphEncoding, vocabulary: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(kind index per node [nodes], work per node [nodes, WORK_COLUMNS]: FLOPs, output elements, params, one call,
    bytes moved)."""
    numeric = numeric_features(encoding, len(vocabulary))
    ops = op_index(encoding, len(vocabulary))
    names = list(vocabulary) + ["other"]
    kind = np.full(len(ops), NODE_KINDS.index("other"))
    for index, name in enumerate(NODE_KINDS):
        members = [names.index(op) for op in _OP_KINDS.get(name, ()) if op in names]
        kind[np.isin(ops, members)] = index
    convs = conv_kinds(encoding, vocabulary)
    kind[convs.any(axis=1)] = convs.argmax(axis=1)[convs.any(axis=1)]
    kind[fused_pointwise(encoding, vocabulary)] = NODE_KINDS.index("fused")
    column = {name: numeric[:, NUMERIC_FEATURES.index(name)] for name in ("flops", "params", "bytes_moved")}
    work = np.stack([column["flops"], output_elements(numeric), column["params"], np.ones(len(ops)),
                     column["bytes_moved"]], axis=1) / _WORK_SCALE
    return kind, work


def output_elements(numeric: np.ndarray) -> np.ndarray:
    return np.maximum(numeric[:, NUMERIC_FEATURES.index("cout")], 1.0) * output_pixels(numeric)


def output_pixels(numeric: np.ndarray) -> np.ndarray:
    stride = np.maximum(numeric[:, NUMERIC_FEATURES.index("stride_h")], 1.0)
    return np.maximum(numeric[:, NUMERIC_FEATURES.index("in_h")] / stride, 1.0) * \
        np.maximum(numeric[:, NUMERIC_FEATURES.index("in_w")] / stride, 1.0)


def summed_work(encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]) -> np.ndarray:
    """[graphs, DESIGN_WIDTH] each graph's work summed per node kind, then the SHARED_COLUMNS: the design the prices
    multiply."""
    rows = []
    for encoding in encodings:
        kind, work = node_work(encoding, vocabulary)
        total = np.zeros((len(NODE_KINDS), work.shape[1]))
        np.add.at(total, kind, work)
        numeric = numeric_features(encoding, len(vocabulary))
        conv = kind < len(CONV_KINDS)
        # + 0.5: the encoding stores sizes as log1p, so a 7×7 map reads back as 49.00001
        small = conv & (output_pixels(numeric) < SMALL_MAP_PIXELS + 0.5) & \
            (numeric[:, NUMERIC_FEATURES.index("in_h")] > 1.5)
        rows.append(np.concatenate([total.ravel(), [work[conv, 0].sum(), work[small, 0].sum()]]))
    return np.asarray(rows).reshape(len(encodings), DESIGN_WIDTH)


def robust_prices(relative: np.ndarray, delta: float, pull: float = 0.0, center: Optional[np.ndarray] = None,
                  iterations: int = 5) -> np.ndarray:
    """Non-negative prices p minimising Σ huber_delta(relative · p − 1) + pull · n · ||s ⊙ (p − center)||², by
    iteratively reweighted non-negative least squares. relative: [n, DESIGN_WIDTH] each model's work over its measured
    ratio; s: each work column's mean there, so a price's pull is weighed by its typical share of a latency."""
    from scipy.optimize import nnls

    n, columns = relative.shape
    root = np.sqrt(pull * n)
    scale = relative.mean(axis=0)
    weight = np.ones(n)
    for _ in range(iterations):
        a, b = relative * weight[:, None], weight
        if pull > 0:
            a = np.vstack([a, root * np.diag(scale)])
            b = np.concatenate([b, root * scale * center])
        prices = nnls(a, b, maxiter=100 * columns)[0]
        residual = np.abs(relative @ prices - 1.0)
        weight = np.sqrt(np.minimum(1.0, delta / np.maximum(residual, 1e-12)))
    return prices


def kin_weights(y: np.ndarray, width: float) -> np.ndarray:
    """[devices, devices] row-normalised exp(−d / width), d: the RMS log difference of two devices' labels over the
    models both measured (a device is its own nearest kin; devices with fewer than 2 labels weigh nothing)."""
    log_y = np.log(y)
    distance = np.full((y.shape[1], y.shape[1]), np.inf)
    for j in range(y.shape[1]):
        both = np.isfinite(log_y) & np.isfinite(log_y[:, [j]])
        counts = both.sum(axis=0)
        squared = np.where(both, log_y - log_y[:, [j]], 0.0) ** 2
        distance[j, counts >= 2] = np.sqrt(squared.sum(axis=0)[counts >= 2] / counts[counts >= 2])
    weights = np.exp(-distance / width)
    return weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-300)


def fit_prices(design: np.ndarray, y: np.ndarray, delta: float, pull: float, width: float) -> np.ndarray:
    """[DESIGN_WIDTH, devices] each device's robust prices (robust_prices), then refitted with a pull toward its kin's
    average prices (kin_weights); a device with fewer than 2 labels keeps zero prices."""
    known = np.isfinite(y)
    fitted = [j for j in range(y.shape[1]) if known[:, j].sum() >= 2]
    relative = {j: design[known[:, j]] / y[known[:, j], j, None] for j in fitted}
    prices = np.zeros((design.shape[1], y.shape[1]))
    for j in fitted:
        prices[:, j] = robust_prices(relative[j], delta)
    if pull <= 0 or len(fitted) < 2:
        return prices
    centers = prices[:, fitted] @ kin_weights(y[:, fitted], width).T
    for position, j in enumerate(fitted):
        prices[:, j] = robust_prices(relative[j], delta, pull, centers[:, position])
    return prices


def linear_mix(relative: np.ndarray, target: np.ndarray, strength: float) -> np.ndarray:
    """argmin ||relative · w − target||² + strength · ||w − mean||² over w ≥ 0 (relative: the heads' predictions of
    each point over its measurement, so target is all ones; mean: equal weights summing to 1)."""
    from scipy.optimize import nnls

    n_heads = relative.shape[1]
    root = np.sqrt(strength)
    a = np.vstack([relative, root * np.eye(n_heads)])
    b = np.concatenate([target, np.full(n_heads, root / n_heads)])
    return nnls(a, b, maxiter=50 * n_heads)[0]


@register("nodecost")
class NodeCostPredictor(HeadsPredictor):
    closed_form = True
    # The mix is linear in the heads' ratios: shots that pin down its predictions over all candidates (V-optimal)
    # beat D-optimal ones on the phone tables' unseen phones (docs/benchmarks-qed.md#unseen-devices).
    shot_criterion = "variance"
    # Chosen on the phone tables' unseen-family benchmark (docs/benchmarks-qed.md): huber_delta is a relative error.
    defaults = {"huber_delta": 0.1, "pull": 0.1, "kin_width": 0.05}

    def __init__(self, hyper=None, vocabulary: Sequence[str] = NODECOST_VOCABULARY):
        if "Conv" not in vocabulary:
            raise InputError("nodecost prices ONNX graphs' nodes: a cell-level encoding (--cell-space) works with "
                             "gcn, mlp or flops")
        super().__init__(hyper, vocabulary=vocabulary)

    def build(self) -> None:
        self.prices = np.zeros((DESIGN_WIDTH, self.n_heads))

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        self.prices = fit_prices(summed_work(train, self.vocabulary), train_y, float(self.hyper["huber_delta"]),
                                 float(self.hyper["pull"]), float(self.hyper["kin_width"]))
        return self.closed_form_history(val, val_y, progress)

    def head_ratios(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """[n, heads] each training device's priced work: its predicted ratio."""
        return np.maximum(summed_work(encodings, self.vocabulary) @ self.prices, 1e-12)

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        return np.log(self.head_ratios(encodings))

    def shot_rows(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """[n, heads] each head's ratio over the heads' mean for the item: the linear mix's regressors, as `adapt`
        fits them (over the measured ratio), on a common scale."""
        ratios = self.head_ratios(encodings)
        return ratios / ratios.mean(axis=1, keepdims=True)

    def raw_predict(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """The mix is linear: a device's price list as a non-negative mix of the training devices' lists."""
        return self.head_ratios(encodings) @ self.mix

    def adapt(self, encodings: Sequence[GraphEncoding], y: np.ndarray, seed: int) -> None:
        """Fit the linear mix to the new device's points (K samples and the reference) on relative error, pulled
        toward the average by a strength chosen by leave-one-out; fewer than 3 points: the average."""
        self.calibration = (1.0, 0.0)
        self.mix = np.full(self.n_heads, 1.0 / self.n_heads)
        if self.n_heads == 1:
            self.calibrate(encodings, y)
            return
        if len(y) < 3:
            return
        relative = self.head_ratios(encodings) / np.asarray(y, dtype=np.float64)[:, None]
        ones = np.ones(len(relative))
        self.mix = linear_mix(relative, ones, choose_strength(relative, ones, linear_mix))

    def tensors(self) -> Dict[str, np.ndarray]:
        return dict({"prices": self.prices.copy()}, **self.mix_tensors())

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        tensors = dict(tensors)
        self.load_mix(tensors)
        prices = np.asarray(tensors["prices"], dtype=np.float64)
        if prices.size != DESIGN_WIDTH * self.n_heads:
            raise InputError("nodecost prices for {} work columns per device, this trainer prices {} (its design "
                             "changed on 2026-12-05); refit the predictor".format(prices.size // self.n_heads,
                                                                                  DESIGN_WIDTH))
        self.prices = prices.reshape(DESIGN_WIDTH, self.n_heads)
