import copy
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")


def tiny_conv_model(channels: int = 8, size: int = 16, dynamic: bool = False) -> onnx.ModelProto:
    """Conv -> Relu -> GlobalAveragePool, small enough to time in milliseconds."""
    rng = np.random.RandomState(channels)
    weight = numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), "b")
    dims = ["N", 3, size, size] if dynamic else [1, 3, size, size]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [dims[0], channels, 1, 1])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.fixture
def tiny_models(tmp_path):
    """Paths of three tiny ONNX models of different sizes."""
    paths = []
    for channels in (4, 16, 64):
        path = tmp_path / "conv{}.onnx".format(channels)
        onnx.save(tiny_conv_model(channels, size=32), str(path))
        paths.append(str(path))
    return paths


def run_cli(*args, env=None, timeout=300):
    """Run a console entry point as a user would, in a fresh interpreter."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m"] + list(args), capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=REPO)


def valid_counts(bundle_dir: str, item_kind: str):
    """item_id -> number of valid records of that kind: what 'loses and duplicates nothing' is checked on."""
    from edge_agent.bundle.store import read_records

    counts = {}
    for record in read_records(bundle_dir).records:
        if record.status == "ok" and record.item_kind == item_kind:
            counts[record.item_id] = counts.get(record.item_id, 0) + 1
    return counts


def _on_a_board() -> bool:
    try:
        with open("/proc/device-tree/model", "rb") as handle:
            model = handle.read().decode("utf-8", "replace")
    except OSError:
        return False
    return "Raspberry Pi" in model or "Jetson" in model or "NVIDIA" in model


def pytest_collection_modifyitems(config, items):
    """Tests marked `board` need a real Raspberry Pi or Jetson; elsewhere they are skipped, never failed."""
    if _on_a_board():
        return
    skip = pytest.mark.skip(reason="needs a real Raspberry Pi or Jetson board")
    for item in items:
        if "board" in item.keywords:
            item.add_marker(skip)


def store_space_models(bundle_dir, space, specs):
    """The specs' models written into a bundle's models/ by sha256, as the agent stores them; their ModelRefs."""
    import hashlib

    from edge_agent.bundle.schema import ModelRef

    (bundle_dir / "models").mkdir(parents=True)
    refs = []
    for spec in specs:
        data = space.build(spec).SerializeToString()
        sha = hashlib.sha256(data).hexdigest()
        (bundle_dir / "models" / "{}.onnx".format(sha)).write_bytes(data)
        refs.append(ModelRef(item_id=spec.id, model_sha256=sha, model_path="models/{}.onnx".format(sha)))
    return refs


def copy_fixture(name: str, tmp_path):
    """A writable copy of a board fixture tree (tune, cooling and clock tests change it), as a SysRoot."""
    import shutil

    from edge_agent.device.sysroot import SysRoot

    target = str(tmp_path / name)
    shutil.copytree(os.path.join(FIXTURES, name), target, symlinks=True)
    return SysRoot(target)


def mutated_reference(space, mutate):
    """The space's reference spec with `mutate(choices)` applied, validated by the space."""
    choices = copy.deepcopy(space.reference_spec().choices)
    mutate(choices)
    return space.spec_from_dict({"space": space.name, "space_version": space.version, "choices": choices})
