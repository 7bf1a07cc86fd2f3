"""An item to measure, quantized: the INT8 model made from its fp32 one, cached in the bundle, with its account.

The fp32 model stays what the item is (its spec, its stored file); the INT8 one is what is measured and named by
the record (ModelRef.model_sha256, ModelRef.quantized). A model the user gave is stored in the bundle in both
precisions; a space's subnet or a kernel keeps travelling as a spec (the settings regenerate its INT8 model).
"""

import hashlib
import json
import os

from edge_agent.bundle.files import atomic_write
from edge_agent.bundle.schema import ModelRef, QuantizedModel, RunSettings
from edge_agent.measure.runner import Item, Session
from edge_agent.onnx_io import sha256_bytes

CACHE_NAME = "quant"


def quantized_item(session: Session, item: Item) -> Item:
    settings = session.settings
    paths = _cache_paths(session, item, settings)
    if not (os.path.exists(paths["onnx"]) and os.path.exists(paths["json"])):
        _make(item, settings, paths)
    with open(paths["onnx"], "rb") as handle:
        content = handle.read()
    with open(paths["json"], "r", encoding="utf-8") as handle:
        account = QuantizedModel.model_validate_json(handle.read())
    sha = sha256_bytes(content)
    onnx_path, relative = paths["onnx"], None
    if item.ref.model_path:  # the user's own model: the INT8 one travels beside it
        relative = session.bundle.store_model(content, sha)
        onnx_path = os.path.join(session.bundle.path, relative)
    ref = ModelRef(item_id=item.ref.item_id, model_sha256=sha, model_path=relative, name=item.ref.name,
                   quantized=account)
    return Item(ref=ref, onnx_path=onnx_path, input_shapes=item.input_shapes, kind=item.kind, spec=item.spec)


def _cache_paths(session: Session, item: Item, settings: RunSettings) -> dict:
    """Keyed by the fp32 model and every setting the INT8 model or its account depends on."""
    key_data = [item.ref.model_sha256, settings.quantization.model_dump(mode="json"), settings.threads,
                settings.ort_graph_optimization_level, sorted(item.input_shapes.items())]
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode("utf-8")).hexdigest()[:32]
    base = os.path.join(session.bundle.cache_dir(CACHE_NAME), key)
    return {"onnx": base + ".onnx", "json": base + ".json"}


def _make(item: Item, settings: RunSettings, paths: dict) -> None:
    from edge_agent.quant.fallback import ort_account
    from edge_agent.quant.ort_static import quantize_file

    scratch = paths["onnx"] + ".tmp"
    quantize_file(item.onnx_path, scratch, item.input_shapes, settings.quantization)
    source, int8_kernels, fp32_ops = ort_account(scratch, settings.threads,
                                                 settings.ort_graph_optimization_level or "all")
    account = QuantizedModel(source_sha256=item.ref.model_sha256, source_path=item.ref.model_path,
                             evidence_source=source, int8_kernels=int8_kernels, fp32_ops=fp32_ops)
    os.replace(scratch, paths["onnx"])
    atomic_write(paths["json"], account.model_dump_json(indent=1), overwrite=True)
