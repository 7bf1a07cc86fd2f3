"""The LUT on disk: one JSON document, no pickles. Format "edge-latency-lut", version 9 (5 to 8 are read too: a 5
has no weight term in its calibration, which is what the defaults say, 5 and 6 have no per-group roofline term, up
to 7 the trees are 8 deep at most, which a reader of 7 assumed, and up to 8 the calibration has one kernel scale):

  format, format_version      "edge-latency-lut", 9
  settings                    the RunSettings the kernels were measured under (runtime, version, threads, level)
  absorbed                    [[head class, class], ...]: the fusion rules used to partition models into kernels
  call_overhead_ns            cost of one empty model call, taken off every kernel measurement
  layout                      null, or the device's blocked-layout rules and measured conversion costs
                              (edge_agent.fusion.layout.LayoutRules)
  calibration                 {kernel_scale, per_kernel_ns, model_overhead_ns, weight_ns_per_byte,
                              weight_cache_bytes, group_scales}: model = scale * (sum(kernels) + layout conversions)
                              + per_kernel * kernels + overhead + per_byte * (weights beyond the cache size),
                              with {group: scale} in place of the one scale where group_scales is not empty
                              (lut.calibration)
  exact                       {kernel key: latency_ns}; a key is canonical JSON {"kind": ..., "config": {...}}
  kinds                       {kind: {"feature_names": [...], "arrays": {name: {"shape": [...], "data": [...]}}}}
                              (edge_agent.kernelprof.regressor: roofline [a, b, c] or, for convs, [a, b, c, d]
                              with d per group beyond the first; the node table of the trees on its log residual
                              [feature, threshold, left, right, value] per row (feature -1: a leaf), tree roots;
                              lut.forest)
  fallback_coef               [a, b, c]: ns = a + b * MFLOPs + c * KB moved, for kinds with no regressor
  skipped                     kernel samples that were not a single kernel under these rules, or of a kernel type
                              this version cannot build
"""

import dataclasses
import json
from typing import Any, Dict

import numpy as np

from edge_agent.errors import InputError
from edge_agent.fusion.layout import LayoutRules
from lut.calibration import Calibration
from lut.table import KernelLUT, KindModel

LUT_FORMAT = "edge-latency-lut"
# 9: kernel scales per group in the calibration; 8: full-depth extremely randomized trees (lut.forest); 7: a per-group roofline term for convs; 6: weight term in the calibration; 5: layout rules; 4: calibration as one
# object; 3: scale and per-kernel terms; 2: tree forest; 1: ridge
LUT_FORMAT_VERSION = 9
READABLE_VERSIONS = (5, 6, 7, 8, 9)


def lut_to_dict(table: KernelLUT) -> Dict[str, Any]:
    return {
        "format": LUT_FORMAT, "format_version": LUT_FORMAT_VERSION, "settings": table.settings,
        "absorbed": sorted([list(pair) for pair in table.absorbed]), "call_overhead_ns": table.call_overhead_ns,
        "calibration": dataclasses.asdict(table.calibration),
        "layout": None if table.layout is None else table.layout.model_dump(), "exact": table.exact,
        "skipped": table.skipped,
        "kinds": {kind: {"feature_names": model.feature_names,
                         "arrays": {name: _array_out(a) for name, a in model.arrays.items()}}
                  for kind, model in table.kinds.items()},
        "fallback_coef": [float(v) for v in table.fallback_coef],
    }


def lut_from_dict(data: Dict[str, Any], origin: str = "LUT") -> KernelLUT:
    if not isinstance(data, dict) or data.get("format") != LUT_FORMAT:
        raise InputError("{} is not an {} file".format(origin, LUT_FORMAT))
    if data.get("format_version") not in READABLE_VERSIONS:
        raise InputError("{} has LUT format version {!r}; this reads versions {}; rebuild it".format(
            origin, data.get("format_version"), ", ".join(map(str, READABLE_VERSIONS))))
    try:
        kinds = {kind: KindModel(feature_names=list(entry["feature_names"]),
                                 arrays={n: _array_in(a) for n, a in entry["arrays"].items()})
                 for kind, entry in data["kinds"].items()}
        return KernelLUT(
            settings=dict(data["settings"]), absorbed=frozenset(tuple(p) for p in data["absorbed"]),
            call_overhead_ns=float(data["call_overhead_ns"]), exact={k: float(v) for k, v in data["exact"].items()},
            kinds=kinds, fallback_coef=np.asarray(data["fallback_coef"], dtype=np.float64),
            calibration=_calibration_in(data["calibration"]),
            skipped=int(data.get("skipped", 0)),
            layout=None if data.get("layout") is None else LayoutRules.model_validate(data["layout"]))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:  # AttributeError: a list where a map belongs
        raise InputError("{} is a corrupt LUT: {}".format(origin, exc)) from None


def _calibration_in(entry: Dict[str, Any]) -> Calibration:
    group_scales = {str(g): float(v) for g, v in entry.get("group_scales", {}).items()}
    return Calibration(**{k: float(v) for k, v in entry.items() if k != "group_scales"}, group_scales=group_scales)


def save_lut(table: KernelLUT, path: str) -> None:
    from edge_agent.bundle.files import atomic_write

    atomic_write(path, json.dumps(lut_to_dict(table), sort_keys=True), overwrite=True)


def load_lut(path: str) -> KernelLUT:
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError("cannot read LUT {}: {}".format(path, exc)) from None
    return lut_from_dict(data, path)


def _array_out(array: np.ndarray) -> Dict[str, Any]:
    return {"shape": list(array.shape), "data": [float(v) for v in np.ravel(array)]}


def _array_in(entry: Dict[str, Any]) -> np.ndarray:
    return np.asarray(entry["data"], dtype=np.float64).reshape(entry["shape"])
