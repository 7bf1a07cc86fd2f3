"""What a device's kernel lookup table says about a graph, as features of the hybrid predictor (trainer.predictors
.hybrid): each node's kernel latency on the device, where that latency came from (an exact hit, the kind's regressor,
or the FLOPs/bytes fallback) and which group of kernels it belongs to; and per graph, those latencies summed by group
and source, the layout conversions, the kernel calls and a constant.

Every latency is divided by the LUT's total for the device's reference model: the label is the latency ratio to the
reference measured on the same device, so a device twice as fast in every kernel has the same features and the same
labels. That is what lets prices fitted on some devices carry to a device known only by its kernel profile and its
reference. The calibrated LUT sum (lut.calibration) is a non-negative combination of these same columns (a scale per
group, a cost per kernel call, an overhead per model), so the hybrid's fit contains it.
"""

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from edge_agent.errors import InputError
from lut.calibration import SCALE_GROUPS, scale_group
from lut.table import EXACT, FALLBACK, REGRESSOR
from trainer.encoding import GraphEncoding

SOURCES = (EXACT, REGRESSOR, FALLBACK)
# Per node: its kernel's normalized latency (0 for a node fused into another's kernel), the source one-hot, the
# group one-hot (what the node's kernel is; zeros for fused nodes).
NODE_FEATURES = ("lut_latency",) + tuple("source_" + s for s in SOURCES) + tuple("group_" + g for g in SCALE_GROUPS)
# Per graph: measured (exact or regressor) latency per group, fallback latency, layout conversions, calls, a constant,
# and the weights fetched again on every inference: the bytes beyond a cache (trainer.predictors.hybrid picks its
# size as lut.calibration does), per ns of the reference's LUT total. This column holds all the weight bytes; the
# predictor subtracts the cache.
GRAPH_COLUMNS = tuple(g for g in SCALE_GROUPS if g != "layout") + ("fallback", "layout", "calls", "constant",
                                                                    "weights")


@dataclass(frozen=True)
class DeviceKernels:
    """A device's kernel lookup table (lut.table.KernelLUT, uncalibrated) and the LUT's total for its reference
    model: kernels, layout conversions and one call overhead per kernel, in ns."""

    table: object
    reference_total_ns: float


def lut_total_ns(table, encoding: GraphEncoding, vocabulary: Sequence[str]) -> float:
    """The LUT's uncalibrated latency of a graph: its kernels, layout conversions and their call overheads."""
    from trainer.predictors.lut import decode_nodes

    total, _ = table.sum_infos(decode_nodes(encoding, vocabulary), set(), set())
    return total.kernel_ns + total.layout_ns + total.kernels * table.call_overhead_ns


def device_kernels(table, reference: GraphEncoding, vocabulary: Sequence[str]) -> DeviceKernels:
    total = lut_total_ns(table, reference, vocabulary)
    if not total > 0:
        raise InputError("the kernel lookup table predicts no time for the reference model; profile the device's "
                         "kernels again (`edge-agent profile --kernels`)")
    return DeviceKernels(table, total)


def node_features(device: DeviceKernels, encoding: GraphEncoding, vocabulary: Sequence[str]) -> np.ndarray:
    """[nodes, NODE_FEATURES] (the global node left out): a kernel's latency sits on its first node."""
    return _features(device, encoding, vocabulary)[0]


def graph_design(device: DeviceKernels, encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]
                 ) -> np.ndarray:
    """[graphs, GRAPH_COLUMNS]: the node features summed per group (exact and regressor kernels) and for the
    fallback's kernels, and the graph-level columns."""
    groups = [GRAPH_COLUMNS.index(g) if g != "layout" else None for g in SCALE_GROUPS]
    rows: List[np.ndarray] = []
    for encoding in encodings:
        nodes, total = _features(device, encoding, vocabulary)
        latency, fallback = nodes[:, 0], nodes[:, NODE_FEATURES.index("source_" + FALLBACK)]
        by_group = (latency * (1.0 - fallback)) @ nodes[:, 1 + len(SOURCES):]
        row = np.zeros(len(GRAPH_COLUMNS))
        for group, column in enumerate(groups):
            if column is not None:
                row[column] = by_group[group]
        row[GRAPH_COLUMNS.index("fallback")] = latency @ fallback
        row[GRAPH_COLUMNS.index("layout")] = total.layout_ns / device.reference_total_ns
        row[GRAPH_COLUMNS.index("calls")] = total.kernels * device.table.call_overhead_ns / device.reference_total_ns
        row[GRAPH_COLUMNS.index("constant")] = 1.0
        row[GRAPH_COLUMNS.index("weights")] = total.weight_bytes / device.reference_total_ns
        rows.append(row)
    return np.asarray(rows).reshape(len(encodings), len(GRAPH_COLUMNS))


def _features(device: DeviceKernels, encoding: GraphEncoding, vocabulary: Sequence[str]):
    """(node features, lut.calibration.ModelSum of the graph)."""
    from trainer.predictors.lut import decode_nodes

    total, kernels = device.table.sum_infos(decode_nodes(encoding, vocabulary), set(), set())
    features = np.zeros((encoding.x.shape[0] - 1, len(NODE_FEATURES)))
    for prediction in kernels:
        node = int(prediction.kernel.nodes[0][1:])  # decode_nodes names node i "n<i>"
        features[node, 0] = prediction.latency_ns / device.reference_total_ns
        features[node, 1 + SOURCES.index(prediction.source)] = 1.0
        group = scale_group(prediction.kernel.kind, prediction.kernel.config)
        features[node, 1 + len(SOURCES) + SCALE_GROUPS.index(group)] = 1.0
    return features, total
