"""cifar-supernet: pruning invariants, stable ids, FLOPs-stratified sampling, registry and CLI."""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import mutated_reference

from kernels.analysis import analyze, model_flops
from kernels.errors import SpaceError
from kernels.spaces import get_space, list_spaces, spec_from_dict
from kernels.spaces.base import SubnetSpec
from kernels.spaces.cifar_supernet import layer_table

SPACE = get_space("cifar-supernet")


def test_ids_are_stable_and_canonical():
    reference = SPACE.reference_spec()
    assert reference.id == "3e362a2957ee3641"  # fixed forever for space version 1: ids name records in bundles
    spec = SubnetSpec("x", 1, {"b": [1, 0.5], "a": True})
    text = '{"choices":{"a":true,"b":[1,0.5]},"space":"x","space_version":1}'
    assert spec.id == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert spec_from_dict(json.loads(json.dumps(reference.to_dict()))).id == reference.id


def test_pruning_channels_lowers_flops_and_keeps_adds_consistent():
    flops = []
    for ratio in (1.0, 0.75, 0.5, 0.25):
        def prune(c, r=ratio):
            for stage in c["stages"]:
                stage["width"] = r
                for block in stage["blocks"]:
                    block["mid"] = r
        model = SPACE.build(mutated_reference(SPACE, prune))
        for info in analyze(model):
            if info.op_type == "Add":
                assert info.in_shapes[0] == info.in_shapes[1]
        flops.append(model_flops(model))
    assert flops == sorted(flops, reverse=True) and len(set(flops)) == 4


def test_each_kind_of_choice_changes_the_network():
    base = model_flops(SPACE.build(SPACE.reference_spec()))

    def remove(c):
        c["stages"][1]["blocks"][2] = {"keep": False}

    def no_skip(c):
        c["stages"][0]["blocks"][1]["skip"] = False

    def separable(c):
        c["stages"][2]["blocks"][0]["op"] = "sep3"

    def wide_kernel(c):
        c["stages"][2]["blocks"][0]["op"] = "conv5"

    assert model_flops(SPACE.build(mutated_reference(SPACE, remove))) < base
    assert model_flops(SPACE.build(mutated_reference(SPACE, separable))) < base < model_flops(SPACE.build(mutated_reference(SPACE, wide_kernel)))
    ops = [n.op_type for n in SPACE.build(mutated_reference(SPACE, no_skip)).graph.node]
    assert ops.count("Add") == 8  # 9 blocks, one skip off


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c["stages"][0]["blocks"].__setitem__(0, {"keep": False}), "first block"),
    (lambda c: c["stages"][0].__setitem__("width", 0.3), "width"),
    (lambda c: c["stages"][1]["blocks"][1].__setitem__("op", "conv7"), "op must be"),
    (lambda c: c["stages"].pop(), "stage objects"),
])
def test_invalid_specs_are_refused(mutate, message):
    with pytest.raises(SpaceError, match=message):
        mutated_reference(SPACE, mutate)
    with pytest.raises(SpaceError, match="version"):
        SPACE.spec_from_dict({"space": SPACE.name, "space_version": 99, "choices": {}})


def test_sampling_deterministic_distinct_and_spread_over_flops():
    first, again = SPACE.sample(24, seed=3), SPACE.sample(24, seed=3)
    assert [s.id for s in first] == [s.id for s in again] != [s.id for s in SPACE.sample(24, seed=4)]
    assert len({s.id for s in first}) == 24 and SPACE.reference_spec().id not in {s.id for s in first}
    flops = np.array([model_flops(SPACE.build(s)) for s in first], dtype=float)
    reference = model_flops(SPACE.build(SPACE.reference_spec()))
    assert flops.min() < 0.25 * reference and flops.max() > 0.8 * reference
    gaps = np.diff(np.sort(np.log(flops)))
    assert gaps.max() < 0.35 * (np.log(flops.max()) - np.log(flops.min()))  # no large empty stretch
    assert list(flops) != sorted(flops)  # not handed out in size order


def test_registry_and_layer_table():
    assert list_spaces() == ["calib-cnn", "cifar-supernet", "nb201"]
    with pytest.raises(SpaceError, match="unknown space"):
        get_space("imagenet")
    table = layer_table()
    assert table.count("| stage") == 9 and "MFLOPs" in table


def test_spaces_cli_json():
    result = subprocess.run([sys.executable, "-m", "edge_agent", "spaces", "--json"], capture_output=True,
                            text=True, timeout=60, check=True)
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["nb201"]["num_choices"] == 15284
    assert rows["cifar-supernet"]["reference_id"] == "3e362a2957ee3641"
    assert rows["cifar-supernet"]["input_shape"] == [1, 3, 32, 32]
