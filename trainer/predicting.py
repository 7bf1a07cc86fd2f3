"""`trainer predict`: ONNX files, space architectures or spec files -> predicted milliseconds."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from edge_agent.errors import InputError
from trainer.encoding import GraphEncoding
from trainer.encoding_cache import EncodingCache
from trainer.predictors.base import Predictor


@dataclass(frozen=True)
class Prediction:
    input: str
    predicted_ms: float


def resolve_reference_ms(predictor: Predictor, config: Dict[str, Any], reference_ms: Optional[float]) -> float:
    """Ratio predictors need the target device's reference latency; a single-device predictor remembers its own."""
    if predictor.target != "ratio":
        return 1.0
    if reference_ms is not None:
        if reference_ms <= 0:
            raise InputError("--reference-ms must be positive")
        return reference_ms
    known = config.get("training", {}).get("reference_ms", {})
    if len(known) == 1:
        return float(next(iter(known.values())))
    raise InputError("this predictor predicts a ratio to the reference model: give the target device's reference "
                     "latency with --reference-ms")


def encode_inputs(cache: EncodingCache, files: Sequence[Path], space: Optional[str], archs: Sequence[str],
                  spec_files: Sequence[Path]) -> List[tuple]:
    """[(label, encoding)] in the order given: ONNX files, then --arch strings, then spec files."""
    encoded = [(str(path), cache.for_file(_existing(path))) for path in files]
    if archs:
        if not space:
            raise InputError("--arch needs --space")
        from trainer.tables import arch_parser

        parse = arch_parser(space)
        encoded += [(arch, cache.for_spec(parse(arch).to_dict())) for arch in archs]
    for path in spec_files:
        encoded += [(label, cache.for_spec(spec)) for label, spec in _read_specs(_existing(path))]
    if not encoded:
        raise InputError("nothing to predict: give ONNX files, --space S --arch A, or --spec FILE")
    return encoded


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


def _existing(path: Path) -> Path:
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
