"""calib-cnn: stable ids, refused specs, weight-stratified sampling, counted sizes, and real runtimes."""

import numpy as np
import onnx
import pytest
from conftest import mutated_reference

from edge_agent.runtimes import get_runtime
from kernels.analysis import model_flops, model_params
from kernels.errors import SpaceError
from kernels.spaces import get_space, spec_from_dict
from kernels.spaces.calib_cnn import MAX_FLOPS, MAX_WEIGHT_BYTES, size_of

SPACE = get_space("calib-cnn")


def test_ids_are_stable():
    reference = SPACE.reference_spec()
    assert reference.id == "ee3e19a8e2250638"  # fixed forever for space version 2: ids name records in bundles
    assert spec_from_dict(reference.to_dict()).id == reference.id
    assert [s.id for s in SPACE.sample(2, seed=0)] == ["b1a7d49964534d58", "21c219cc47e5fcc7"]


def test_version_1_specs_still_build_as_they_did():
    from kernels.spaces.calib_cnn import REFERENCE

    old = spec_from_dict({"space": "calib-cnn", "space_version": 1, "choices": REFERENCE})
    assert old.id == "c3fdbfe84cace9f3"  # version 1's fixed reference id: its bundles name records by it
    built, new = SPACE.build(old), SPACE.build(SPACE.reference_spec())  # the same choices: the same network
    assert [n.op_type for n in built.graph.node] == [n.op_type for n in new.graph.node]
    assert [t.raw_data for t in built.graph.initializer] == [t.raw_data for t in new.graph.initializer]
    for stage, message in (({"block": "dense", "width": 96, "depth": 1, "growth": 16}, "'block' is one of"),
                           ({"block": "grouped", "width": 96, "depth": 1, "group_width": 4}, "group_width must be")):
        choices = dict(REFERENCE, stages=REFERENCE["stages"][:3] + [stage])
        spec_from_dict({"space": "calib-cnn", "space_version": 2, "choices": choices})  # new in version 2
        with pytest.raises(SpaceError, match=message):
            spec_from_dict({"space": "calib-cnn", "space_version": 1, "choices": choices})
    with pytest.raises(SpaceError, match="builds versions 2, 1"):
        spec_from_dict({"space": "calib-cnn", "space_version": 3, "choices": REFERENCE})


def _widen(c):
    c["stages"][3]["width"] = 2048
    c["stages"][3]["depth"] = 4


@pytest.mark.parametrize("mutate,message", [
    (lambda c: c.pop("act"), "exactly resolution"),
    (lambda c: c.__setitem__("resolution", 100), "resolution must be"),
    (lambda c: c.__setitem__("stem", 24.0), "stem must be"),
    (lambda c: c["stages"].pop() and c["stages"].pop(), "3 to 5 stages"),
    (lambda c: c["stages"][0].__setitem__("block", "fire"), "'block' is one of"),
    (lambda c: c["stages"].__setitem__(1, {"block": "dense", "width": 96, "depth": 2, "growth": 24}), "growth must be"),
    (lambda c: c["stages"].__setitem__(1, {"block": "dense", "width": 96, "depth": 2, "growth": 16}), "width >= 104"),
    (lambda c: c["stages"][0].pop("se"), "exactly block, width, depth, expand, kernel, se"),
    (lambda c: c["stages"][1].__setitem__("width", 100), "multiple of 8"),
    (lambda c: c["stages"][1].__setitem__("depth", True), "depth one of"),
    (lambda c: c["stages"][0].__setitem__("kernel", 7), "kernel must be"),
    (lambda c: c["stages"][0].__setitem__("se", 1), "se must be"),
    (lambda c: c["stages"][3].__setitem__("width", 392), "does not divide"),
    (_widen, "too large"),
])
def test_invalid_specs_are_refused(mutate, message):
    with pytest.raises(SpaceError, match=message) as error:
        mutated_reference(SPACE, mutate)
    assert "\n" not in str(error.value)


def test_counted_sizes_match_the_built_model():
    dense = _first(SPACE.sample(20, seed=0), "dense", False)
    for spec in [SPACE.reference_spec(), dense] + SPACE.sample(3, seed=2):
        model = SPACE.build(spec)
        weight_bytes, flops = size_of(spec.choices)
        assert weight_bytes == 4 * model_params(model)
        assert 0.95 * model_flops(model) < flops <= model_flops(model)  # adds, pools and activations uncounted


def test_sampling_deterministic_distinct_and_spans_weight_sizes():
    first = SPACE.sample(20, seed=0)
    assert [s.id for s in first] == [s.id for s in SPACE.sample(20, seed=0)] != [s.id for s in SPACE.sample(20, 1)]
    assert len({s.id for s in first}) == 20 and SPACE.reference_spec().id not in {s.id for s in first}
    sizes = [size_of(s.choices) for s in first]
    weight_mb = np.array([w for w, _ in sizes]) / 1e6
    assert weight_mb.min() < 0.5 and weight_mb.max() > 50 and max(f for _, f in sizes) <= MAX_FLOPS
    assert weight_mb.max() <= MAX_WEIGHT_BYTES / 1e6
    gaps = np.diff(np.sort(np.log(weight_mb)))
    assert gaps.max() < 0.3 * (np.log(weight_mb.max()) - np.log(weight_mb.min()))  # no large empty stretch
    assert list(weight_mb) != sorted(weight_mb)  # not handed out in size order
    assert {t["block"] for s in first for t in s.choices["stages"]} == {
        "plain", "basic", "bottleneck", "inverted", "grouped", "dense"}
    families = [len({t["block"] for t in s.choices["stages"]}) == 1 for s in first]
    assert 0 < sum(families) < len(first)  # whole families (a RegNetX-like net) beside mixes


def _run(model: onnx.ModelProto, path, runtime: str) -> np.ndarray:
    onnx.save(model, str(path))
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    return np.asarray(get_runtime(runtime).open_session(str(path), shapes, 1, 0).outputs()[0])


def _first(specs, block: str, se: bool):
    """The first spec with a stage of this block type (with squeeze-excite if se)."""
    return next(s for s in specs if any(t["block"] == block and t.get("se", False) == se for t in s.choices["stages"]))


def test_sampled_models_run_in_both_runtimes(tmp_path):
    sample = sorted(SPACE.sample(20, seed=0), key=lambda s: size_of(s.choices)[0])
    specs = [sample[0], sample[-1], _first(sample, "grouped", False), _first(sample, "inverted", True),
             _first(sample, "dense", False)]
    for k, spec in enumerate(specs):
        model = SPACE.build(spec, seed=k, fold_bn=k != 1)
        onnx.checker.check_model(model, full_check=True)
        expected = _run(model, tmp_path / "{}.onnx".format(k), "ort")
        assert expected.shape == (1, spec.choices["classes"]) and np.isfinite(expected).all()
        got = _run(model, tmp_path / "{}_mnn.onnx".format(k), "mnn").reshape(expected.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
