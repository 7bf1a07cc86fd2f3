"""Python API: load a latency predictor once, then predict candidate networks in milliseconds, one or thousands at a
time, from a NAS loop. `trainer predict` runs on these same functions, so the API and the CLI agree to the digit.

Inputs: an ONNX file (str or Path), an `onnx.ModelProto`, a space spec (a dict as `SubnetSpec.to_dict()` writes it,
or a `kernels.spaces.SubnetSpec`), an architecture string of the space given as `space=` (e.g. NAS-Bench-201's
"|nor_conv_3x3~0|+|...|"), or a `torch.nn.Module` with `input_shape=` (exported to ONNX in memory).

Example, in a folder holding a dataset `data` that measured the device "pi4", a predictor `pred/additive` fitted on
it (`trainer fit --dataset data --device pi4 --kind additive --out pred/additive`) and a model `model.onnx`:

>>> import onnx
>>> from trainer import load_predictor
>>> p = load_predictor("pred/additive", dataset="data", device="pi4")
>>> p.predict("model.onnx")  # doctest: +ELLIPSIS
Prediction(ms=..., input='model.onnx', low_ms=..., high_ms=..., coverage=0.9)
>>> r = p.predict("model.onnx"); r.low_ms < r.ms < r.high_ms  # holds the latency with probability 0.9
True
>>> p.predict(onnx.load("model.onnx")).ms == p.predict("model.onnx").ms
True

Many candidates at once are encoded first, then predicted in one call of the predictor:

>>> from kernels.spaces import get_space
>>> candidates = [spec.to_dict() for spec in get_space("nb201").sample(20, seed=0)]
>>> results = p.predict_many(candidates)
>>> len(results), all(r.ms > 0 for r in results)
(20, True)
>>> arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
>>> p.predict(arch, space="nb201").input == arch
True

Importing this module loads no torch: only the predictor kinds that need it (gcn, mlp) and torch.nn.Module inputs do.
"""

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from edge_agent.errors import InputError
from trainer.dataset import Dataset
from trainer.encoding import GraphEncoding
from trainer.encoding_cache import EncodingCache
from trainer.intervals import DEFAULT_COVERAGE, check_coverage, interval_for
from trainer.predicting import existing_file, resolve_reference_ms
from trainer.predicting import predict as predict_ms
from trainer.predictors.base import Predictor

if TYPE_CHECKING:
    import onnx
    import torch

    from kernels.spaces.base import SubnetSpec
    from trainer.intervals import Interval

ModelInput = Union[str, "os.PathLike[str]", "onnx.ModelProto", Mapping[str, Any], "SubnetSpec", "torch.nn.Module"]
Shape = Sequence[int]


@dataclass(frozen=True)
class Prediction:
    """One input's predicted latency. `input` labels it: the path, the arch string, "<space>:<spec id>",
    "onnx:<graph name>" or "torch:<class name>". `low_ms`/`high_ms` bound the latency with probability `coverage`
    (trainer.intervals: split-conformal on held-out residuals); 0 and inf when the predictor held out too few items
    for that coverage; all three None for a predictor fitted before intervals existed."""

    ms: float
    input: str
    low_ms: Optional[float] = None
    high_ms: Optional[float] = None
    coverage: Optional[float] = None


class LatencyPredictor:
    """A loaded predictor bound to one target device (its reference latency, and its own head if it trained on it).
    Build it with `load_predictor`. Encodings are kept in memory by model hash, so a repeated candidate is not
    encoded twice."""

    def __init__(self, predictor: Predictor, config: Dict[str, Any], reference_ms: float,
                 space: Optional[str] = None, interval: Optional["Interval"] = None):
        self.predictor = predictor
        self.config = config
        self.space = space
        self.interval = interval  # trainer.intervals.Interval of every prediction; None: the predictor has none
        self._reference_ms = reference_ms
        self._cache = EncodingCache(None, predictor.vocabulary)

    @property
    def kind(self) -> str:
        return self.predictor.kind

    @property
    def reference_ms(self) -> Optional[float]:
        """The target device's reference latency the ratio is multiplied by; None for absolute predictors (lut)."""
        return self._reference_ms if self.predictor.target == "ratio" else None

    def predict(self, x: ModelInput, space: Optional[str] = None, input_shape: Optional[Shape] = None) -> Prediction:
        """The predicted latency of one input (see the module's docstring for the kinds of input)."""
        return self.predict_many([x], space=space, input_shape=input_shape)[0]

    def predict_many(self, xs: Iterable[ModelInput], space: Optional[str] = None,
                     input_shape: Optional[Shape] = None,
                     labels: Optional[Sequence[str]] = None) -> List[Prediction]:
        """Predicted latencies in the order given: every input encoded, then one predictor call for all of them
        (what makes thousands of candidates fast). `space` names the space of arch strings (default: the one given
        to load_predictor); `input_shape` is the input of torch modules; `labels` replace the inputs' own labels."""
        xs = list(xs)  # a generator of candidates too
        if labels is not None and len(labels) != len(xs):
            raise InputError("{} labels for {} inputs".format(len(labels), len(xs)))
        if not xs:
            return []
        encoded = [self._encode(x, space or self.space, input_shape) for x in xs]
        values = predict_ms(self.predictor, [encoding for _, encoding in encoded], self._reference_ms)
        names = labels if labels is not None else [label for label, _ in encoded]
        if self.interval is None:
            return [Prediction(ms, name) for name, ms in zip(names, values)]
        novel = self.interval.novel([encoding for _, encoding in encoded], self.predictor.vocabulary)
        low, high = self.interval.bounds(np.asarray(values), novel)
        return [Prediction(ms, name, float(a), float(b), self.interval.coverage)
                for name, ms, a, b in zip(names, values, low, high)]

    def _encode(self, x: ModelInput, space: Optional[str], input_shape: Optional[Shape]) -> Tuple[str, GraphEncoding]:
        """(label, encoding) of one input. Classes are tested only once their module is imported (an instance cannot
        exist before), so that telling inputs apart never imports onnx, torch or the spaces."""
        if isinstance(x, str) and space and not _looks_like_path(x):
            from trainer.tables import arch_parser

            return x, self._cache.for_spec(arch_parser(space)(x).to_dict())
        if isinstance(x, (str, os.PathLike)):
            return str(x), self._cache.for_file(_model_file(x, space))
        subnet_spec = _loaded_class("kernels.spaces.base", "SubnetSpec")
        if isinstance(x, Mapping) or (subnet_spec and isinstance(x, subnet_spec)):
            return self._encode_spec(dict(x) if isinstance(x, Mapping) else x.to_dict())
        model_proto = _loaded_class("onnx", "ModelProto")
        if model_proto and isinstance(x, model_proto):
            return "onnx:" + (x.graph.name or "model"), self._cache.for_model(x)
        module = _loaded_class("torch.nn", "Module")
        if module and isinstance(x, module):
            return "torch:" + type(x).__name__, self._cache.for_model(export_module(x, input_shape))
        raise InputError("cannot predict a {}: give an ONNX path, an onnx.ModelProto, a space spec (dict), an arch "
                         "string with space=, or a torch.nn.Module with input_shape=".format(type(x).__name__))

    def _encode_spec(self, spec: Dict[str, Any]) -> Tuple[str, GraphEncoding]:
        from kernels.spaces import spec_from_dict

        subnet = spec_from_dict(spec)
        return "{}:{}".format(subnet.space, subnet.id), self._cache.for_spec(spec)


def load_predictor(path: Union[str, "os.PathLike[str]"], dataset: Union[str, "os.PathLike[str]", None] = None,
                   device: Optional[str] = None, reference_ms: Optional[float] = None,
                   space: Optional[str] = None, coverage: float = DEFAULT_COVERAGE) -> LatencyPredictor:
    """Load the predictor directory `trainer fit` wrote, for one target device.

    Predictors of a ratio to the reference model need the device's reference latency: `reference_ms`, else the
    median of its reference measurements in `dataset` (`device` names it), else the one the predictor trained with
    for `device` or for its only training device; otherwise InputError says what to give. Predictors of absolute
    latency (lut) need none. A `device` the predictor trained on also picks its own output head. `space` is the
    default space of arch strings. Each prediction's interval holds the latency with probability `coverage`, from
    the held-out residuals of the device (trainer.intervals.interval_for). Adapting to a new device from its
    measurements is `trainer adapt`'s job."""
    from trainer.predictors.store import load_predictor as load_stored

    check_coverage(coverage)
    predictor, config = load_stored(Path(path))
    reference = resolve_reference_ms(predictor, config, reference_ms, dataset, device)
    trained = config.get("training", {}).get("devices", [])
    if device in trained and hasattr(predictor, "select_device"):
        predictor.select_device(trained.index(device))  # as `trainer evaluate` scores a training device
    elif dataset is not None and device is not None:
        predictor.bind_device(Dataset(Path(dataset)), device)
    return LatencyPredictor(predictor, config, reference, space, interval_for(config, device, coverage))


def export_module(module: "torch.nn.Module", input_shape: Optional[Shape]) -> "onnx.ModelProto":
    """The module exported to ONNX in memory (eval mode, zeros of `input_shape`), at the opset the spaces build.
    The TorchScript exporter (dynamo=False) needs no onnxscript and gives the same graph every run; its deprecation
    warning is silenced because a user cannot act on it."""
    import io

    import onnx
    import torch

    from kernels.builder import OPSET

    if not input_shape:
        raise InputError("a torch.nn.Module needs input_shape=, e.g. (1, 3, 224, 224)")
    buffer = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (torch.zeros(*input_shape),), buffer, dynamo=False, opset_version=OPSET)
    finally:
        module.train(was_training)
    return onnx.load_from_string(buffer.getvalue())


def _looks_like_path(text: str) -> bool:
    return text.endswith(".onnx") or Path(text).is_file()


def _model_file(path: Union[str, "os.PathLike[str]"], space: Optional[str]) -> Path:
    if not Path(path).is_file() and not space and not str(path).endswith(".onnx"):
        raise InputError("{}: no such file (an architecture string needs space=)".format(path))
    return existing_file(path)


def _loaded_class(module: str, name: str) -> Optional[type]:
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None
