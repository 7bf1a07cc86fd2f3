"""What a profile measures: a space's reference and sampled or listed subnets, or a folder of the user's ONNX files."""

import glob
import json
import os
from dataclasses import dataclass
from typing import Dict, List

from edge_agent.bundle.schema import KIND_MODEL, KIND_REFERENCE, KIND_SUBNET, ModelRef
from edge_agent.bundle.store import Bundle
from edge_agent.errors import InputError
from edge_agent.measure.runner import Item
from edge_agent.onnx_io import load_model, sha256_bytes


@dataclass(frozen=True)
class Plan:
    reference: Item
    items: List[Item]


def space_plan(bundle: Bundle, space_name: str, subnets: int, seed: int) -> Plan:
    """Subnets are generated here on the board; the bundle keeps their specs, not their weights."""
    space = _space(space_name)
    return _subnets_plan(bundle, space, space.sample(subnets, seed))


def specs_plan(bundle: Bundle, space_name: str, specs_path: str) -> Plan:
    """The subnets a JSON list of specs names (`trainer calibration-set` writes one), kept in the bundle as sampled
    subnets are: by spec. Repeats and the reference (measured anyway) are dropped."""
    space = _space(space_name)
    specs: Dict[str, object] = {}  # spec id -> spec, in the order listed
    for index, data in enumerate(_read_spec_list(specs_path)):
        if data.get("space") != space.name:
            raise InputError("{}: spec {} is of space {!r}, not {!r}; give --space {}".format(
                specs_path, index, data.get("space"), space.name, data.get("space")))
        spec = space.spec_from_dict(data)
        specs.setdefault(spec.id, spec)
    return _subnets_plan(bundle, space, list(specs.values()))


def _read_spec_list(path: str) -> List[dict]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise InputError("--specs {}: {}".format(path, exc.strerror)) from None
    except ValueError as exc:
        raise InputError("--specs {}: not JSON ({})".format(path, exc)) from None
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise InputError("--specs {}: expected a non-empty JSON list of subnet specs".format(path))
    return data


def _space(space_name: str):
    from kernels.spaces import get_space, list_spaces

    if space_name not in list_spaces():
        raise InputError("unknown space {!r}; `edge-agent spaces` lists: {}".format(space_name, ", ".join(list_spaces())))
    return get_space(space_name)


def _subnets_plan(bundle: Bundle, space, specs) -> Plan:
    reference_spec = space.reference_spec()
    reference = _space_item(bundle, space, reference_spec, KIND_REFERENCE)
    items = [_space_item(bundle, space, spec, KIND_SUBNET) for spec in specs if spec.id != reference_spec.id]
    return Plan(reference=reference, items=items)


def _space_item(bundle: Bundle, space, spec, kind: str) -> Item:
    content = space.build(spec).SerializeToString()
    sha = sha256_bytes(content)
    path = os.path.join(bundle.cache_dir("models"), sha + ".onnx")
    if not os.path.exists(path):
        from edge_agent.bundle.files import atomic_write

        atomic_write(path, content)
    ref = ModelRef(item_id=spec.id, model_sha256=sha, name="{}:{}".format(space.name, spec.id))
    return Item(ref=ref, onnx_path=path, input_shapes=load_model(path).input_shapes, kind=kind, spec=spec.to_dict())


def folder_plan(bundle: Bundle, models_dir: str, reference_path: str) -> Plan:
    """The user's own models, stored in the bundle by content so the workstation sees exactly what ran."""
    if not os.path.isdir(models_dir):
        raise InputError("--models {} is not a directory".format(models_dir))
    paths = sorted(glob.glob(os.path.join(models_dir, "*.onnx")))
    if not paths:
        raise InputError("no .onnx files in {}".format(models_dir))
    reference = _folder_item(bundle, reference_path, KIND_REFERENCE)
    items = [_folder_item(bundle, path, KIND_MODEL) for path in paths
             if os.path.abspath(path) != os.path.abspath(reference_path)]
    return Plan(reference=reference, items=items)


def _folder_item(bundle: Bundle, path: str, kind: str) -> Item:
    info = load_model(path)
    relative = bundle.store_model(info.content, info.sha256)
    ref = ModelRef(item_id=info.sha256, model_sha256=info.sha256, model_path=relative, name=os.path.basename(path))
    return Item(ref=ref, onnx_path=os.path.join(bundle.path, relative), input_shapes=info.input_shapes, kind=kind)
