"""What a profile measures: a space's reference and sampled subnets, or a folder of the user's ONNX files."""

import glob
import os
from dataclasses import dataclass
from typing import List

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
    from kernels.spaces import get_space, list_spaces

    if space_name not in list_spaces():
        raise InputError("unknown space {!r}; `edge-agent spaces` lists: {}".format(space_name, ", ".join(list_spaces())))
    space = get_space(space_name)
    reference_spec = space.reference_spec()
    reference = _space_item(bundle, space, reference_spec, KIND_REFERENCE)
    items = [_space_item(bundle, space, spec, KIND_SUBNET) for spec in space.sample(subnets, seed)
             if spec.id != reference_spec.id]
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
