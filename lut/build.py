"""A LUT from result bundles: the kernel records (item_kind "kernel") and the fusion rule table of the same settings.

Each kernel's latency is its interleaved ratio to the reference kernel times the reference kernel's median over
all of the bundle's records: the drift over a long profiling session cancels out of the table.
"""

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from edge_agent.bundle.schema import DEVICE_SETTING_KEYS, KIND_KERNEL, MeasurementRecord
from edge_agent.errors import InputError
from edge_agent.fusion.rules import RuleTable, table_for
from edge_agent.stats import interleaved_ratio, summarize
from lut.table import KernelLUT, KernelSample, fit_lut


def kernel_samples(records: Sequence[MeasurementRecord], reference_ns: Optional[float] = None
                   ) -> Tuple[List[KernelSample], float, float]:
    """(samples of every valid kernel record, the call overhead, the reference ns) in reference-kernel-drift-free ns:
    each record's ratio to the reference kernel times `reference_ns`, by default the reference's median over these
    records (another bundle's puts kernels measured apart in that bundle's ns)."""
    from edge_agent.kernelprof.space import OVERHEAD_SPEC

    interleaved = [r for r in records if r.item_kind == KIND_KERNEL and r.spec and r.reference_samples_ns
                   and any(r.samples_ns)]
    kernels = [r for r in interleaved if r.valid]
    if not kernels:
        raise InputError("no valid kernel records (run `edge-agent profile --kernels` first)")
    if reference_ns is None:
        reference_ns = float(np.median([summarize(r.reference_samples_ns).median_ns for r in kernels]))
    samples = [KernelSample(r.spec["kernel_type"], dict(r.spec["config"]),
                            interleaved_ratio(r.samples_ns, r.reference_samples_ns) * reference_ns)
               for r in kernels if r.spec != OVERHEAD_SPEC]
    # The empty call (~10 µs) next to a much longer reference kernel rarely passes the relative window-agreement
    # check, yet its absolute error is a fraction of a µs; leaving it out would charge every kernel of a model its
    # own call overhead. So every attempt at it counts.
    overhead = [interleaved_ratio(r.samples_ns, r.reference_samples_ns) * reference_ns
                for r in interleaved if r.spec == OVERHEAD_SPEC]
    return samples, float(np.median(overhead)) if overhead else 0.0, reference_ns


def lut_from_bundles(bundle_dirs: Sequence[str], **fit_options) -> KernelLUT:
    """The fusion rules and layout rules come from the bundles' rule table of the kernels' settings; `fit_options`
    go to lut.table.fit_lut."""
    return lut_inputs(bundle_dirs).fit(**fit_options)


class LutInputs(NamedTuple):
    samples: List[KernelSample]
    overhead_ns: float
    rules: RuleTable
    settings: Dict[str, object]
    reference_ns: float  # the reference kernel's median the samples' ratios were scaled by

    def fit(self, samples: Optional[Sequence[KernelSample]] = None, **fit_options) -> KernelLUT:
        """The LUT of these inputs, or of some of their samples; `fit_options` go to lut.table.fit_lut."""
        return fit_lut(self.samples if samples is None else samples, self.rules.absorbed(), self.settings,
                       self.overhead_ns, self.rules.layout, **fit_options)


def lut_inputs(bundle_dirs: Sequence[str]) -> LutInputs:
    """What a LUT is fitted from: the bundles' kernel samples and call overhead, and the rule table of their
    settings (all kernel records of one device, and a table for it, or a one-line error)."""
    from edge_agent.bundle.store import read_records

    records = [r for d in bundle_dirs for r in read_records(d).records]
    kernels = [r for r in records if r.item_kind == KIND_KERNEL]
    if not kernels:
        raise InputError("no kernel records in {}".format(", ".join(bundle_dirs)))
    settings = {key: getattr(kernels[0].settings, key) for key in DEVICE_SETTING_KEYS}
    if any({key: getattr(r.settings, key) for key in DEVICE_SETTING_KEYS} != settings for r in kernels):
        raise InputError("the kernel records were measured under different settings; build one LUT per device")
    rules = table_for(bundle_dirs, settings)
    if rules is None:
        raise InputError("no fusion rule table for {} in the bundles (`edge-agent profile --kernels` records one "
                         "where its bundle has none: run it again on the bundle)".format(
            " ".join("{}={}".format(k, v) for k, v in settings.items() if v is not None)))
    samples, overhead_ns, reference_ns = kernel_samples(kernels)
    return LutInputs(samples, overhead_ns, rules, settings, reference_ns)
