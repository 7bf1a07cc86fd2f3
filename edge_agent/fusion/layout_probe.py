"""Probe which kernels the runtime runs on a blocked layout: one tiny model per layout kind and channel count, and the
runtime's own account of what it does with it (no timing: the facts are in the graph the runtime builds).

onnxruntime: the optimized graph (level from the settings); a kernel runs blocked when it lands in the
com.microsoft.nchwc domain, and reads a plain input when no ReorderInput precedes it. MNN: the converted model's op
list; a kernel runs blocked (NC4HW4) when the converter put a ConvertTensor next to it.
"""

import os
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import onnx

from edge_agent.bundle.schema import RunSettings
from edge_agent.fusion.layout import LAYOUT_KINDS, PROBE_CHANNELS, LayoutRules, pattern_period

_NCHWC_DOMAIN = "com.microsoft.nchwc"
_SPATIAL = 8  # the probes' input height and width: big enough for every kernel, small enough to build fast


def probe_layout(settings: RunSettings) -> Optional[LayoutRules]:
    """The device's layout rules, or None for a runtime with no probe."""
    probes = {"ort": (_ort_verdict, "ort-optimized-graph"), "mnn": (_mnn_verdict, "mnn-oplist")}
    if settings.runtime not in probes:
        return None
    verdict, source = probes[settings.runtime]
    blocked: Dict[str, List[int]] = {}
    plain_input: Dict[str, List[int]] = {}
    with tempfile.TemporaryDirectory(prefix="edge-agent-layout-") as workdir:
        for kind in LAYOUT_KINDS:
            blocked[kind], plain_input[kind] = [], []
            for channels in range(1, PROBE_CHANNELS + 1):
                path = os.path.join(workdir, "{}-{}.onnx".format(kind, channels))
                onnx.save(probe_model(kind, channels), path)
                is_blocked, reads_plain = verdict(path, settings, workdir)
                if is_blocked:
                    blocked[kind].append(channels)
                    if reads_plain:
                        plain_input[kind].append(channels)
    return LayoutRules(source=source, blocked=blocked, plain_input=plain_input,
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


def _ort_verdict(path: str, settings: RunSettings, workdir: str) -> Tuple[bool, bool]:
    import onnxruntime as ort

    from edge_agent.runtimes.ort import session_options

    optimized = os.path.join(workdir, "optimized.onnx")
    options = session_options(settings.threads, settings.ort_graph_optimization_level or "all",
                              optimized_model_path=optimized)
    ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    nodes = onnx.load(optimized).graph.node
    blocked = any(n.domain == _NCHWC_DOMAIN and not n.op_type.startswith("Reorder") for n in nodes)
    return blocked, blocked and not any(n.op_type == "ReorderInput" for n in nodes)


def _mnn_verdict(path: str, settings: RunSettings, workdir: str) -> Tuple[bool, bool]:
    from edge_agent.fusion.evidence import mnn_evidence

    listed = mnn_evidence(path).ops
    if "ConvertTensor" not in listed:
        return False, False
    return True, any(op not in ("Input", "Const") for op in listed[:listed.index("ConvertTensor")])
