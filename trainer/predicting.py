"""What `trainer predict`, `trainer search` and the Python API (trainer.api) share: the target device's reference
latency, `trainer predict`'s inputs, a space sample, and predicted milliseconds from encodings."""

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from edge_agent.errors import InputError
from trainer.encoding import GraphEncoding
from trainer.encoding_cache import EncodingCache
from trainer.predictors.base import Predictor

NO_REFERENCE = ("this predictor predicts a ratio to the reference model: give the target device's reference latency "
                "(--reference-ms, or reference_ms= in Python), or a dataset that measured it with the device "
                "(--dataset/--device, or dataset=/device=)")


def resolve_reference_ms(predictor: Predictor, config: Dict[str, Any], reference_ms: Optional[float],
                         dataset: Optional[Path] = None, device: Optional[str] = None) -> float:
    """Ratio predictors need the target device's reference latency: the one given, else the dataset's measurement of
    the device (as `trainer evaluate` takes it), else the one the predictor trained with for the device (or for its
    only training device). Absolute predictors (lut) need none: 1.0."""
    if predictor.target != "ratio":
        return 1.0
    if reference_ms is not None:
        if reference_ms <= 0:
            raise InputError("the reference latency (--reference-ms, reference_ms=) must be positive")
        return reference_ms
    if dataset is not None:
        if device is None:
            raise InputError("a dataset gives the reference latency of one of its devices: give the device too")
        return _dataset_reference_ms(Path(dataset), device)
    known = config.get("training", {}).get("reference_ms", {})
    if device is not None:
        if device in known:
            return float(known[device])
        raise InputError("the predictor did not train on device {!r} (trained on: {}); {}".format(
            device, ", ".join(sorted(known)) or "none recorded", NO_REFERENCE))
    if len(known) == 1:
        return float(next(iter(known.values())))
    raise InputError(NO_REFERENCE)


def _dataset_reference_ms(root: Path, device: str) -> float:
    from trainer.dataset import Dataset
    from trainer.examples import reference_latency_ms

    dataset = Dataset(root)
    known = dataset.devices()
    if device not in known:
        raise InputError("device {!r} is not in the dataset {} (known: {})".format(device, root, ", ".join(known)))
    return reference_latency_ms(dataset.rows([device]), device)


def command_inputs(files: Sequence[Path], space: Optional[str], archs: Sequence[str],
                   spec_files: Sequence[Path]) -> Tuple[List[Union[Path, str, Dict[str, Any]]], List[str]]:
    """`trainer predict`'s inputs for LatencyPredictor.predict_many, and their labels: ONNX files, then --arch
    strings, then the specs of the spec files (labelled by file, and index where a file holds several)."""
    if archs and not space:
        raise InputError("--arch needs --space")
    inputs: List[Union[Path, str, Dict[str, Any]]] = [Path(path) for path in files]
    inputs += list(archs)
    labels = [str(path) for path in files] + list(archs)
    for path in spec_files:
        for label, spec in _read_specs(existing_file(path)):
            inputs.append(spec)
            labels.append(label)
    if not inputs:
        raise InputError("nothing to predict: give ONNX files, --space S --arch A, or --spec FILE")
    return inputs, labels


def encode_space_sample(cache: EncodingCache, space_name: str, n: int, seed: int,
                        progress: Optional[Callable[[], None]] = None
                        ) -> Tuple[List[Dict[str, Any]], List[GraphEncoding]]:
    """(specs, encodings) of n subnets sampled from the space with the seed, the reference left out."""
    from kernels.spaces import get_space

    space = get_space(space_name)
    reference = space.reference_spec().to_dict()
    specs = [s for s in (spec.to_dict() for spec in space.sample(n, seed)) if s != reference]
    encodings = []
    for spec in specs:
        encodings.append(cache.for_spec(spec))
        if progress is not None:
            progress()
    return specs, encodings


def predict(predictor: Predictor, encodings: Sequence[GraphEncoding], reference_ms: float) -> List[float]:
    return [float(v) * reference_ms for v in predictor.predict(list(encodings))]


def existing_file(path: Union[str, Path]) -> Path:
    if not Path(path).is_file():
        raise InputError("{}: no such file".format(path))
    return Path(path)


def _read_specs(path: Path) -> List[tuple]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError("{}: not JSON ({})".format(path, exc)) from None
    specs = data if isinstance(data, list) else [data]
    if not all(isinstance(s, dict) for s in specs):
        raise InputError("{}: expected a spec object or a list of spec objects".format(path))
    if len(specs) == 1:
        return [(str(path), specs[0])]
    return [("{}[{}]".format(path, i), spec) for i, spec in enumerate(specs)]
