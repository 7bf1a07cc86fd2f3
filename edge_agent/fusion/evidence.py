"""The runtime's own account of which kernels it runs for a graph.

onnxruntime: the profile's executed nodes (and the saved optimized graph); MNN: the converted model's op list.
Layout conversions (NCHWc reorders, MNN ConvertTensor) and inputs/constants are not compute kernels: a conv at
level ALL runs as reorder + conv + reorder and is still one conv kernel.
"""

import json
import os
import tempfile
from typing import Dict, List

from pydantic import BaseModel, Field

from edge_agent.bundle.schema import RunSettings
from edge_agent.errors import InputError

ORT_LAYOUT_OPS = {"ReorderInput", "ReorderOutput", "MemcpyToHost", "MemcpyFromHost"}
_MNN_NOT_KERNELS = {"Input", "Const", "ConvertTensor"}


class Evidence(BaseModel):
    source: str  # "ort-profile" | "mnn-oplist"
    kernels: List[str]  # compute kernels the runtime runs for the whole graph, in order
    detail: List[str]  # everything it runs or lists (layout conversions included), for the reader
    ops: List[str] = Field(default_factory=list)  # what it runs or lists, in order, layout conversions included

    @property
    def kernel_count(self) -> int:
        return len(self.kernels)


def collect_evidence(onnx_path: str, settings: RunSettings) -> Evidence:
    if settings.runtime == "ort":
        return ort_evidence(onnx_path, settings.threads, settings.ort_graph_optimization_level or "all")
    if settings.runtime == "mnn":
        return mnn_evidence(onnx_path)
    raise InputError("no fusion evidence for runtime {!r}".format(settings.runtime))


def ort_evidence(onnx_path: str, threads: int, opt_level: str) -> Evidence:
    import onnx
    import onnxruntime as ort

    from edge_agent.runtimes.inputs import make_inputs
    from edge_agent.runtimes.ort import session_options

    with tempfile.TemporaryDirectory(prefix="edge-agent-fusion-") as workdir:
        optimized = os.path.join(workdir, "optimized.onnx")
        options = session_options(threads, opt_level, optimized_model_path=optimized,
                                  profile_prefix=os.path.join(workdir, "profile"))
        session = ort.InferenceSession(onnx_path, sess_options=options, providers=["CPUExecutionProvider"])
        shapes = {i.name: list(i.shape) for i in session.get_inputs()}
        session.run(None, make_inputs(shapes, 0))
        with open(session.end_profiling(), "r", encoding="utf-8") as handle:
            events = json.load(handle)
        graph_ops = ["{}@{}".format(n.op_type, n.domain or "ai.onnx") for n in onnx.load(optimized).graph.node]
    executed = [e["args"].get("op_name", "?") for e in events
                if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
    return Evidence(source="ort-profile", kernels=[op for op in executed if op not in ORT_LAYOUT_OPS],
                    detail=["executed: " + " ".join(executed), "optimized graph: " + " ".join(graph_ops)],
                    ops=executed)


def mnn_evidence(onnx_path: str) -> Evidence:
    from edge_agent.runtimes.mnn import convert_onnx_to_mnn, dump_mnn_json

    with tempfile.TemporaryDirectory(prefix="edge-agent-fusion-") as workdir:
        mnn_path = os.path.join(workdir, "model.mnn")
        json_path = os.path.join(workdir, "model.json")
        convert_onnx_to_mnn(onnx_path, mnn_path)
        dump_mnn_json(mnn_path, json_path)
        with open(json_path, "r", encoding="utf-8") as handle:
            oplist = json.load(handle).get("oplists", [])
    listed = [_mnn_op_label(op) for op in oplist]
    kernels = [label for label, op in zip(listed, oplist) if op.get("type") not in _MNN_NOT_KERNELS]
    return Evidence(source="mnn-oplist", kernels=kernels, detail=["ops: " + " ".join(listed)], ops=listed)


def _mnn_op_label(op: Dict) -> str:
    """The op type, with the activation MNN folded into a convolution (`relu: true`, `relu6: true`) shown."""
    label = str(op.get("type", "?"))
    common = (op.get("main") or {}).get("common") or {}
    folded = [name for name in ("relu", "relu6") if common.get(name)]
    return label + "".join("+" + name for name in folded)
