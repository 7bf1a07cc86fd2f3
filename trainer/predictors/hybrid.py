"""Hybrid predictor: the device's kernel lookup table inside the node-cost predictor.

Each node carries its kernel's latency on the device, from the device's own kernel profile, normalized by the LUT's
total for the device's reference model (trainer.hybrid_features); the label is the latency ratio to the reference
measured on the same device. A model's ratio is priced as nodecost prices work: non-negative prices on relative
error, here one per kernel group (a dense conv's LUT latency inside a model is not a depthwise one's), one for the
FLOPs/bytes fallback's guesses, the layout conversions, the kernel calls, a constant, and the weights that do not fit
in a cache (its size chosen by leave-one-out, as the LUT's calibration chooses it). The prices are fitted in two
steps, each pulled toward the one before by the strongest pull within 1 % of the least leave-one-out error: first the
LUT calibration's shape (one scale for every kernel, a call price, a constant, the weight term) toward the plain LUT
total's prices, then a price per column toward that. A price of its own must earn its place on the training models,
as a term of the LUT's calibration must: fitted freely to a supernet's subnets, the group prices missed CNNs three
times their input size by more than the LUT did (docs/benchmarks-hybrid.md). With `structure`, nodecost's
structural work columns (FLOPs, output elements, weights, calls per node kind) join them, priced 0 in the first step.

What it learns is how a device's whole models relate to its kernels, which carries across devices: one price list
per training device (one head), and a device it never trained on is its kernel profile and reference (0 shots: the
average price list) or, with K measured models, a non-negative mix of the price lists (as nodecost mixes) from which
the device's own prices are then fitted, pulled toward the mix.

Which device's kernels the features come from: while fitting, each head's own; afterwards the device bound by
`bind_device` (trainer evaluate/adapt/predict/search with --dataset/--device) or picked by `select_device`. The
bound device's LUT travels in the saved predictor, so an adapted hybrid predicts without the dataset.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_agent.errors import InputError
from lut.calibration import NO_TERM_TOLERANCE
from trainer.encoding import GraphEncoding
from trainer.hybrid_features import GRAPH_COLUMNS, DeviceKernels, device_kernels, graph_design
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import SHRINK_GRID, leave_one_out_errors
from trainer.predictors.lut import LUT_VOCABULARY, device_lut, lut_from_tensor, lut_tensor
from trainer.predictors.nodecost import NODECOST_VOCABULARY, NodeCostPredictor, summed_work

HYBRID_VOCABULARY = NODECOST_VOCABULARY + tuple(op for op in LUT_VOCABULARY if op not in NODECOST_VOCABULARY)
# The prices that make the hybrid the plain LUT total: every kernel, conversion and call at its LUT latency, nothing
# per model. The fit is pulled toward them, so a column few training models exercise (the fallback's kernels in a
# supernet's subnets) keeps the LUT's price instead of whatever fits those few models' noise.
LUT_PRICES = np.asarray([0.0 if column in ("constant", "weights") else 1.0 for column in GRAPH_COLUMNS])
WEIGHTS = GRAPH_COLUMNS.index("weights")
CACHE_CANDIDATES_BYTES = (None,) + tuple(mib * 2 ** 20 for mib in (1, 2, 4, 8, 16))  # None: no weight term
# Pulls toward the prior up to keeping it. The strongest pull within NO_TERM_TOLERANCE of the least leave-one-out
# error wins, as a term of the LUT's calibration must earn its place: prices that only fit the training models a
# little better (kernel groups a supernet's subnets cannot tell apart) missed networks unlike them by far more.
PULL_GRID = SHRINK_GRID + (10.0, 30.0, 100.0, 1000.0)
# The LUT calibration's shape in the hybrid's columns: one scale for every kernel column (the groups, the fallback's
# kernels, the layout conversions), then a price per call, a constant and the weight term.
FREE_COLUMNS = ("calls", "constant", "weights")


def lut_shape(n_columns: int) -> np.ndarray:
    """[n_columns, 4]: the price list made of (kernel scale, call price, constant, weight price); structural columns
    (past GRAPH_COLUMNS) priced 0."""
    tie = np.zeros((n_columns, 1 + len(FREE_COLUMNS)))
    for i, column in enumerate(GRAPH_COLUMNS):
        tie[i, 1 + FREE_COLUMNS.index(column) if column in FREE_COLUMNS else 0] = 1.0
    return tie


def prices_toward(relative: np.ndarray, target: np.ndarray, strength: float, prior: np.ndarray) -> np.ndarray:
    """argmin ||relative · p − target||² + strength · ||p − prior||² over p ≥ 0."""
    from scipy.optimize import nnls

    root = np.sqrt(strength)
    a = np.vstack([relative, root * np.eye(len(prior))])
    return nnls(a, np.concatenate([target, root * prior]), maxiter=50 * len(prior))[0]


def streamed(design: np.ndarray, cache_bytes: Optional[float], reference_total_ns: float) -> np.ndarray:
    """The design with its weights column cut to the bytes beyond the cache (none: no weight term)."""
    design = design.copy()
    design[:, WEIGHTS] = 0.0 if cache_bytes is None else np.maximum(
        design[:, WEIGHTS] - cache_bytes / reference_total_ns, 0.0)
    return design


def shrunk_prices(design: np.ndarray, y: np.ndarray, prior: np.ndarray) -> Tuple[np.ndarray, float]:
    """One device's prices on relative error, pulled toward `prior` by a strength chosen by leave-one-out, and that
    mean absolute leave-one-out relative error (infinite with fewer than 3 points, where the prior is kept). Absolute,
    as lut.calibration chooses its terms: squared, a few CNNs the training set predicts badly decided the pull, and
    each CNN of the zoo left out of a fit on the subnets and the others came within ±10 % less often (67 % against
    76 %, docs/benchmarks-hybrid.md)."""
    known = np.isfinite(y)
    if known.sum() < 3:
        return prior.copy(), float("inf")
    relative, ones = design[known] / y[known, None], np.ones(int(known.sum()))

    def fit(rows, target, strength):
        return prices_toward(rows, target, strength, prior)

    errors = leave_one_out_errors(relative, ones, fit, PULL_GRID, power=1)
    good_enough = min(errors) * (1 + NO_TERM_TOLERANCE) + 1e-12
    best = max(i for i, error in enumerate(errors) if error <= good_enough)
    return fit(relative, ones, PULL_GRID[best]), errors[best] / len(ones)


def lut_shaped(design: np.ndarray, y: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The prices of the LUT calibration's shape (lut_shape) fitted to the points, pulled toward `prior`'s."""
    tie = lut_shape(design.shape[1])
    restricted, _ = shrunk_prices(design @ tie, y, np.linalg.lstsq(tie, prior, rcond=None)[0])
    return tie @ restricted


def priced(design: np.ndarray, y: np.ndarray, prior: np.ndarray, reference_total_ns: float, shaped: bool = False
           ) -> Tuple[np.ndarray, Optional[float]]:
    """(prices, cache bytes): the weight term's cache chosen among CACHE_CANDIDATES_BYTES by leave-one-out, as
    lut.calibration chooses it, "no term" winning ties within 1 %. `shaped`: pulled toward the LUT calibration's
    shape fitted first (lut_shaped), itself pulled toward `prior`, instead of toward `prior`."""
    fits = {}
    for cache in CACHE_CANDIDATES_BYTES:
        cut = streamed(design, cache, reference_total_ns)
        fits[cache] = shrunk_prices(cut, y, lut_shaped(cut, y, prior) if shaped else prior)
    best = min(error for _, error in fits.values())
    cache = next(c for c in CACHE_CANDIDATES_BYTES if fits[c][1] <= best * 1.01 + 1e-12)
    return fits[cache][0], cache


@register("hybrid")
class HybridPredictor(NodeCostPredictor):
    defaults = {"structure": False}

    def __init__(self, hyper=None, vocabulary: Sequence[str] = HYBRID_VOCABULARY):
        super().__init__(hyper, vocabulary=vocabulary)

    def build(self) -> None:
        self.devices: List[DeviceKernels] = []  # the training devices', in head order
        self.bound: Optional[DeviceKernels] = None
        self.adapted: Optional[np.ndarray] = None  # the bound device's own prices, once adapted to its points
        self.prices = np.zeros((0, self.n_heads))
        # per head, then for the adapted prices: the weight term's cache in bytes (NaN: no weight term)
        self.caches = np.full(self.n_heads + 1, np.nan)

    def prepare(self, dataset, devices: Sequence[str]) -> None:
        self.devices = [self.device_kernels(dataset, device) for device in devices]

    def device_kernels(self, dataset, device: str) -> DeviceKernels:
        """The device's kernel LUT from the dataset and its total for the device's measured reference model."""
        from trainer.encoding_cache import EncodingCache
        from trainer.examples import encode_examples, load_examples

        references = [e for e in load_examples(dataset, [device]) if e.is_reference][:1]
        if not references:
            raise InputError("device {!r} has no measurement of the reference model, which the hybrid predictor's "
                             "features are relative to".format(device))
        cache = EncodingCache(dataset.encodings_dir, self.vocabulary)
        return device_kernels(device_lut(dataset, device), encode_examples(references, dataset, cache)[0],
                              self.vocabulary)

    def bind_device(self, dataset, device: str) -> None:
        self.bound = self.device_kernels(dataset, device)

    def select_device(self, index: int) -> None:
        super().select_device(index)
        self.bound = self.devices[index]
        self.adapted = None

    def adapt(self, encodings: Sequence[GraphEncoding], y: np.ndarray, seed: int) -> None:
        """The training devices' mix (nodecost's), then the bound device's own prices fitted to its points (K shots
        and the reference), pulled toward the mix's prices by a strength chosen by leave-one-out: a price the shots
        do not pin down stays where the training devices put it. Fewer than 3 points (0 shots: the reference alone): the
        mix, shifted so that the points' ratios come out as measured."""
        self.adapted = None  # a previous adaptation's prices must not feed the mix's calibration below
        super().adapt(encodings, y, seed)
        if len(y) >= 3:
            self.calibration = (1.0, 0.0)
            self.adapted, cache = priced(self.design(self.bound, encodings), np.asarray(y, dtype=np.float64),
                                         self.prices @ self.mix, self.bound.reference_total_ns)
            self.caches[-1] = np.nan if cache is None else cache
        else:
            self.calibrate(encodings, y)  # the level from the reference, whose ratio is 1 by definition

    def raw_predict(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        if self.adapted is None or self.bound is None:
            return super().raw_predict(encodings)
        design = streamed(self.design(self.bound, encodings), self.cache(-1), self.bound.reference_total_ns)
        return np.maximum(design @ self.adapted, 1e-12)

    def design(self, device: DeviceKernels, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """The device's features of the graphs, the weights column uncut (trainer.hybrid_features)."""
        columns = graph_design(device, encodings, self.vocabulary)
        if self.hyper["structure"]:
            columns = np.hstack([columns, summed_work(encodings, self.vocabulary)])
        return columns

    def cache(self, index: int) -> Optional[float]:
        value = float(self.caches[index])
        return None if np.isnan(value) else value

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        if len(self.devices) != self.n_heads:
            raise InputError("the hybrid predictor is built from the devices' kernel records (trainer fit --kind "
                             "hybrid --dataset ...)")
        train_y = np.asarray(train_y, dtype=np.float64).reshape(len(train), self.n_heads)
        prior = LUT_PRICES if not self.hyper["structure"] else np.concatenate(
            [LUT_PRICES, np.zeros(summed_work(train[:1], self.vocabulary).shape[1])])
        fits = [priced(self.design(device, train), train_y[:, j], prior, device.reference_total_ns, shaped=True)
                for j, device in enumerate(self.devices)]
        self.prices = np.column_stack([prices for prices, _ in fits])
        self.caches = np.asarray([np.nan if cache is None else cache for _, cache in fits] + [np.nan])
        return self.closed_form_history(val, val_y, progress)

    def head_ratios(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """[n, heads]: each head's prices on the bound device's features; unbound (while fitting), on its own."""
        if self.bound is not None:
            design = self.design(self.bound, encodings)
            ratios = np.column_stack([streamed(design, self.cache(j), self.bound.reference_total_ns)
                                      @ self.prices[:, j] for j in range(self.n_heads)])
        else:
            ratios = np.column_stack([streamed(self.design(device, encodings), self.cache(j),
                                               device.reference_total_ns) @ self.prices[:, j]
                                      for j, device in enumerate(self.devices)])
        return np.maximum(ratios.reshape(len(encodings), self.n_heads), 1e-12)

    def tensors(self) -> Dict[str, np.ndarray]:
        tensors = dict(super().tensors(), reference_total_ns=np.asarray([d.reference_total_ns for d in self.devices]),
                       cache_bytes=self.caches.copy())
        tensors.update({"lut_json_{}".format(j): lut_tensor(d.table) for j, d in enumerate(self.devices)})
        if self.adapted is not None:
            tensors.update(adapted_prices=self.adapted.copy())
        if self.bound is not None:
            tensors.update(bound_lut_json=lut_tensor(self.bound.table),
                           bound_reference_total_ns=np.asarray([self.bound.reference_total_ns]))
        return tensors

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        tensors = dict(tensors)
        totals = np.asarray(tensors.pop("reference_total_ns"), dtype=np.float64)
        self.caches = np.asarray(tensors.pop("cache_bytes"), dtype=np.float64)
        self.devices = [DeviceKernels(lut_from_tensor(tensors.pop("lut_json_{}".format(j)), "a training device's "
                                                      "LUT"), float(total)) for j, total in enumerate(totals)]
        if "bound_lut_json" in tensors:
            self.bound = DeviceKernels(lut_from_tensor(tensors.pop("bound_lut_json"), "the bound device's LUT"),
                                       float(tensors.pop("bound_reference_total_ns")[0]))
        if "adapted_prices" in tensors:
            self.adapted = np.asarray(tensors.pop("adapted_prices"), dtype=np.float64)
        self.load_mix(tensors)
        self.prices = np.asarray(tensors["prices"], dtype=np.float64).reshape(-1, self.n_heads)
