"""Probe which kernels the runtime runs on a blocked layout: one tiny model per layout kind and channel count, and the
runtime's own account of what it does with it (no timing: the facts are in the graph the runtime builds).

onnxruntime: the optimized graph (level from the settings); a kernel runs blocked when it lands in the
com.microsoft.nchwc domain, and reads a plain input when no ReorderInput precedes it. MNN: the converted model's op
list; a kernel runs blocked (NC4HW4) when the converter put a ConvertTensor next to it. Ops between two blocked convs
(FOLLOW_PROBES) keep the blocked layout when the runtime adds no conversion for them.
"""

import os
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import onnx

from edge_agent.bundle.schema import RunSettings
from edge_agent.fusion.layout import FOLLOW_PROBES, LAYOUT_KINDS, PROBE_CHANNELS, LayoutRules, pattern_period

_NCHWC_DOMAIN = "com.microsoft.nchwc"
_CONVERSIONS = ("ReorderInput", "ReorderOutput", "ConvertTensor")
_SPATIAL = 8  # the probes' input height and width: big enough for every kernel, small enough to build fast
_FOLLOW_CHANNELS = 32  # a channel count every runtime here blocks


def probe_layout(settings: RunSettings) -> Optional[LayoutRules]:
    """The device's layout rules, or None for a runtime with no probe."""
    probes = {"ort": (_ort_ops, _ort_verdict, "ort-optimized-graph"), "mnn": (_mnn_ops, _mnn_verdict, "mnn-oplist")}
    if settings.runtime not in probes:
        return None
    list_ops, verdict, source = probes[settings.runtime]
    blocked: Dict[str, List[int]] = {}
    plain_input: Dict[str, List[int]] = {}
    with tempfile.TemporaryDirectory(prefix="edge-agent-layout-") as workdir:
        def ops_of(model: onnx.ModelProto) -> List[Tuple[str, str]]:
            path = os.path.join(workdir, "probe.onnx")
            onnx.save(model, path)
            return list_ops(path, settings, workdir)

        for kind in LAYOUT_KINDS:
            blocked[kind], plain_input[kind] = [], []
            for channels in range(1, PROBE_CHANNELS + 1):
                is_blocked, reads_plain = verdict(ops_of(probe_model(kind, channels)))
                if is_blocked:
                    blocked[kind].append(channels)
                    if reads_plain:
                        plain_input[kind].append(channels)
        baseline = _conversions(ops_of(follow_model(None)))
        keeps = {name: _conversions(ops_of(follow_model(name))) <= baseline for name in FOLLOW_PROBES}
    return LayoutRules(source=source, blocked=blocked, plain_input=plain_input, keeps=keeps,
                       period={kind: pattern_period(blocked[kind]) for kind in LAYOUT_KINDS})


def probe_model(kind: str, channels: int) -> onnx.ModelProto:
    from kernels.builder import GraphBuilder

    width = 2 * channels if kind == "group_conv" else channels
    builder = GraphBuilder((1, width, _SPATIAL, _SPATIAL), seed=0, name="layout-{}-{}".format(kind, channels))
    layers: Dict[str, Callable[[str], str]] = {
        "conv": lambda x: builder.conv(x, channels, kernel=1, bn=False, act="none"),
        "group_conv": lambda x: builder.conv(x, width, kernel=3, groups=2, bn=False, act="none"),
        "dwconv": lambda x: builder.dwconv(x, kernel=3, bn=False, act="none"),
        "maxpool": lambda x: builder.pool(x, "max", 2),
        "avgpool": lambda x: builder.pool(x, "avg", 2),
        "global_avgpool": lambda x: builder.global_pool(x, "avg"),
    }
    return builder.build([layers[kind](builder.input)])


def follow_model(name: Optional[str]) -> onnx.ModelProto:
    """Two blocked 1x1 convs with the probed op between them (None: nothing between)."""
    from kernels.builder import GraphBuilder

    builder = GraphBuilder((1, _FOLLOW_CHANNELS, _SPATIAL, _SPATIAL), seed=0, name="layout-follow-{}".format(name))
    x = builder.conv(builder.input, _FOLLOW_CHANNELS, kernel=1, bn=False, act="none")
    if name == "broadcast_mul":  # squeeze-excite's scaling, without its own convs
        gate = builder.act(builder.global_pool(x, "avg"), "sigmoid")
        x = builder.op("Mul", [x, gate], builder.shape(x), prefix="scale")
    elif name == "reshape":
        x = builder.channel_shuffle(x, 2)
    elif name == "fc":
        import numpy as np

        pooled = builder.fc(builder.global_pool(x, "avg"), _FOLLOW_CHANNELS)
        shape = builder.constant("shape", np.array((1, _FOLLOW_CHANNELS, 1, 1), dtype=np.int64))
        x = builder.op("Reshape", [pooled, shape], (1, _FOLLOW_CHANNELS, 1, 1), prefix="unflatten")
    return builder.build([builder.conv(x, _FOLLOW_CHANNELS, kernel=1, bn=False, act="none")])


def _conversions(ops: List[Tuple[str, str]]) -> int:
    return sum(1 for op, _ in ops if op in _CONVERSIONS)


def _ort_ops(path: str, settings: RunSettings, workdir: str) -> List[Tuple[str, str]]:
    """(op type, domain) of each node of onnxruntime's optimized graph."""
    import onnxruntime as ort

    from edge_agent.runtimes.ort import session_options

    optimized = os.path.join(workdir, "optimized.onnx")
    options = session_options(settings.threads, settings.ort_graph_optimization_level or "all",
                              optimized_model_path=optimized)
    ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    return [(n.op_type, n.domain) for n in onnx.load(optimized).graph.node]


def _ort_verdict(ops: List[Tuple[str, str]]) -> Tuple[bool, bool]:
    blocked = any(domain == _NCHWC_DOMAIN and op not in _CONVERSIONS for op, domain in ops)
    return blocked, blocked and ("ReorderInput", _NCHWC_DOMAIN) not in ops


def _mnn_ops(path: str, settings: RunSettings, workdir: str) -> List[Tuple[str, str]]:
    """(op type, "") of each op of the converted model, in order."""
    from edge_agent.fusion.evidence import mnn_evidence

    return [(op, "") for op in mnn_evidence(path).ops]


def _mnn_verdict(ops: List[Tuple[str, str]]) -> Tuple[bool, bool]:
    names = [op for op, _ in ops]
    if "ConvertTensor" not in names:
        return False, False
    return True, any(op not in ("Input", "Const") for op in names[:names.index("ConvertTensor")])
