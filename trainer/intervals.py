"""An interval on every prediction: split-conformal on log-ratio residuals of items the predictor did not train on.

A residual is |log p - log t| of an item held out from the model that predicted it, per training device. At coverage
c, the interval is p · e^(∓q) with q the ⌈(n + 1) c⌉-th smallest of the n residuals: if the held-out items and a new
one are exchangeable, the new one's truth lies inside with probability at least c. Residuals are taken in log space
because latency errors are multiplicative: a 10 % miss on a 1 ms net and on a 100 ms net is the same miss.

Where the residuals come from (`interval_record`, when `trainer fit` writes a predictor):
- kinds that fit in about a second (`closed_form`, or any kind with `epochs` 0) are cross-fitted: FOLDS refits, each
  on the other folds' training items, predict the items they left out; the validation items add the fitted model's
  own residuals. So every item the predictor used gives one residual, not only the ~10 % held out for validation;
- the other kinds (gcn, mlp) would need FOLDS more trainings, so only the validation items
  give residuals; when they are too few for the coverage (fewer than 9 at 90 %) the interval is unbounded, not made up.

Which residuals bound a prediction (`interval_for`): a training device's own; all training devices' pooled when the
device has too few for the coverage, and for a new device with only its reference measured (0 shots: the new
device's transfer error comes on top, so this under-covers; docs/benchmarks-trainer.md#intervals measures it); on a
device the predictor was adapted to, the pooled source residuals widened to the adaptation's own cross-validated
residuals on its K shots (`adapted_interval`).

Models unlike those the predictor was fitted on (trainer.domain: most of their FLOPs in layers outside the range of
the training models' layers) are bounded by the residuals of held-out models that were unlike the rest alone
(group-conditional, "Mondrian", conformal): each cross-fit fold flags its held-out items against the domain of its
own training items, and the record keeps those residuals apart ("novel_residuals") with the full training set's
domain ("domain"). With too few of them for the coverage, a novel model's interval is unbounded: nothing measured
says how far off it may be. The residuals of a supernet's subnets at 32×32 bounded 18–35 % of CNNs at 96×96 at a
nominal 90 % (docs/benchmarks-hybrid.md)."""

import copy
import math
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from edge_agent.errors import InputError
from trainer.domain import Domain
from trainer.encoding import GraphEncoding
from trainer.predictors.base import Predictor
from trainer.predictors.heads import HeadsPredictor

DEFAULT_COVERAGE = 0.9
FOLDS = 5
# Below this many training items of a device, a fold's refit has too few of its items to stand for the fitted model.
MIN_CROSS_FIT_ITEMS = 2 * FOLDS
CROSS_FIT = "cross-fit"
VALIDATION = "validation"


@dataclass(frozen=True)
class Interval:
    """prediction · e^(∓half_width) holds the truth with probability `coverage`; an infinite half-width is an
    unbounded interval (too few held-out residuals for the coverage). `basis` says whose residuals: "device" (the
    training device's own), "pooled" (every training device's), "adapted" (the source devices' widened by the
    adaptation's own on its shots)."""

    coverage: float
    half_width: float
    residuals: int
    basis: str
    # the half-width of predictions of models outside `domain` (trainer.domain); None: a predictor fitted before
    # domains were recorded, every prediction has `half_width`
    novel_half_width: Optional[float] = None
    domain: Optional[Domain] = None

    def novel(self, encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]) -> Optional[np.ndarray]:
        """Per model, whether it lies outside the training models' domain (None: no domain recorded)."""
        return None if self.domain is None else self.domain.novel(encodings, vocabulary)

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.half_width)

    @property
    def relative_width(self) -> float:
        """(high - low) / prediction: the same for every prediction, since the interval is multiplicative."""
        return math.exp(self.half_width) - math.exp(-self.half_width) if self.bounded else math.inf

    def half_widths(self, count: int, novel: Optional[np.ndarray] = None) -> np.ndarray:
        """Each of `count` predictions' half-width in log space; `novel`: their flags (Interval.novel)."""
        widths = np.full(count, self.half_width)
        if novel is not None and self.novel_half_width is not None:
            widths[np.asarray(novel, dtype=bool)] = self.novel_half_width
        return widths

    def bounds(self, predicted: np.ndarray, novel: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(low, high) of each prediction: (0, inf) where unbounded."""
        predicted = np.asarray(predicted, dtype=np.float64)
        widths = self.half_widths(len(predicted.reshape(-1)), novel).reshape(predicted.shape)
        with np.errstate(over="ignore"):
            return predicted * np.exp(-widths), predicted * np.exp(widths)


def check_coverage(coverage: float) -> float:
    if not 0.0 < coverage < 1.0:
        raise InputError("the interval's coverage must lie strictly between 0 and 1, not {:g}".format(coverage))
    return coverage


def conformal_quantile(residuals: Sequence[float], coverage: float) -> float:
    """The ⌈(n + 1) · coverage⌉-th smallest residual; inf when that rank exceeds n (too few residuals)."""
    rank = math.ceil((len(residuals) + 1) * coverage - 1e-9)  # 10 · 0.9 must be rank 9, not 10
    return float(sorted(residuals)[rank - 1]) if 1 <= rank <= len(residuals) else math.inf


def conformal_interval(residuals: Sequence[float], coverage: float, basis: str) -> Interval:
    return Interval(coverage, conformal_quantile(residuals, coverage), len(residuals), basis)


def refits_quickly(predictor: Predictor) -> bool:
    """Fitted in about a second, so cross-fitting its intervals costs FOLDS seconds, not FOLDS trainings."""
    return bool(getattr(predictor, "closed_form", False)) or predictor.hyper.get("epochs") == 0


def predicted_ratios(model: Predictor, encodings: Sequence[GraphEncoding], reference_ms: Sequence[float]
                     ) -> np.ndarray:
    """[items, devices] ratios each training device's own head predicts (one column for a one-device kind; an
    absolute kind's milliseconds divided by the device's reference latency)."""
    if not len(encodings):
        return np.zeros((0, len(reference_ms)))
    if isinstance(model, HeadsPredictor):
        return np.exp(model.log_heads(encodings).astype(np.float64))
    predicted = np.asarray(model.predict(encodings), dtype=np.float64)
    if model.target != "ratio":
        predicted = predicted / reference_ms[0]
    return predicted.reshape(-1, 1)


def cross_fit(template: Predictor, train: Sequence[GraphEncoding], train_y: np.ndarray,
              reference_ms: Sequence[float], seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """([items, devices] each training item's ratios predicted by a copy of the unfitted `template` fitted on the
    other folds' items (seeded random folds of equal size), [items] whether the item lies outside the domain of
    those other items)."""
    folds = np.random.default_rng(seed).permutation(len(train)) % FOLDS
    multi = getattr(template, "multi_device", False)
    predicted, novel = np.full(train_y.shape, np.nan), np.zeros(len(train), dtype=bool)
    for fold in range(FOLDS):
        held, kept = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
        model = copy.deepcopy(template)
        y = train_y[kept] if multi else train_y[kept, 0]
        model.fit([train[i] for i in kept], y, [], y[:0], seed)
        predicted[held] = predicted_ratios(model, [train[i] for i in held], reference_ms)
        novel[held] = Domain.of([train[i] for i in kept], template.vocabulary).novel([train[i] for i in held],
                                                                                   template.vocabulary)
    return predicted, novel


def log_residuals(predicted: np.ndarray, measured: np.ndarray, among: Optional[np.ndarray] = None
                  ) -> List[np.ndarray]:
    """Per device column, |log p - log t| over the items it measured (and `among` [items, devices] selects)."""
    out = []
    for column in range(measured.shape[1]):
        known = np.isfinite(measured[:, column]) & np.isfinite(predicted[:, column])
        if among is not None:
            known &= among[:, column]
        out.append(np.abs(np.log(np.maximum(predicted[known, column], 1e-12)) - np.log(measured[known, column])))
    return out


def interval_record(fitted: Predictor, template: Optional[Predictor], train: Sequence[GraphEncoding],
                    train_y: np.ndarray, val: Sequence[GraphEncoding], val_y: np.ndarray, devices: Sequence[str],
                    reference_ms: Mapping[str, float], seed: int) -> Dict[str, Any]:
    """The predictor config's "intervals" entry: each training device's sorted held-out residuals, from the
    validation items (predicted by `fitted`) and, given the unfitted `template`, the training items cross-fitted.
    y: [items, devices] ratios, NaN where a device did not measure the item."""
    references = [float(reference_ms.get(device, 1.0)) for device in devices]
    domain = Domain.of(train, fitted.vocabulary)
    parts = [(predicted_ratios(fitted, val, references), val_y, domain.novel(val, fitted.vocabulary))]
    if template is not None:
        predicted, novel = cross_fit(template, train, train_y, references, seed)
        parts.append((predicted, train_y, novel))
    record = {"method": CROSS_FIT if template is not None else VALIDATION,
              "folds": FOLDS if template is not None else 0, "domain": domain.to_dict()}
    for key, novel in (("residuals", False), ("novel_residuals", True)):
        chosen = [log_residuals(p, y, np.repeat((flags == novel)[:, None], len(devices), axis=1))
                  for p, y, flags in parts]
        record[key] = {device: sorted(np.concatenate(columns).tolist())
                       for device, columns in zip(devices, zip(*chosen))}
    return record


def should_cross_fit(predictor: Predictor, train_y: np.ndarray) -> bool:
    """Quick kinds whose every device has enough training items for FOLDS refits."""
    counts = np.isfinite(train_y).sum(axis=0) if train_y.size else np.zeros(1)
    return refits_quickly(predictor) and bool(np.all(counts >= MIN_CROSS_FIT_ITEMS))


def pooled_residuals(record: Mapping[str, Any], key: str = "residuals") -> List[float]:
    return sorted(r for residuals in record[key].values() for r in residuals)


def with_domain(interval: Interval, record: Mapping[str, Any], device: Optional[str], coverage: float) -> Interval:
    """The interval with the record's training domain and the half-width of models outside it: the device's own
    novel residuals', all devices' pooled when too few; infinite (unbounded) when the fit held out too few novel
    models. A record from before domains were recorded leaves the interval as it is."""
    if "domain" not in record:
        return interval
    novel = record["novel_residuals"]
    width = conformal_quantile(novel[device], coverage) if device in novel else math.inf
    if not math.isfinite(width):
        width = conformal_quantile(pooled_residuals(record, "novel_residuals"), coverage)
    return replace(interval, novel_half_width=width, domain=Domain.from_dict(record["domain"]))


def adapted_interval(record: Mapping[str, Any], shot_residuals: Sequence[float], coverage: float) -> Interval:
    """A device adapted on K shots: the pooled source residuals' interval, widened to the shots' own cross-validated
    residuals' (they carry the transfer error the source ones cannot). With too few shots for the coverage, their
    largest residual still widens it, so that a higher coverage is never the narrower interval; without a bounded
    source interval, the shots' own conformal one."""
    source = with_domain(conformal_interval(pooled_residuals(record), coverage, "pooled"), record, None, coverage)
    if not len(shot_residuals):
        return source
    width = conformal_quantile(shot_residuals, coverage)
    shots = width if math.isfinite(width) else max(shot_residuals)
    novel = source.novel_half_width
    return Interval(coverage, max(source.half_width, shots) if source.bounded else width,
                    source.residuals + len(shot_residuals), "adapted", None if novel is None else max(novel, shots),
                    source.domain)


def interval_for(config: Mapping[str, Any], device: Optional[str], coverage: float = DEFAULT_COVERAGE
                 ) -> Optional[Interval]:
    """The interval of predictions for `device` as `trainer.api.load_predictor` makes them (None: the predictor
    records no residuals, e.g. one fitted before intervals existed). A training device (or the only one, with no
    device named) uses its own residuals, pooled when too few; an adapted predictor's device the adapted rule; any
    other device is new, with 0 shots: pooled."""
    record = config.get("intervals")
    if not record:
        return None
    check_coverage(coverage)
    own = record["residuals"]
    adapted = record.get("adapted")
    if device is None and adapted is None and len(own) == 1:
        device = next(iter(own))
    if device in own:
        interval = conformal_interval(own[device], coverage, "device")
        if not interval.bounded:
            interval = conformal_interval(pooled_residuals(record), coverage, "pooled")
        return with_domain(interval, record, device, coverage)
    if adapted is not None and device in (None, adapted["device"]):
        return adapted_interval(record, adapted["residuals"], coverage)
    return new_device_interval(config, coverage)


def new_device_interval(config: Mapping[str, Any], coverage: float = DEFAULT_COVERAGE) -> Optional[Interval]:
    """A device the predictor neither trained nor was adapted on, with only its reference measured: every training
    device's residuals pooled (what `trainer calibration-set` shows; a lower bound on the new device's error)."""
    record = config.get("intervals")
    if not record:
        return None
    return with_domain(conformal_interval(pooled_residuals(record), check_coverage(coverage), "pooled"), record,
                       None, coverage)


def with_adaptation(record: Optional[Mapping[str, Any]], device: str, shot_residuals: Sequence[float]
                    ) -> Optional[Dict[str, Any]]:
    """The source's "intervals" entry plus the adapted device's cross-validated shot residuals."""
    if not record:
        return None
    return dict(record, adapted={"device": device, "residuals": sorted(float(r) for r in shot_residuals)})


def coverage_report(interval: Interval, measured: np.ndarray, predicted: np.ndarray,
                    novel: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """Nominal and empirical coverage (share of items inside their interval) and the mean relative width over the
    bounded ones, for `trainer evaluate`; None for what unbounded intervals make meaningless. `novel`: the
    predictor's flags of the items (their interval is the novel one)."""
    low, high = interval.bounds(predicted, novel)
    inside = (measured >= low) & (measured <= high)
    widths = interval.half_widths(len(predicted), novel)
    bounded = np.isfinite(widths)
    flagged = int(np.sum(novel)) if novel is not None and interval.novel_half_width is not None else 0
    return {"coverage": interval.coverage, "empirical_coverage": float(np.mean(inside)) if len(inside) else None,
            "mean_relative_width": float(np.mean(2 * np.sinh(widths[bounded]))) if bounded.any() else None,
            "half_width_log": interval.half_width if interval.bounded else None,
            "residuals": interval.residuals, "basis": interval.basis, "novel_items": flagged,
            "novel_half_width_log": interval.novel_half_width if flagged else None,
            "unbounded_items": int(np.sum(~bounded))}
