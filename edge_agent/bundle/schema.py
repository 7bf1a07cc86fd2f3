"""Versioned schemas of a result bundle.

A bundle is a directory:
  manifest.json        Manifest (written once, atomically)
  measurements.jsonl   one MeasurementRecord per line, append-only, fsynced per record
  models/<sha256>.onnx the models measured, by content (or a spec in the record regenerates them)
  rules/*.json         fusion rule tables (see the fusion-detection commands)

Every latency is raw integer nanoseconds; statistics are derived on read (edge_agent.stats), never stored.
"""

from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, computed_field

from edge_agent.device.models import DeviceSnapshot

BUNDLE_FORMAT = "edge-agent-bundle"
# 2: settings say the model precision and how an INT8 model was made (quantization); a model ref says which fp32
# model it was made from and which ops still ran in fp32. Version 1 files read as fp32.
MANIFEST_SCHEMA_VERSION = 2
RECORD_SCHEMA_VERSION = 2
SUPPORTED_MANIFEST_VERSIONS = (1, 2)
SUPPORTED_RECORD_VERSIONS = (1, 2)

STATUS_OK = "ok"
STATUS_INVALID = "invalid"
STATUS_FAILED = "failed"

KIND_MODEL = "model"
KIND_SUBNET = "subnet"
KIND_REFERENCE = "reference"
KIND_KERNEL = "kernel"


# The RunSettings fields that decide what a measurement is worth beside others: records, fusion rules and kernel
# LUTs agree on all of them or do not mix. (Affinity does not; the input seed matters for resuming only.)
DEVICE_SETTING_KEYS = ("runtime", "runtime_version", "threads", "ort_graph_optimization_level", "mnn_precision",
                       "mnn_winograd_memory_level", "precision")
PRECISION_FP32 = "fp32"


class QuantizeSettings(BaseModel):
    """How the board made the INT8 model it measured from the fp32 one (edge_agent.quant): the same settings and
    fp32 model give the same INT8 model, byte for byte."""

    model_config = ConfigDict(frozen=True)

    precision: str = "int8"
    tool: str = "onnxruntime.quantization.quantize_static"
    tool_version: str
    quant_format: str = "QDQ"
    per_channel: bool = True
    # Unsigned activations, signed weights (U8S8): onnxruntime's x86 CPU kernels run every QDQ conv, add, mul and
    # pooling of the zoo in INT8 so; with signed activations (S8S8) convs and adds at residual branches stayed fp32
    # (docs/int8.md). `--quantize-activations int8` for S8S8.
    activation_type: str = "QUInt8"
    weight_type: str = "QInt8"
    calibrate_method: str = "MinMax"
    # onnxruntime's quant_pre_process first (its basic graph optimizations fold BatchNormalization into Conv, as a
    # deployment does; ONNX shape inference), without symbolic shape inference (shapes are fixed, it needs sympy)
    preprocess: bool = True
    # The calibration inputs: standard-normal tensors of the model's input shapes, sample i drawn with seed + i.
    calibration_samples: int = 8
    calibration_seed: int = 0

    def label(self) -> str:
        """The precision as part of a device's identity: "int8", or "int8-s8s8" with signed activations, which run
        other kernels."""
        return self.precision if self.activation_type == "QUInt8" else "{}-s8s8".format(self.precision)


class RunSettings(BaseModel):
    """Everything about how the runtime was driven; part of what defines a 'device' for prediction."""

    model_config = ConfigDict(frozen=True)

    runtime: str  # "ort" | "mnn"
    runtime_version: str
    threads: int
    affinity: Optional[List[int]] = None
    ort_graph_optimization_level: Optional[str] = None  # "disable" | "basic" | "extended" | "all"
    mnn_precision: Optional[str] = None  # "high" (fp32) | "normal" | "low"
    # MNN's WINOGRAD_MEMORY_LEVEL session hint, 0-3; None: MNN's default. It picks the Winograd units of 3x3 convs and
    # moves whole models either way, so it is part of the device (docs/protocol.md).
    mnn_winograd_memory_level: Optional[int] = None
    input_seed: int = 0
    # None: the model as given (fp32). Kept apart from mnn_precision, which is MNN's float arithmetic.
    quantization: Optional[QuantizeSettings] = None

    @computed_field
    @property
    def precision(self) -> str:
        """The model's precision: "fp32", or the quantization's ("int8"; "int8-s8s8" with signed activations)."""
        return self.quantization.label() if self.quantization is not None else PRECISION_FP32

    def level(self) -> str:
        """Beside runtime and threads, what decides which kernels run: onnxruntime's optimization level, or MNN's
        precision and Winograd memory level when one is set; then the model precision when it is not fp32 (so the
        names of fp32 devices stay as they were)."""
        if self.ort_graph_optimization_level:
            level = self.ort_graph_optimization_level
        else:
            level = self.mnn_precision or "default"
            if self.mnn_winograd_memory_level is not None:
                level += "-winograd{}".format(self.mnn_winograd_memory_level)
        return level if self.precision == PRECISION_FP32 else "{}-{}".format(level, self.precision)


class ProtocolConfig(BaseModel):
    """The measurement protocol's knobs, recorded with every record (pyperf style)."""

    model_config = ConfigDict(frozen=True)

    warmup_min_runs: int = 20
    warmup_min_time_ns: int = 1_000_000_000
    min_runs: int = 30
    min_time_ns: int = 1_500_000_000
    windows: int = 3
    max_runs: int = 100_000
    cv_threshold: float = 0.05
    max_retries: int = 2
    timeout_s: float = 600.0
    cooldown_target_mc: Optional[int] = None
    cooldown_timeout_s: float = 120.0
    # With a reference, item and reference alternate in bursts of at least this many runs and this long, each burst
    # after this many untimed runs. The defaults (strict alternation, nothing untimed) describe records made before
    # bursts existed; the presets set bursts, because a reference run between two item runs evicts the item's
    # working set from the cache and times it cold (docs/protocol.md).
    burst_min_runs: int = 1
    burst_min_time_ns: int = 0
    burst_warmup_runs: int = 0
    # Every window after the first in a session opened for it. MNN at Winograd level 3 plans its kernels per session,
    # so one session is one draw; with this the windows span draws, and draws that disagree fail the window check
    # instead of passing as one number.
    session_per_window: bool = False


class QuantizedModel(BaseModel):
    """What quantizing one fp32 model gave: its source, and the runtime's account of which ops run in INT8 and which
    fell back to fp32 (edge_agent.quant.fallback)."""

    model_config = ConfigDict(frozen=True)

    source_sha256: str  # the fp32 model; the trainer encodes this graph, the device's precision says INT8
    source_path: Optional[str] = None  # relative to the bundle root, when the fp32 model is stored there
    evidence_source: str  # e.g. "ort-optimized-graph:all"
    int8_kernels: List[str] = Field(default_factory=list)  # op types that run on integer tensors, in graph order
    fp32_ops: List[str] = Field(default_factory=list)  # "OpType:node name" of the ops that still compute in fp32


class ModelRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    model_sha256: str  # the model measured: with quantization, the INT8 one
    model_path: Optional[str] = None  # relative to the bundle root
    name: Optional[str] = None
    quantized: Optional[QuantizedModel] = None

    @property
    def graph_sha256(self) -> str:
        """The graph a predictor encodes: the fp32 source of a quantized model, else the model itself."""
        return self.quantized.source_sha256 if self.quantized is not None else self.model_sha256


class MeasurementRecord(BaseModel):
    schema_version: int = RECORD_SCHEMA_VERSION
    record_id: str
    session_id: str
    item_id: str
    item_kind: str = KIND_MODEL
    model: ModelRef
    spec: Optional[Dict[str, Any]] = None  # a subnet or kernel spec that regenerates the model
    reference: Optional[ModelRef] = None
    settings: RunSettings
    protocol: ProtocolConfig
    input_shapes: Dict[str, List[int]] = Field(default_factory=dict)
    status: str
    reasons: List[str] = Field(default_factory=list)
    attempt: int = 1
    load_ns: Optional[int] = None
    first_inference_ns: Optional[int] = None
    window_load_ns: Optional[List[int]] = None  # session_per_window: the load time of each later window's session
    warmup_runs: Optional[int] = None
    samples_ns: List[List[int]] = Field(default_factory=list)  # one list per window
    reference_load_ns: Optional[int] = None
    reference_first_inference_ns: Optional[int] = None
    reference_samples_ns: Optional[List[List[int]]] = None  # interleaved with samples_ns, window by window
    state_before: Optional[DeviceSnapshot] = None
    state_after: Optional[DeviceSnapshot] = None
    started_utc: str
    finished_utc: str
    error: Optional[str] = None

    @property
    def valid(self) -> bool:
        return self.status == STATUS_OK


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: str = BUNDLE_FORMAT
    schema_version: int = MANIFEST_SCHEMA_VERSION
    agent_version: str
    bundle_id: str
    created_utc: str
    fingerprint: Dict[str, Any]
    settings: RunSettings
    protocol: ProtocolConfig
    command: List[str] = Field(default_factory=list)
