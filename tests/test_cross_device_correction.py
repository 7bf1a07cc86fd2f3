"""The per-op correction fitted with the mix of source heads (`HeadsPredictor.correct`): on a device that is a mix of
the heads times an effect of how many cell edges carry an op, the joint fit recovers both; from 10 chosen shots the
(shrunk) effect has the right shape and ranks better than the mix alone; `trainer adapt`'s predictor keeps the
correction through save and load; ONNX-level predictors take none."""

import numpy as np
from test_cross_device_adaptation import COSTS, VOCABULARY, _latency, _write_table, setup  # noqa: F401  (fixture)
from test_trainer_fit import PlantedHeads

from kernels.spaces.nb201 import parse_arch
from trainer.adapting import adapt_to_device, save_adapted
from trainer.encoding import DEFAULT_VOCABULARY
from trainer.encoding_cache import EncodingCache
from trainer.evaluation import evaluate
from trainer.examples import encode_examples, load_examples
from trainer.predictors.heads import fit_mix_and_correction, op_columns
from trainer.predictors.store import load_predictor, save_predictor
from trainer.tables import import_table

EFFECT = {"skip_connect": 0.3}  # log latency per edge carrying the op, beyond the mix


class MixOnly(PlantedHeads):
    """The adaptation without the correction: the mix fitted alone."""

    def correct(self, encodings, y, reference):
        self.correction = np.zeros(len(self.ops))


def _with_effect(base):
    """The setup's dataset with device "tc" = 2 · a^0.8 · b^0.2 · exp(Σ EFFECT over the cell's edges)."""
    tmp_path, archs, dataset, truth = base
    target = {}
    for arch in archs:
        a, b = (_latency(arch, cost) for cost in COSTS)
        target[arch] = 2.0 * a ** 0.8 * b ** 0.2 * np.exp(sum(EFFECT.get(op, 0.0) for op in parse_arch(arch)))
    _write_table(tmp_path / "effect.csv", archs, target)
    import_table(tmp_path / "effect.csv", "nb201", "arch_str", "t_ms", "tc", dataset)
    PlantedHeads.truth = truth
    return tmp_path, dataset


def _differences(effect):
    """Each op's effect minus skip_connect's: counts over a cell's 6 edges sum to 6, so only differences are defined."""
    return {op: effect[op] - effect["skip_connect"] for op in effect}


def test_joint_fit_recovers_the_mix_and_the_op_effect():
    rng = np.random.default_rng(0)
    heads = rng.normal(0.0, 1.0, (400, 2))
    counts = np.stack([np.bincount(rng.integers(0, 5, 6), minlength=5) for _ in range(400)]).astype(float)
    ops = [VOCABULARY[i] for i in op_columns(VOCABULARY)]
    effect = np.array([EFFECT.get(op, 0.0) for op in ops]) + 0.1  # a shift of all ops is no effect
    reference = np.array([0, 0, 0, 6, 0], dtype=float)  # every edge nor_conv_3x3
    log_y = heads @ [0.8, 0.2] + (counts - reference) @ effect + rng.normal(0.0, 0.02, 400)
    mix, correction = fit_mix_and_correction(heads, counts - reference, log_y, strength=0.01)
    assert np.allclose(mix, [0.8, 0.2], atol=0.02)
    found, truth = _differences(dict(zip(ops, correction))), _differences(dict(zip(ops, effect)))
    assert all(abs(found[op] - truth[op]) < 0.03 for op in ops), found
    assert np.allclose(fit_mix_and_correction(heads, counts - reference, heads @ [0.8, 0.2], 0.01)[1], 0.0, atol=1e-6)


def test_ten_shots_with_the_correction_rank_better_than_the_mix_alone(setup):  # noqa: F811
    _, dataset = _with_effect(setup)
    config = {"training": {"devices": ["a", "b"], "item_ids": []}}
    plain = evaluate(MixOnly({"heads": 2}, vocabulary=VOCABULARY), config, dataset, "tc", shots=10)
    predictor = PlantedHeads({"heads": 2}, vocabulary=VOCABULARY)
    corrected = evaluate(predictor, config, dataset, "tc", shots=10)
    assert corrected.ids == plain.ids  # the shots are the predictor's choice, the same with or without
    found = _differences(dict(zip((VOCABULARY[i] for i in predictor.ops), predictor.correction)))
    assert all(found[op] < -0.02 for op in found if op != "skip_connect")  # shrunk to zero, but skip's is the largest
    assert corrected.metrics["spearman"] > plain.metrics["spearman"] + 0.05
    assert corrected.metrics["mape_pct"] < plain.metrics["mape_pct"]


def test_adapted_predictor_keeps_the_correction_through_save_and_load(setup, tmp_path):  # noqa: F811
    _, dataset = _with_effect(setup)
    save_predictor(PlantedHeads({"heads": 2}, vocabulary=VOCABULARY), tmp_path / "src",
                   {"devices": ["a", "b"], "item_ids": []})
    predictor, config = load_predictor(tmp_path / "src")
    assert not predictor.correction.any()
    adaptation = adapt_to_device(predictor, dataset, "tc", 10)
    assert predictor.correction.any()
    save_adapted(predictor, config, tmp_path / "src", adaptation, 0, tmp_path / "adapted")
    loaded, _ = load_predictor(tmp_path / "adapted")
    assert np.array_equal(loaded.correction, predictor.correction)
    assert np.array_equal(loaded.correction_origin, predictor.correction_origin)
    examples = load_examples(dataset, ["tc"])
    encodings = encode_examples(examples, dataset, EncodingCache(dataset.encodings_dir, VOCABULARY))
    assert np.array_equal(loaded.predict(encodings), predictor.predict(encodings))
    reference = [enc for enc, ex in zip(encodings, examples) if ex.is_reference]
    assert np.allclose(loaded.predict(reference), np.exp(loaded.log_heads(reference) @ loaded.mix))


def test_onnx_level_predictors_take_no_correction():
    """The ONNX-level op one-hot counts ONNX nodes, not choices of a space: no correction, nothing extra saved."""
    assert op_columns(DEFAULT_VOCABULARY) == []
    predictor = PlantedHeads({"heads": 2}, vocabulary=DEFAULT_VOCABULARY)
    predictor.correct([], np.ones(3), None)
    assert predictor.correction.shape == (0,) and set(predictor.tensors()) == {"mix"}
