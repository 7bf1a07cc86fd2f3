"""lut/: kernel partition under fusion rules (space models, a hand-built ONNX), exact hits, the regressor and the
fallback reported as such, the JSON format round trip, and a LUT built from a real kernel-profiling bundle."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_agent.errors import InputError
from kernels.spaces import list_spaces
from lut.format import load_lut, lut_to_dict, save_lut
from edge_agent.fusion.partition import partition
from lut.table import EXACT, FALLBACK, REGRESSOR, KernelSample, fit_lut

FUSED = frozenset({("conv", "relu"), ("conv", "bn"), ("conv", "relu6"), ("add", "relu"), ("dwconv", "relu6"),
                   ("dwconv", "relu"), ("fc", "relu")})


def _hand_built():
    """Conv -> BN -> Relu, a branch: the Relu output feeds both a Conv and a residual Add; then Add -> Relu."""
    rng = np.random.RandomState(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 8, 1, 1)).astype(np.float32), "w2")
    bn = [numpy_helper.from_array(v.astype(np.float32), n) for v, n in
          zip((np.ones(8), np.zeros(8), np.zeros(8), np.ones(8)), ("s", "b", "m", "v"))]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["y"], name="relu2"),
    ]
    graph = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], [w1, w2] + bn)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_partition_hand_built():
    kernels = partition(_hand_built(), FUSED)
    assert [k.nodes for k in kernels] == [["conv1", "bn1", "relu1"], ["conv2"], ["add", "relu2"]]
    assert kernels[0].config == {"hw": 16, "cin": 3, "cout": 8, "kernel": 3, "stride": 1, "groups": 1, "act": "relu",
                                 "with": ["bn"]}
    assert kernels[2].kind == "add" and kernels[2].config["act"] == "relu"
    # with nothing fused every node is a kernel; FLOPs are conserved either way
    unfused = partition(_hand_built(), frozenset())
    assert len(unfused) == 6 and sum(k.flops for k in unfused) == sum(k.flops for k in kernels)


def test_relu_read_twice_is_not_absorbed_into_the_add_branch():
    kernels = partition(_hand_built(), FUSED)
    # relu1's output is read by conv2 and by the add: conv2 starts its own kernel and takes nothing from relu1
    assert kernels[1].absorbed == []


@pytest.mark.parametrize("space_name", list_spaces())
def test_partition_space_models(space_name):
    from kernels.spaces import get_space

    space = get_space(space_name)
    for spec in [space.reference_spec()] + space.sample(3, seed=1):
        model = space.build(spec)
        kernels = partition(model, FUSED)
        names = [n for k in kernels for n in k.nodes]
        assert sorted(names) == sorted(n.name for n in model.graph.node)  # every node in exactly one kernel
        convs = [k for k in kernels if k.kind == "conv"]
        assert convs and all("cout" in k.config and k.config["hw"] > 0 for k in convs)
        if any(n.op_type == "Relu" for n in model.graph.node):
            assert any("relu" in k.absorbed for k in kernels)


def _samples():
    rng = np.random.RandomState(0)
    samples = []
    for cin in (8, 16, 32, 64):
        for hw in (8, 16):
            config = {"hw": hw, "cin": cin, "cout": cin, "kernel": 3, "stride": 1, "act": "relu"}
            samples.append(KernelSample("conv", config, 1000.0 + cin * hw * hw * (1 + 0.01 * rng.random_sample())))
    samples.append(KernelSample("add", {"hw": 8, "cin": 8, "act": "none"}, 900.0))
    return samples


def test_exact_hits_regressor_and_fallback(tmp_path):
    table = fit_lut(_samples(), FUSED, {"runtime": "ort"}, call_overhead_ns=500.0)
    from kernels.single import build_kernel_model

    hit = partition(build_kernel_model("conv", _samples()[3].config), FUSED)[0]
    prediction = table.predict_kernel(hit)
    assert prediction.source == EXACT and prediction.latency_ns == pytest.approx(_samples()[3].latency_ns - 500.0)
    between = partition(build_kernel_model("conv", {"hw": 12, "cin": 24, "cout": 24, "kernel": 3, "stride": 1}),
                        FUSED)[0]
    assert table.predict_kernel(between).source == REGRESSOR
    pool = partition(build_kernel_model("maxpool", {"hw": 8, "cin": 8, "kernel": 2, "stride": 2}), FUSED)[0]
    assert table.predict_kernel(pool).source == FALLBACK and table.predict_kernel(pool).latency_ns > 0
    path = str(tmp_path / "lut.json")
    save_lut(table, path)
    again = load_lut(path)
    assert lut_to_dict(again) == lut_to_dict(table)
    assert again.predict_kernel(between).latency_ns == pytest.approx(table.predict_kernel(between).latency_ns)


def test_model_prediction_is_kernel_sum_plus_overhead():
    table = fit_lut(_samples(), FUSED, {"runtime": "ort"}, call_overhead_ns=500.0)
    model = _hand_built()
    total, kernels = table.predict_model(model)
    assert total == pytest.approx(sum(k.latency_ns for k in kernels) + 500.0)
    table.fit_overhead([model], [total + 2000.0])
    assert table.predict_model(model)[0] == pytest.approx(total + 2000.0)  # one model: fitted exactly


def test_the_lut_trees_predict_what_scikit_learn_fitted():
    """lut.forest exports scikit-learn's trees to the node table the LUT file holds; walking that table (any depth:
    these trees are grown until their leaves are pure) must give the forest's own predictions."""
    from sklearn.ensemble import ExtraTreesRegressor

    from edge_agent.kernelprof import regressor
    from lut import forest

    rng = np.random.RandomState(0)
    x = rng.uniform(0, 8, size=(300, 3)).astype(np.float32).astype(np.float64)  # float32 values, as the trees see
    flops, moved = np.exp(x[:, 0]) * 1e6, np.exp(x[:, 1]) * 1e3
    latency = (2e3 + flops / 50 + moved) * np.where(x[:, 2] > 5, 2.5, 1.0) * rng.uniform(0.95, 1.05, 300)
    model = forest.fit(x[:200], latency[:200], flops[:200], moved[:200])
    assert int(model["nodes"][:, 0].max()) <= 2 and len(model["roots"]) == forest.TREES
    roofline = regressor.roofline_ns(model["roofline"], flops, moved)
    reference = ExtraTreesRegressor(n_estimators=forest.TREES, random_state=0).fit(
        x[:200], np.log(latency[:200]) - np.log(roofline[:200]))
    expected = roofline[200:] * np.exp(reference.predict(x[200:]))
    assert max(tree.get_depth() for tree in reference.estimators_) > regressor.MAX_DEPTH  # the board forest's
    assert np.allclose(regressor.predict(model, x[200:], flops[200:], moved[200:]), expected, rtol=1e-9)
    held_out = np.abs(expected / latency[200:] - 1)
    assert np.median(held_out) < 0.1  # the step at x2 > 5 is learnt, not only the roofline's trend


def test_format_refuses_other_versions(tmp_path):
    table = fit_lut(_samples(), FUSED, {"runtime": "ort"})
    data = lut_to_dict(table)
    data["format_version"] = 99
    path = tmp_path / "lut.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="version"):
        load_lut(str(path))


def _mul_model(first, second, out_shape):
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in (("a", first), ("b", second))]
    graph = helper.make_graph([helper.make_node("Mul", ["a", "b"], ["y"], name="mul")], "mul", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_mul_is_keyed_on_its_output_and_the_form_of_its_factor():
    """Squeeze-excite's per-channel scale is a kernel of its own (on onnxruntime several times an elementwise Mul of
    that size), whichever operand comes first; the profiled kernel hits the LUT exactly."""
    from kernels.single import build_kernel_model

    full = [1, 96, 6, 6]
    gate_first = partition(_mul_model([1, 96, 1, 1], full, full), frozenset())[0]
    assert gate_first.config == {"hw": 6, "cin": 96, "act": "none", "operand": "channel"}
    assert partition(_mul_model(full, full, full), frozenset())[0].config["operand"] == "full"
    assert partition(_mul_model(full, [1], full), frozenset())[0].config["operand"] == "scalar"
    profiled = KernelSample("mul", {"hw": 6, "cin": 96}, 5000.0)
    elementwise = KernelSample("mul", {"hw": 6, "cin": 96, "operand": "full"}, 1500.0)
    table = fit_lut([profiled, elementwise], frozenset(), {"runtime": "ort"})
    assert table.predict_kernel(gate_first).source == EXACT
    assert table.predict_kernel(gate_first).latency_ns == pytest.approx(5000.0)
    assert table.predict_kernel(partition(build_kernel_model("mul", elementwise.config), frozenset())[0]
                                ).latency_ns == pytest.approx(1500.0)


def test_multi_output_model_partitions():
    model = onnx.load_from_string(_hand_built().SerializeToString())
    model.graph.output.append(helper.make_tensor_value_info("r1", TensorProto.FLOAT, [1, 8, 16, 16]))
    kernels = partition(model, FUSED)
    assert kernels[0].nodes == ["conv1", "bn1", "relu1"]


def test_calibration_recovers_scale_per_kernel_and_per_model_terms():
    from lut.calibration import ModelSum, fit_calibration

    sums = [1e5, 4e5, 2e5, 8e5, 3e5, 6e5]
    counts = [10, 30, 50, 20, 40, 60]
    models = [ModelSum(s, c) for s, c in zip(sums, counts)]
    measured = [1.5 * s + 1000.0 * c + 5000.0 for s, c in zip(sums, counts)]
    fitted = fit_calibration(models, measured)
    assert fitted.kernel_scale == pytest.approx(1.5, rel=1e-6)
    assert fitted.per_kernel_ns == pytest.approx(1000.0, rel=1e-6)
    assert fitted.model_overhead_ns == pytest.approx(5000.0, rel=1e-6)
    assert fitted.apply(ModelSum(5e5, 25)) == pytest.approx(1.5 * 5e5 + 25000 + 5000)


def test_few_models_fit_a_scale_and_a_non_negative_per_model_term():
    from lut.calibration import ModelSum, fit_calibration

    # three models whose kernel sums run 25 % high: a one-kernel model must still pay its call
    models = [ModelSum(4e5, 2), ModelSum(8e5, 3), ModelSum(2e5, 2)]
    measured = [0.8 * s + 8000.0 for s in (4e5, 8e5, 2e5)]
    fitted = fit_calibration(models, measured, default_overhead_ns=20000.0)  # a call overhead measured too high
    assert fitted.kernel_scale == pytest.approx(0.8, rel=1e-6) and fitted.per_kernel_ns == 0.0
    assert fitted.apply(ModelSum(3400.0, 1)) == pytest.approx(0.8 * 3400 + 8000, rel=1e-6)
    assert fit_calibration(models[:1], [3e5]).model_overhead_ns == 0.0  # never negative
    assert fit_calibration([], [], default_overhead_ns=8000.0).apply(ModelSum(3400.0, 1)) == 3400 + 8000


def test_calibration_finds_the_weight_term_where_models_outgrow_the_cache_and_only_there():
    from lut.calibration import ModelSum, fit_calibration

    rng = np.random.RandomState(0)
    mib = 2 ** 20
    weights = [w * mib for w in (0.2, 0.5, 1, 1.5, 2, 2.5, 5, 8, 14, 20, 45, 90)]
    models = [ModelSum(float(s), int(c), weight_bytes=w)
              for s, c, w in zip(rng.uniform(3e5, 2e7, 12), rng.randint(10, 80, 12), weights)]
    plain = [1.1 * m.kernel_ns + 2000.0 for m in models]
    streamed = [t + 0.05 * max(m.weight_bytes - 4 * mib, 0.0) for t, m in zip(plain, models)]
    fitted = fit_calibration(models, streamed)
    assert fitted.weight_ns_per_byte == pytest.approx(0.05, rel=1e-3)
    assert fitted.weight_cache_bytes == 4 * mib
    assert all(fitted.apply(m) == pytest.approx(t, rel=1e-6) for m, t in zip(models, streamed))
    without = fit_calibration(models, plain)
    assert without.weight_ns_per_byte == 0.0 and without.kernel_scale == pytest.approx(1.1, rel=1e-6)


def test_samples_of_a_kernel_type_this_version_cannot_build_are_skipped_and_counted():
    unknown = KernelSample("conv_chain", {"hw": 8, "cin": 8, "convs": 3}, 5000.0)  # a probe of an older session
    table = fit_lut(_samples() + [unknown], FUSED, {"runtime": "ort"})
    assert table.skipped == 1
    assert table.exact == fit_lut(_samples(), FUSED, {"runtime": "ort"}).exact


def _grouped_models(count: int, seed: int = 0):
    from lut.calibration import ModelSum

    rng = np.random.RandomState(seed)
    models = []
    for _ in range(count):
        group_ns = {"conv1x1": rng.uniform(1e5, 1e6), "conv": rng.uniform(1e5, 1e6), "dwconv": rng.uniform(0, 3e5),
                    "other": rng.uniform(1e4, 1e5)}
        models.append(ModelSum(sum(group_ns.values()), int(rng.randint(10, 80)), group_ns=group_ns))
    return models


def test_calibration_fits_a_scale_per_kernel_group_where_groups_move_apart_inside_models():
    from lut.calibration import fit_calibration

    models = _grouped_models(30)
    true_scales = {"conv1x1": 0.85, "conv": 1.0, "dwconv": 1.3, "other": 0.4}
    measured = [m.scaled_ns(true_scales) + 500.0 * m.kernels for m in models]
    fitted = fit_calibration(models, measured)
    assert fitted.group_scales == pytest.approx(true_scales, rel=1e-6)
    assert fitted.per_kernel_ns == pytest.approx(500.0, rel=1e-6)
    unseen = _grouped_models(5, seed=1)
    assert [fitted.apply(m) for m in unseen] == pytest.approx(
        [m.scaled_ns(true_scales) + 500.0 * m.kernels for m in unseen], rel=1e-6)
    # one scale where the groups move together, and where too few models (or a split sum) leave nothing to tell
    assert fit_calibration(models, [1.2 * m.kernel_ns for m in models]).group_scales == {}
    assert fit_calibration(models[:10], measured[:10]).group_scales == {}


def test_model_sums_split_the_kernels_by_scale_group():
    table = fit_lut(_samples(), FUSED, {"runtime": "ort"})
    total, kernels = table.model_sum(_hand_built())  # a 3x3 conv, a 1x1 conv and an add
    assert set(total.group_ns) == {"conv", "conv1x1", "other"}
    assert sum(total.group_ns.values()) == pytest.approx(total.kernel_ns + total.layout_ns)
    assert total.group_ns["conv1x1"] == pytest.approx(kernels[1].latency_ns)


def test_group_scales_survive_the_json_format(tmp_path):
    from lut.calibration import Calibration

    table = fit_lut(_samples(), FUSED, {"runtime": "ort"})
    table.calibration = Calibration(per_kernel_ns=300.0, group_scales={"conv": 1.1, "conv1x1": 0.8, "other": 0.5})
    path = tmp_path / "lut.json"
    save_lut(table, str(path))
    loaded = load_lut(str(path))
    assert loaded.calibration == table.calibration
    model = _hand_built()
    assert loaded.predict_model(model)[0] == pytest.approx(table.predict_model(model)[0])
    assert loaded.predict_model(model)[0] != pytest.approx(Calibration(per_kernel_ns=300.0).apply(
        table.model_sum(model)[0]))
    for tampered in (["conv", 1.1], {"conv": "fast"}):
        data = json.loads(path.read_text())
        data["calibration"]["group_scales"] = tampered
        path.write_text(json.dumps(data))
        with pytest.raises(InputError, match="corrupt LUT"):
            load_lut(str(path))


def test_a_version_5_lut_still_loads_without_a_weight_term(tmp_path):
    table = fit_lut(_samples(), FUSED, {"runtime": "ort"})
    data = lut_to_dict(table)
    data["format_version"] = 5
    for key in ("weight_ns_per_byte", "weight_cache_bytes", "group_scales"):
        del data["calibration"][key]
    path = tmp_path / "lut.json"
    path.write_text(json.dumps(data))
    model = _hand_built()
    assert load_lut(str(path)).predict_model(model)[0] == pytest.approx(table.predict_model(model)[0])
