"""Blocked layouts: the probe asks the real runtimes which kernels they block, the counted conversions match the
reorders onnxruntime puts in its optimized graph, and the LUT charges them (edge_agent.fusion.layout)."""

import functools
import os

import numpy as np
import onnx
import pytest

from edge_agent.bundle.schema import RunSettings
from edge_agent.fusion.layout import (PROBE_CHANNELS, ConversionCost, Conversions, LayoutRules, conversions,
                                      net_conversions, pattern_period)
from edge_agent.fusion.layout_probe import probe_layout
from kernels.analysis import analyze


def _settings(runtime, level=None):
    return RunSettings(runtime=runtime, runtime_version="test", threads=1, ort_graph_optimization_level=level)


@pytest.fixture(scope="module")
def ort_rules():
    return probe_layout(_settings("ort", "all"))


@pytest.fixture(scope="module")
def mnn_rules():
    return probe_layout(_settings("mnn"))


def test_onnxruntime_blocks_aligned_convs_at_level_all_only(ort_rules):
    assert ort_rules.is_blocked("conv", 16) and ort_rules.is_blocked("conv", 64)
    assert ort_rules.is_blocked("conv", 1024)  # past the probed range, by the probed period
    assert not ort_rules.reads_plain("conv", 32)
    assert ort_rules.period["maxpool"] > 1 and not ort_rules.is_blocked("maxpool", 17)
    assert ort_rules.keeps == {"broadcast_mul": False, "reshape": False, "fc": False}
    extended = probe_layout(_settings("ort", "extended"))
    assert not any(extended.blocked.values())


def test_mnn_blocks_every_conv_and_converts_its_input(mnn_rules):
    rules = mnn_rules
    assert rules.blocked["conv"] == list(range(1, PROBE_CHANNELS + 1))
    assert rules.blocked["dwconv"] == list(range(1, PROBE_CHANNELS + 1))
    assert not rules.plain_input["conv"]
    # MNN's op list keeps squeeze-excite's scaling and ShuffleNet's reshapes on NC4HW4; onnxruntime converts for them
    assert rules.keeps["broadcast_mul"] and rules.keeps["reshape"]


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "shufflenet_v2"])
def test_counted_conversions_match_mnn(mnn_rules, name, tmp_path):
    from kernels import zoo

    from edge_agent.fusion.evidence import mnn_evidence

    model = zoo.build(name, hw=32)
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    counted = conversions(analyze(model), {"input"}, {o.name for o in model.graph.output}, mnn_rules)
    assert counted.tensors == mnn_evidence(path).ops.count("ConvertTensor")


def _onnxruntime_reorders(model, tmp_path):
    """Elements of the tensors onnxruntime's optimized graph (level ALL) reorders."""
    import onnxruntime as ort

    from edge_agent.runtimes.ort import session_options

    path, optimized = str(tmp_path / "m.onnx"), str(tmp_path / "o.onnx")
    onnx.save(model, path)
    ort.InferenceSession(path, sess_options=session_options(1, "all", optimized_model_path=optimized),
                         providers=["CPUExecutionProvider"])
    sizes = {name: int(np.prod(shape)) for info in analyze(model)
             for name, shape in list(zip(info.inputs, info.in_shapes)) + list(zip(info.outputs, info.out_shapes))
             if shape}
    nodes = onnx.load(optimized).graph.node
    return sum(sizes[n.input[0]] for n in nodes if n.op_type == "ReorderInput") + \
        sum(sizes[n.output[0]] for n in nodes if n.op_type == "ReorderOutput")


@functools.lru_cache(maxsize=1)
def _space_models():
    from kernels import zoo
    from kernels.spaces import get_space

    space = get_space("cifar-supernet")
    models = [space.build(spec) for spec in space.sample(3, seed=11)]
    # squeeze-excite (a broadcast Mul), unaligned channel concats and aligned ones
    models += [zoo.build(name, hw=32) for name in ("mobilenet_v3_small", "ghostnet", "densenet_like", "resnet18")]
    return models


@pytest.mark.parametrize("index", range(7))
def test_counted_conversions_match_onnxruntime(ort_rules, index, tmp_path):
    model = _space_models()[index]
    inputs = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    counted = conversions(analyze(model), inputs, {o.name for o in model.graph.output}, ort_rules)
    assert counted.elements == _onnxruntime_reorders(model, tmp_path)
    assert counted.tensors > 0


def _rules(costs=()):
    every = list(range(1, PROBE_CHANNELS + 1))
    return LayoutRules(source="test", blocked={"conv": every, "global_avgpool": every}, plain_input={},
                       period={"conv": 1, "global_avgpool": 1}, costs=list(costs))


def test_a_chain_converts_twice_and_its_kernels_alone_twice_each():
    from kernels.builder import GraphBuilder

    builder = GraphBuilder((1, 16, 8, 8), seed=0)
    x = builder.input
    for _ in range(3):
        x = builder.conv(x, 16, kernel=1, bn=False, act="none")
    model = builder.build([builder.fc(builder.global_pool(x, "avg"), 10)])
    infos = analyze(model)
    outputs = {o.name for o in model.graph.output}
    # in: the input; out: the pooled 16 values before Flatten
    assert conversions(infos, {"input"}, outputs, _rules()) == Conversions(2, 1024 + 16)
    kernels = [[info.name] for info in infos]
    # alone: three convs convert input and output (6 x 1024), the pool its input and output (1024 + 16)
    assert net_conversions(infos, kernels, {"input"}, outputs, _rules()) == Conversions(2 - 8, 1040 - 7 * 1024 - 16)


def test_conversion_cost_from_timings():
    # two convs alone at 0.6 of the chain each, the empty call 0.1: they saved 0.1 of a 100 us chain, 2 conversions
    cost = ConversionCost(channels=16, hw=16, elements=4096, single_ratio=0.6, overhead_ratio=0.1,
                          chain_median_ns=100000.0)
    assert cost.per_conversion_ns == pytest.approx(5000.0)
    planted = [ConversionCost(channels=16, hw=hw, elements=e, single_ratio=0.5 + (2000 + 0.25 * e) / 1e6,
                              overhead_ratio=0.0, chain_median_ns=1e6)
               for hw, e in ((16, 4096), (32, 16384), (56, 50176))]
    rules = _rules(planted)
    assert rules.cost_coefficients() == pytest.approx((2000.0, 0.25), rel=1e-6)
    assert rules.cost_ns(Conversions(-3, -10000)) == pytest.approx(-3 * 2000.0 - 2500.0)
    assert _rules().cost_ns(Conversions(5, 5000)) == 0.0  # not measured: counted, charged nothing


def test_period_extends_the_probed_pattern():
    assert pattern_period([c for c in range(1, 49) if c % 4 == 0 or c < 16]) == 4
    assert pattern_period([16, 32, 48]) == 16
    rules = LayoutRules(source="test", blocked={"dwconv": [c for c in range(1, 49) if c % 4 == 0]}, plain_input={},
                        period={"dwconv": 4})
    assert rules.is_blocked("dwconv", 96) and not rules.is_blocked("dwconv", 98)


def test_lut_charges_the_net_conversions_and_keeps_its_rules_on_disk(tmp_path):
    from kernels.spaces import get_space
    from lut.format import load_lut, save_lut
    from lut.table import fit_lut

    rules = _rules([ConversionCost(channels=16, hw=16, elements=e, single_ratio=0.5 + (1000 + 0.5 * e) / 1e6,
                                   overhead_ratio=0.0, chain_median_ns=1e6) for e in (4096, 16384)])
    table = fit_lut([], frozenset({("conv", "relu")}), {"runtime": "ort"}, 1000.0, rules)  # kernels: fallback
    space = get_space("cifar-supernet")
    model = space.build(space.sample(1, seed=3)[0])
    total, kernels = table.model_sum(model)
    a, b = rules.cost_coefficients()
    inputs = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    net = net_conversions(analyze(model), [p.kernel.nodes for p in kernels], inputs,
                          {o.name for o in model.graph.output}, rules)
    assert net.tensors < 0 and total.layout_ns == pytest.approx(a * net.tensors + b * net.elements)
    path = os.path.join(str(tmp_path), "lut.json")
    save_lut(table, path)
    again = load_lut(path)
    assert again.layout == rules and again.model_sum(model)[0] == total
