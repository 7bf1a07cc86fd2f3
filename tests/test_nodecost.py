"""The node-cost predictor: it names the conv kinds and the fused point-wise nodes, recovers a planted per-kind price
list across two devices, predicts a network it never saw from its graph alone, adapts to a third device, and survives
a save/load."""

import numpy as np
import onnx
import pytest

from kernels.builder import GraphBuilder
from trainer.cost_features import conv_kinds, fused_pointwise
from trainer.encoding import encode_model
from trainer.predictors import predictor_class
from trainer.predictors.nodecost import (
    NODE_KINDS, NODECOST_VOCABULARY, SHARED_COLUMNS, WORK_COLUMNS, fit_prices, kin_weights, node_work, robust_prices,
    summed_work)
from trainer.predictors.store import load_predictor, save_predictor

# Planted prices (per unit of node_work's scaled work) on two devices: device b is a CPU on which depthwise convs
# and calls cost relatively more.
PRICES = {
    "a": {"conv_kxk": (40.0, 0.0, 0.0, 2.0, 0.0), "conv_1x1": (55.0, 0.0, 0.0, 2.0, 0.0),
          "conv_depthwise": (0.0, 3.0, 0.0, 2.0, 0.0), "gemm": (0.0, 0.0, 5.0, 2.0, 0.0)},
    "b": {"conv_kxk": (20.0, 0.0, 0.0, 9.0, 0.0), "conv_1x1": (30.0, 0.0, 0.0, 9.0, 0.0),
          "conv_depthwise": (0.0, 6.0, 0.0, 9.0, 0.0), "gemm": (0.0, 0.0, 4.0, 9.0, 0.0)},
}


def _network(seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    b = GraphBuilder(input_shape=(1, 3, 32, 32), seed=seed, name="n{}".format(seed))
    x = b.conv(b.input, int(rng.choice([8, 16])), stride=2)
    for _ in range(int(rng.integers(1, 4))):
        x = b.dwconv(x, kernel=int(rng.choice([3, 5])))
        x = b.conv(x, int(rng.choice([8, 16, 24, 32])), kernel=1)
    return b.build([b.fc(b.global_pool(x), 10)])


def _planted_ratio(encoding, device: str) -> float:
    kind, work = node_work(encoding, NODECOST_VOCABULARY)
    prices = np.zeros((len(NODE_KINDS), len(WORK_COLUMNS)))
    for name, row in PRICES[device].items():
        prices[NODE_KINDS.index(name)] = row
    return float((work * prices[kind]).sum())


@pytest.fixture(scope="module")
def networks():
    return [encode_model(_network(seed), NODECOST_VOCABULARY) for seed in range(24)]


@pytest.fixture(scope="module")
def labels(networks):
    """[networks, 2] planted latencies as ratios to network 0 (the reference) on devices a and b."""
    latency = np.asarray([[_planted_ratio(e, d) for d in ("a", "b")] for e in networks])
    return latency / latency[0]


def test_conv_kinds():
    b = GraphBuilder(input_shape=(1, 8, 16, 16), seed=0)
    x = b.conv(b.input, 16, kernel=3, bn=False, act="none")
    x = b.conv(x, 16, kernel=1, bn=False, act="none")
    x = b.dwconv(x, bn=False, act="none")
    x = b.conv(x, 16, kernel=3, groups=4, bn=False, act="none")
    encoding = encode_model(b.build([x]), NODECOST_VOCABULARY)
    assert conv_kinds(encoding, NODECOST_VOCABULARY).argmax(axis=1).tolist() == [0, 1, 2, 3]
    kind, _ = node_work(encoding, NODECOST_VOCABULARY)
    assert [NODE_KINDS[k] for k in kind] == ["conv_kxk", "conv_1x1", "conv_depthwise", "conv_grouped"]


def test_summed_work_is_the_sum_of_node_work(networks):
    kind, work = node_work(networks[3], NODECOST_VOCABULARY)
    design = summed_work([networks[3]], NODECOST_VOCABULARY)[0]
    summed = design[:-len(SHARED_COLUMNS)].reshape(len(NODE_KINDS), len(WORK_COLUMNS))
    assert np.allclose(summed.sum(axis=0), work.sum(axis=0))
    assert np.allclose(summed[NODE_KINDS.index("conv_depthwise")], work[kind == NODE_KINDS.index("conv_depthwise")].sum(0))
    conv_flops = summed[:4, WORK_COLUMNS.index("flops")].sum()
    assert conv_flops > 0 and np.isclose(design[-2 + SHARED_COLUMNS.index("conv_flops")], conv_flops)


def test_small_map_flops_count_convs_on_a_7x7_map_from_a_larger_input():
    """The last stage of a 224×224 CNN (7×7 from 14×14) counts; a 14×14 map and an SE block's 1×1 map do not."""
    b = GraphBuilder(input_shape=(1, 8, 14, 14), seed=0)
    wide = b.conv(b.input, 16, kernel=3, bn=False, act="none")
    small = b.conv(wide, 32, kernel=3, stride=2, bn=False, act="none")
    squeeze = b.conv(b.global_pool(small), 8, kernel=1, bn=False, act="none")
    encoding = encode_model(b.build([small, squeeze]), NODECOST_VOCABULARY)
    kind, work = node_work(encoding, NODECOST_VOCABULARY)
    flops = work[kind < 4, WORK_COLUMNS.index("flops")]
    assert len(flops) == 3 and flops.min() > 0
    design = summed_work([encoding], NODECOST_VOCABULARY)[0]
    assert np.isclose(design[-2 + SHARED_COLUMNS.index("small_map_conv_flops")], flops[1])
    assert np.isclose(design[-2 + SHARED_COLUMNS.index("conv_flops")], flops.sum())


def test_learns_two_devices_and_predicts_an_unseen_network(networks, labels):
    predictor = predictor_class("nodecost")({"heads": 2})
    predictor.fit(networks[:20], labels[:20], networks[20:21], labels[20:21], seed=0)
    predicted = np.exp(predictor.log_heads(networks[21:]))
    assert np.allclose(predicted, labels[21:], rtol=0.03)
    # the devices differ: a single shared price list could not fit both
    assert not np.allclose(labels[:, 0], labels[:, 1], rtol=0.05)


def test_adapts_to_a_new_device_from_shots_and_round_trips(networks, labels, tmp_path):
    predictor = predictor_class("nodecost")({"heads": 2})
    predictor.fit(networks[:20], labels[:20], [], np.zeros((0, 2)), seed=0)
    # a new device whose every price is device a's and b's in equal parts
    mixed = labels[:, 0] * 0.5 + labels[:, 1] * 0.5
    shots = [0, 2, 5, 7, 11]
    predictor.adapt([networks[i] for i in shots], mixed[shots], seed=0)
    predicted = predictor.predict(networks[21:])
    assert np.allclose(predicted, mixed[21:], rtol=0.06)
    save_predictor(predictor, tmp_path / "p", {"devices": ["a", "b"]})
    loaded, config = load_predictor(tmp_path / "p")
    assert config["kind"] == "nodecost"
    assert np.allclose(loaded.predict(networks[21:]), predicted, rtol=1e-6)


def test_one_model_the_kinds_cannot_explain_does_not_bend_the_prices(networks, labels):
    """A model measured 3x slower than its work says (a kind its runtime runs pathologically) moves the Huber fit's
    prices far less than the least-squares fit's."""
    design = summed_work(networks[:20], NODECOST_VOCABULARY)
    y = labels[:20, 0].copy()
    y[7] *= 3.0
    relative = design / y[:, None]
    clean = np.delete(np.arange(20), 7)

    def worst_error(prices):
        return float(np.max(np.abs(design[clean] @ prices / labels[clean, 0] - 1.0)))

    assert worst_error(robust_prices(relative, delta=0.1)) < 0.02
    assert worst_error(robust_prices(relative, delta=1e6)) > 0.05


def test_kin_are_the_devices_with_the_closest_labels(labels):
    near = labels[:, 0] * np.exp(0.01 * np.sin(np.arange(len(labels))))
    y = np.column_stack([labels[:, 0], near, labels[:, 1]])
    y[3, 1] = np.nan  # a model one device did not measure
    weights = kin_weights(y, width=0.05)
    assert np.allclose(weights.sum(axis=1), 1.0)
    assert weights[0, 1] > 10 * weights[0, 2] and weights[2, 2] > 0.9


def test_a_device_with_few_labels_is_pulled_toward_its_kin(networks, labels):
    """Device c runs device a's prices but measured only 4 models: alone its fit is underdetermined; pulled toward
    its kin (a, whose labels match c's where both measured) it predicts the unseen networks."""
    design = summed_work(networks[:20], NODECOST_VOCABULARY)
    y = np.column_stack([labels[:20, 0], labels[:20, 1], np.full(20, np.nan)])
    y[[0, 4, 9, 13], 2] = labels[[0, 4, 9, 13], 0] * 1.01
    test = summed_work(networks[20:], NODECOST_VOCABULARY)

    def error_on_c(pull):
        prices = fit_prices(design, y, delta=0.1, pull=pull, width=0.05)
        return float(np.max(np.abs(test @ prices[:, 2] / labels[20:, 0] - 1.0)))

    assert error_on_c(0.1) < 0.05 < error_on_c(0.0)


def test_pointwise_chains_are_fused_and_two_tensor_ops_are_not():
    """Hard-swish written out (Add, Clip, Mul, Div) after a conv runs as one kernel; a residual add combines two
    tensors and is a pass of its own, the Relu after it is fused; a squeeze-excite gate's Mul is not fused."""
    b = GraphBuilder(input_shape=(1, 8, 8, 8), seed=0)
    x = b.conv(b.input, 8, bn=False, act="none")
    shape = b.shapes[x]
    shifted = b.op("Add", [x, b.scalar(3.0)], shape)
    clipped = b.op("Clip", [shifted, b.scalar(0.0), b.scalar(6.0)], shape)
    swish = b.op("Div", [b.op("Mul", [x, clipped], shape), b.scalar(6.0)], shape)
    y = b.conv(swish, 8, bn=False, act="none")
    residual = b.add(y, swish, act="relu")
    gated = b.squeeze_excite(residual)
    encoding = encode_model(b.build([gated]), NODECOST_VOCABULARY)
    fused = fused_pointwise(encoding, NODECOST_VOCABULARY)
    ops = [NODECOST_VOCABULARY[i] if i < len(NODECOST_VOCABULARY) else "other"
           for i in encoding.x[:-1, :len(NODECOST_VOCABULARY) + 1].argmax(axis=1)]
    assert list(zip(ops, fused.tolist())) == [
        ("Conv", False), ("Add", True), ("Clip", True), ("Mul", True), ("Div", True),  # hard-swish
        ("Conv", False), ("Add", False), ("Relu", True),  # residual add, its activation
        ("GlobalAveragePool", False), ("Conv", False), ("Relu", True), ("Conv", False), ("Sigmoid", True),
        ("Mul", False)]  # the gate


def test_a_cell_level_encoding_is_refused_in_one_line():
    from edge_agent.errors import InputError
    from trainer.cell_encoding import cell_vocabulary

    with pytest.raises(InputError, match="nodecost prices ONNX graphs"):
        predictor_class("nodecost")({"heads": 1}, vocabulary=cell_vocabulary("nb201"))
