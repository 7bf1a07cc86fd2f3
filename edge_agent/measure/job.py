"""What the parent asks the measuring child to do, and what comes back. Plain pydantic: it crosses a pipe."""

from typing import Dict, List, Optional

from pydantic import BaseModel

from edge_agent.bundle.schema import ProtocolConfig, RunSettings
from edge_agent.device.models import DeviceSnapshot


class ModelToRun(BaseModel):
    onnx_path: str
    input_shapes: Dict[str, List[int]]


class Job(BaseModel):
    model: ModelToRun
    reference: Optional[ModelToRun] = None
    settings: RunSettings
    protocol: ProtocolConfig
    sysroot: str = "/"
    mnn_cache_dir: Optional[str] = None


class JobResult(BaseModel):
    error: Optional[str] = None
    load_ns: Optional[int] = None
    first_inference_ns: Optional[int] = None
    window_load_ns: Optional[List[int]] = None
    samples_ns: List[List[int]] = []
    reference_load_ns: Optional[int] = None
    reference_first_inference_ns: Optional[int] = None
    reference_samples_ns: Optional[List[List[int]]] = None
    warmup_runs: int = 0
    state_before: Optional[DeviceSnapshot] = None
    state_after: Optional[DeviceSnapshot] = None


def session_options(settings: RunSettings, mnn_cache_dir: Optional[str]) -> dict:
    if settings.runtime == "ort":
        return {"opt_level": settings.ort_graph_optimization_level}
    return {"precision": settings.mnn_precision, "cache_dir": mnn_cache_dir,
            "winograd_memory_level": settings.mnn_winograd_memory_level}
