"""From a sum of standalone kernel latencies to a whole model's latency, fitted to whole-model measurements.

    model_ns = kernel_scale * (sum(kernels) + layout) + per_kernel_ns * kernels + model_overhead_ns
               + weight_ns_per_byte * (the model's weight bytes beyond weight_cache_bytes)

or, where one scale per group of kernels earned its place, sum(group_scales[g] * the kernels of group g) in place of
the first term (SCALE_GROUPS: dense 1x1 and kxk convs, grouped convs, depthwise convs, layout conversions, the rest).

Kernels back to back inside a model cost more (or less) than alone. Layout conversions are counted and costed from
the device's own measurements, and only scaled here as kernels are: `layout` is what the model's conversions cost
minus what its kernels paid for theirs when each was measured alone (edge_agent.fusion.layout; usually negative).
Dispatch and the like are left to the terms, which take what is common to the device's models.

The weight term: a kernel timed alone in a loop finds its weights in the cache; inside a model whose weights do not
fit, the weights beyond what the cache holds are fetched again on every inference. Where that starts is the effective
cache a model's weights compete for, which on a shared VM is not the L3 that sysfs reports: the threshold is chosen
among cache sizes by leave-one-out error on the calibration models themselves, "no term" included, and only where
models lie on both sides of it.

The group scales: inside a model a kernel's cost moves from its cost alone by an amount that depends on what it is
(elementwise ops, alone, read inputs that inside a model their producer has likely just left in cache). Whether they
help depends on the device, so they too are chosen by leave-one-out error, per device, and kept only where they earn
their place as the weight term must. The measurements behind both: docs/kernel-lut.md, docs/benchmarks-lut.md.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

MIN_MODELS_FULL = 4  # below this only the per-model term is fitted
MIN_MODELS_EACH_SIDE = 3  # of a weight-cache threshold, for the weight term to be tried at it
NO_TERM_TOLERANCE = 0.01  # a term (weight, group scales) is kept when it lowers the leave-one-out error by over 1 %
CACHE_CANDIDATES_BYTES = tuple(mib * 2 ** 20 for mib in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64))
SCALE_GROUPS = ("conv1x1", "conv", "group_conv", "dwconv", "layout", "other")
MIN_MODELS_GROUP_SCALES = 20  # below this one scale serves all kernels
MIN_MODELS_PER_GROUP = 3  # a group found in fewer calibration models shares the scale of the rest


def scale_group(kind: str, config: Dict[str, object]) -> str:
    """The SCALE_GROUPS member of a kernel (edge_agent.fusion.partition.Kernel kind and config)."""
    if kind == "conv":
        if int(config.get("groups", 1)) > 1:
            return "group_conv"
        return "conv1x1" if config.get("kernel") == 1 else "conv"
    return "dwconv" if kind == "dwconv" else "other"


@dataclass(frozen=True)
class ModelSum:
    """A model as the LUT sees it: its kernels' predicted latency summed and their count."""

    kernel_ns: float
    kernels: int
    layout_ns: float = 0.0  # the model's layout conversions minus those of its kernels alone (fusion.layout)
    weight_bytes: float = 0.0  # all its weights (float32 parameters)
    group_ns: Dict[str, float] = field(default_factory=dict)  # kernel_ns + layout_ns split by SCALE_GROUPS

    def split_ns(self) -> Dict[str, float]:
        """group_ns, or for a sum that was not split, all of it as "other"."""
        return self.group_ns or {"other": self.kernel_ns + self.layout_ns}

    def scaled_ns(self, scales: Dict[str, float]) -> float:
        """The kernels (and layout conversions) with each group's scale; a group without one takes "other"'s."""
        return sum(scales.get(group, scales.get("other", 1.0)) * ns for group, ns in self.split_ns().items())


@dataclass(frozen=True)
class Calibration:
    kernel_scale: float = 1.0
    per_kernel_ns: float = 0.0
    model_overhead_ns: float = 0.0
    weight_ns_per_byte: float = 0.0
    weight_cache_bytes: float = 0.0  # weights beyond this many bytes are fetched again on every inference
    group_scales: Dict[str, float] = field(default_factory=dict)  # empty: kernel_scale serves every group

    def apply(self, model: ModelSum) -> float:
        kernels = (model.scaled_ns(self.group_scales) if self.group_scales
                   else self.kernel_scale * (model.kernel_ns + model.layout_ns))
        return max(kernels + self.per_kernel_ns * model.kernels + self.model_overhead_ns
                   + self.weight_ns_per_byte * _streamed(model, self.weight_cache_bytes), 0.0)


def _streamed(model: ModelSum, cache_bytes: Optional[float]) -> float:
    """The weight bytes fetched again on every inference. Only the excess over the cache: charging all of a model's
    weights once past the threshold had the smaller models past it come out high (docs/benchmarks-lut.md)."""
    return max(model.weight_bytes - cache_bytes, 0.0) if cache_bytes is not None else 0.0


def fit_calibration(models: Sequence[ModelSum], measured_ns: Sequence[float], default_overhead_ns: float = 0.0
                    ) -> Calibration:
    """Non-negative least squares on relative error (a few large models do not decide the fit for the small ones).
    With fewer than MIN_MODELS_FULL models the per-kernel term is left out, and with one model only the gap is
    fitted. Every term stays non-negative: a negative per-model term, fitted from a few models whose kernel sums ran
    high, once put a one-kernel model at a fifth of its time."""
    measured = np.asarray(measured_ns, dtype=np.float64)
    if len(measured) < 2:
        sums = [m.kernel_ns + m.layout_ns for m in models]
        return Calibration(model_overhead_ns=max(float(measured[0] - sums[0]), 0.0) if len(measured)
                           else default_overhead_ns)
    weights = np.asarray([m.weight_bytes for m in models])
    caches = [None] + [c for c in CACHE_CANDIDATES_BYTES
                       if min((weights > c).sum(), (weights <= c).sum()) >= MIN_MODELS_EACH_SIDE]
    groups = _own_scale_groups(models) if len(measured) >= MIN_MODELS_GROUP_SCALES else ()
    errors = {(c, g): _leave_one_out_error(models, measured, c, g) for c in caches for g in dict.fromkeys([(), groups])}
    # a term must earn its place: the fewest terms within NO_TERM_TOLERANCE of the lowest error
    good_enough = min(errors.values()) * (1 + NO_TERM_TOLERANCE) + 1e-12
    cache_bytes, groups = min((k for k in errors if errors[k] <= good_enough),
                              key=lambda k: ((k[0] is not None) + len(k[1]), errors[k]))
    return _fit_terms(models, measured, cache_bytes, groups)


def _own_scale_groups(models: Sequence[ModelSum]) -> Tuple[str, ...]:
    """The groups found in enough calibration models to fit a scale of their own; the rest share one, and where the
    rest is not found in as many, no group has a scale of its own (the rest's would be fitted from nothing)."""
    splits = [m.split_ns() for m in models]
    found = {g: sum(split.get(g, 0.0) != 0.0 for split in splits) for g in SCALE_GROUPS}
    own = tuple(g for g in SCALE_GROUPS if g != "other" and found[g] >= MIN_MODELS_PER_GROUP)
    rest = sum(any(ns != 0.0 for g, ns in split.items() if g not in own) for split in splits)
    return own if rest >= MIN_MODELS_PER_GROUP else ()


def _fit_terms(models: Sequence[ModelSum], measured: np.ndarray, cache_bytes: Optional[float],
               groups: Tuple[str, ...] = ()) -> Calibration:
    """`groups`: those with a scale of their own, the others sharing one ("other"'s); none: one scale for all."""
    from scipy.optimize import nnls

    kernel_columns = _kernel_columns(models, groups)
    ones = np.ones(len(models))
    per_kernel_column = [m.kernels for m in models] if len(measured) >= MIN_MODELS_FULL else np.zeros_like(ones)
    streamed = [_streamed(m, cache_bytes) / 1e6 for m in models]  # per MB, so the columns have similar scales
    design = np.column_stack([kernel_columns, per_kernel_column, ones, streamed]) / measured[:, None]
    *scales, per_kernel, overhead, per_mb = nnls(design, np.ones_like(measured))[0]
    group_scales = dict(zip(groups + ("other",), map(float, scales))) if groups else {}
    return Calibration(float(scales[0]) if not groups else 1.0, float(per_kernel), float(overhead),
                       float(per_mb) / 1e6, float(cache_bytes) if per_mb > 0 else 0.0, group_scales)


def _kernel_columns(models: Sequence[ModelSum], groups: Tuple[str, ...]) -> np.ndarray:
    """One column per group with its own scale and one for the rest; one column of all kernels where no group has."""
    if not groups:
        return np.asarray([[m.kernel_ns + m.layout_ns] for m in models], dtype=np.float64)
    splits = [m.split_ns() for m in models]
    return np.asarray([[split.get(g, 0.0) for g in groups] + [sum(ns for g, ns in split.items() if g not in groups)]
                       for split in splits], dtype=np.float64)


def _leave_one_out_error(models: Sequence[ModelSum], measured: np.ndarray, cache_bytes: Optional[float],
                         groups: Tuple[str, ...] = ()) -> float:
    errors = []
    for left_out in range(len(models)):
        keep = [i for i in range(len(models)) if i != left_out]
        fitted = _fit_terms([models[i] for i in keep], measured[keep], cache_bytes, groups)
        errors.append(abs(fitted.apply(models[left_out]) / measured[left_out] - 1))
    return float(np.mean(errors))
