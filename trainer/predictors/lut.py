"""Kernel lookup-table predictor (lut/): absolute latency = the sum of the model's kernels on the device + a fitted
per-model overhead. Built from the dataset's kernel records and the device's fusion rule table; one device only.

The trainer hands predictors graph encodings, not ONNX models, so the kernels are partitioned from the encoding:
its nodes carry the same kernels.analysis facts edge_agent.fusion.partition reads (op type over LUT_VOCABULARY, kernel, stride,
groups, channels, input size, FLOPs, bytes) and its edges the producer -> consumer tensors. What the encoding lacks
(a multi-output node's per-output readers, graph outputs that are also read, op types outside the vocabulary) can
only change which kernel a node joins or send a kernel to the FLOPs/bytes fallback.

On disk: weights.safetensors holds one uint8 tensor, "lut_json", the lut.format JSON document's UTF-8 bytes.
"""

import json
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from edge_agent.errors import InputError
from trainer.encoding import DEFAULT_VOCABULARY, NUMERIC_FEATURES, GraphEncoding
from trainer.predictors import register
from trainer.predictors.base import FitHistory, Predictor, ProgressFn

# Every op type edge_agent.fusion.ops classifies, so no kernel head is lost to "other".
LUT_VOCABULARY: Tuple[str, ...] = DEFAULT_VOCABULARY + ("GlobalMaxPool",)
KERNEL_KIND = "kernel"


@register("lut")
class LutPredictor(Predictor):
    target = "absolute"
    kernels_suffice = True  # whole-model items only calibrate the kernel sum
    closed_form = True  # the calibration of kernel sums is

    def __init__(self, hyper: Optional[Dict[str, object]] = None, vocabulary: Sequence[str] = LUT_VOCABULARY):
        super().__init__(hyper, vocabulary)

    def build(self) -> None:
        self.table = None
        self.reference_ms = 0.0  # the training device's reference: turns the trainer's ratio targets into ms

    def prepare(self, dataset, devices: Sequence[str]) -> None:
        from trainer.examples import MODEL_KINDS, reference_latency_ms

        if len(devices) != 1:
            raise InputError("a kernel lookup table belongs to one device; give exactly one --device")
        device = devices[0]
        rows = dataset.rows([device])
        self.table = device_lut(dataset, device, rows)
        has_models = any(r["valid"] and r["item_kind"] in MODEL_KINDS for r in rows)
        self.reference_ms = reference_latency_ms(rows, device) if has_models else None

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        """The calibration of kernel sums to whole models (lut.table.KernelLUT.calibrate) on the training models."""
        if self.table is None:
            raise InputError("the lut predictor is built from a dataset's kernel records (trainer fit --kind lut)")
        if len(train):
            measured_ns = np.asarray(train_y, dtype=np.float64) * self.reference_ms * 1e6
            self.table.calibrate([self.model_sum(e)[0] for e in train], measured_ns)
        history = FitHistory(epochs=1, best_epoch=1)
        if len(val):
            measured_ms = np.asarray(val_y, dtype=np.float64) * self.reference_ms
            history.val_errors.append(float(np.mean(np.abs(self.raw_predict(val) - measured_ms) / measured_ms)))
        if progress is not None:
            progress(1, 1, history.val_errors[-1] if history.val_errors else float("nan"))
        return history

    def raw_predict(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """Milliseconds."""
        return np.asarray([self.table.calibration.apply(self.model_sum(e)[0]) / 1e6 for e in encodings])

    def model_sum(self, encoding: GraphEncoding):
        """(lut.calibration.ModelSum, per kernel lut.table.KernelPrediction) of an encoded model."""
        return self.table.sum_infos(decode_nodes(encoding, self.vocabulary), set(), set())

    def predict_kernels(self, encoding: GraphEncoding):
        """Per kernel: lut.table.KernelPrediction (kernel, latency_ns, source exact|regressor|fallback)."""
        return self.model_sum(encoding)[1]

    def tensors(self) -> Dict[str, np.ndarray]:
        return {"lut_json": lut_tensor(self.table)}

    def load_tensors(self, tensors: Dict[str, np.ndarray]) -> None:
        self.table = lut_from_tensor(tensors["lut_json"], "the predictor's LUT")


def lut_tensor(table) -> np.ndarray:
    """A KernelLUT as the uint8 tensor of its lut.format JSON document."""
    from lut.format import lut_to_dict

    text = json.dumps(lut_to_dict(table), sort_keys=True)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def lut_from_tensor(tensor: np.ndarray, what: str):
    from lut.format import lut_from_dict

    try:
        data = json.loads(np.asarray(tensor, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("{} is not a JSON document ({})".format(what, exc)) from None
    return lut_from_dict(data, what)


def device_lut(dataset, device: str, rows: Optional[List[Dict[str, object]]] = None):
    """The device's uncalibrated kernel lookup table (lut.table.KernelLUT) from its kernel records and fusion rules
    in the dataset (`rows`: the device's rows, when already read)."""
    from edge_agent.bundle.schema import DEVICE_SETTING_KEYS
    from lut.table import fit_lut

    rows = dataset.rows([device]) if rows is None else rows
    samples, call_overhead_ns = _kernel_samples(rows, device)
    rules = _rule_table(dataset, device, rows)
    settings = {key: getattr(rules.settings, key) for key in DEVICE_SETTING_KEYS}
    return fit_lut(samples, rules.absorbed(), settings, call_overhead_ns, rules.layout)


def _kernel_samples(rows: List[Dict[str, object]], device: str):
    """lut.build.kernel_samples on dataset rows: each kernel's interleaved ratio times the reference kernel's median
    over the device's kernel rows (drift-free ns); the empty-call kernel gives the call overhead."""
    from edge_agent.kernelprof.space import OVERHEAD_SPEC
    from lut.table import KernelSample

    kernels = [r for r in rows if r["item_kind"] == KERNEL_KIND and r["valid"] and r["spec_json"] and r["ratio"]
               and r["reference_latency_ms"]]
    if not kernels:
        raise InputError("device {!r} has no valid kernel records (ingest a bundle from `edge-agent profile "
                         "--kernels`)".format(device))
    reference_ns = statistics.median(r["reference_latency_ms"] for r in kernels) * 1e6
    samples, overhead = [], []
    for row in kernels:
        spec = json.loads(row["spec_json"])
        if spec == OVERHEAD_SPEC:
            overhead.append(row["ratio"] * reference_ns)
        else:
            samples.append(KernelSample(spec["kernel_type"], dict(spec["config"]), row["ratio"] * reference_ns))
    return samples, float(statistics.median(overhead)) if overhead else 0.0


def _rule_table(dataset, device: str, rows: List[Dict[str, object]]):
    """The device's fusion rule table measured with the kernels' runtime version."""
    from edge_agent.fusion.rules import load_tables

    versions = {r["runtime_version"] for r in rows if r["item_kind"] == KERNEL_KIND}
    tables = [t for t in load_tables(str(dataset.device_dir(device))) if t.settings.runtime_version in versions]
    if not tables:
        raise InputError("device {!r} has no fusion rule table for its kernel records (run `edge-agent profile "
                         "--kernels --out BUNDLE` again with the same settings, which records one, and ingest the "
                         "bundle again)".format(device))
    return tables[-1]


def decode_nodes(encoding: GraphEncoding, vocabulary: Sequence[str]):
    """The encoding's nodes (the global node left out) as kernels.analysis.NodeInfo, with the facts it keeps; node i's
    output tensor is named "t<i>", with the shape _output_shape rebuilds (the encoding keeps no padding)."""
    from kernels.analysis import NodeInfo

    n = encoding.x.shape[0] - 1
    op_types = list(vocabulary) + ["other"]
    numeric = len(vocabulary) + 2
    values = np.rint(np.expm1(encoding.x[:n, numeric:].astype(np.float64))).astype(np.int64)
    facts = [dict(zip(NUMERIC_FEATURES, row.tolist())) for row in values]
    inputs: List[List[str]] = [[] for _ in range(n)]
    for src, dst in encoding.edge_index.T.tolist():
        if src < n and dst < n:
            inputs[dst].append("t{}".format(src))
    types = [op_types[int(np.argmax(encoding.x[i, :len(op_types)]))] for i in range(n)]
    shapes = [_output_shape(op_type, f) for op_type, f in zip(types, facts)]
    return [NodeInfo(name="n{}".format(i), op_type=types[i], domain="", inputs=tuple(inputs[i]),
                     outputs=("t{}".format(i),), kernel_hw=(f["kernel_h"], f["kernel_w"]),
                     stride=(f["stride_h"], f["stride_w"]), groups=f["groups"] + 1, cin=f["cin"], cout=f["cout"],
                     in_hw=(f["in_h"], f["in_w"]), out_hw=(0, 0),
                     in_shapes=tuple(shapes[int(t[1:])] for t in inputs[i]), out_shapes=(shapes[i],),
                     flops=f["flops"], params=f["params"], bytes_moved=f["bytes_moved"])
            for i, f in enumerate(facts)]


def _output_shape(op_type: str, facts: Dict[str, int]) -> Tuple[int, ...]:
    """A node's output shape from its encoded facts, with "same" padding assumed for windows."""
    if op_type in ("GlobalAveragePool", "GlobalMaxPool"):
        return 1, facts["cout"], 1, 1
    if op_type in ("Gemm", "MatMul", "Flatten", "Reshape"):
        return 1, facts["cout"]
    strides = (max(facts["stride_h"], 1), max(facts["stride_w"], 1))
    if op_type not in ("Conv", "MaxPool", "AveragePool"):
        strides = (1, 1)
    return 1, facts["cout"], -(-facts["in_h"] // strides[0]), -(-facts["in_w"] // strides[1])


def partition_encoding(encoding: GraphEncoding, absorbed, vocabulary: Sequence[str]):
    """edge_agent.fusion.partition.partition over an encoding's nodes."""
    from edge_agent.fusion.partition import partition_infos

    return partition_infos(decode_nodes(encoding, vocabulary), set(), absorbed)
