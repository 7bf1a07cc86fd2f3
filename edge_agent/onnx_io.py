"""Reading user ONNX files: validation with one-line errors, static input shapes, content hashes."""

import hashlib
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

from edge_agent.errors import InputError


@dataclass(frozen=True)
class ModelInfo:
    path: str
    sha256: str
    input_shapes: Dict[str, List[int]]
    content: bytes  # the bytes to measure: the file itself, or a copy with the given input shapes fixed


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_input_shapes(values: List[str]) -> Dict[str, List[int]]:
    """`--input-shape name=1,3,224,224` (repeatable)."""
    shapes = {}
    for value in values:
        name, sep, dims = value.partition("=")
        try:
            parsed = [int(d) for d in dims.split(",")]
        except ValueError:
            parsed = []
        if not sep or not name or not parsed or min(parsed) < 1:
            raise InputError("bad --input-shape {!r}: expected NAME=D1,D2,... with positive dims".format(value))
        shapes[name] = parsed
    return shapes


def load_model(path: str, input_shapes: Optional[Dict[str, List[int]]] = None) -> ModelInfo:
    import onnx

    if not os.path.isfile(path):
        raise InputError("no such model file: {}".format(path))
    with open(path, "rb") as handle:
        raw = handle.read()
    try:
        model = onnx.load_from_string(raw)
    except Exception as exc:  # protobuf raises DecodeError and friends for anything that is not a ModelProto
        raise InputError("{} is not an ONNX model ({})".format(path, type(exc).__name__)) from exc
    if not model.graph.node:
        raise InputError("{} is not an ONNX model (no graph nodes)".format(path))
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise InputError("{} is a broken ONNX model: {}".format(path, str(exc).strip().splitlines()[0])) from exc
    overrides = dict(input_shapes or {})
    shapes = _static_input_shapes(model, overrides, path)
    if overrides:
        _fix_input_dims(model, shapes)
        raw = model.SerializeToString()
    return ModelInfo(path=path, sha256=sha256_bytes(raw), input_shapes=shapes, content=raw)


def _static_input_shapes(model, overrides: Dict[str, List[int]], path: str) -> Dict[str, List[int]]:
    initializers = {init.name for init in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    unknown = set(overrides) - {i.name for i in graph_inputs}
    if unknown:
        raise InputError("--input-shape names no input of {}: {}".format(path, ", ".join(sorted(unknown))))
    shapes = {}
    for graph_input in graph_inputs:
        dims = graph_input.type.tensor_type.shape.dim
        if graph_input.name in overrides:
            if len(overrides[graph_input.name]) != len(dims):
                raise InputError("--input-shape for {!r} has {} dims, the model has {}".format(
                    graph_input.name, len(overrides[graph_input.name]), len(dims)))
            shapes[graph_input.name] = overrides[graph_input.name]
            continue
        if any(not d.HasField("dim_value") or d.dim_value < 1 for d in dims):
            shown = ",".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)
            raise InputError("input {!r} of {} has dynamic dims [{}]; give --input-shape {}=1,3,224,224 (say)".format(
                graph_input.name, path, shown, graph_input.name))
        shapes[graph_input.name] = [d.dim_value for d in dims]
    return shapes


def _fix_input_dims(model, shapes: Dict[str, List[int]]) -> None:
    for graph_input in model.graph.input:
        if graph_input.name in shapes:
            for dim, value in zip(graph_input.type.tensor_type.shape.dim, shapes[graph_input.name]):
                dim.Clear()
                dim.dim_value = value
