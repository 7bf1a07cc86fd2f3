"""Few-shot adaptation on a new device (evaluate --shots K): it sees only the K shots and the reference, and the mix
of source heads it fits ranks the device better than the 0-shot average."""

import csv
import hashlib
import json

import numpy as np
import pytest

from kernels.spaces import get_space
from kernels.spaces.nb201 import parse_arch, spec_to_arch
from trainer.cell_encoding import cell_vocabulary
from trainer.dataset import Dataset
from trainer.encoding_cache import EncodingCache
from trainer.evaluation import evaluate
from trainer.examples import encode_examples, load_examples
from trainer.predictors.heads import HeadsPredictor
from trainer.tables import import_table

VOCABULARY = cell_vocabulary("nb201")
COSTS = ({"none": 0.1, "skip_connect": 0.0, "avg_pool_3x3": 0.6, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0},
         {"none": 0.3, "skip_connect": 0.2, "avg_pool_3x3": 2.5, "nor_conv_1x1": 0.4, "nor_conv_3x3": 0.8})
SHOTS = 10


def _latency(arch, cost):
    return 2.0 + sum(cost[op] * (1 + 0.03 * k) for k, op in enumerate(parse_arch(arch)))


def _write_table(path, archs, target):
    """Source devices a and b; the new device t is 2 · a^0.8 · b^0.2 unless `target` gives its latency per arch."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch_str", "output_connected", "a_ms", "b_ms", "t_ms"])
        for arch in archs:
            a, b = (_latency(arch, cost) for cost in COSTS)
            writer.writerow([arch, 1, a, b, target.get(arch, 2.0 * a ** 0.8 * b ** 0.2)])


class RecordingHeads(HeadsPredictor):
    """Knows the source devices' true ratios (one head each) and records what adaptation is given."""

    def __init__(self, truth, **kwargs):
        super().__init__({"heads": 2}, vocabulary=VOCABULARY, **kwargs)
        self.truth = truth
        self.adapted_on = []

    def log_heads(self, encodings):
        return np.log([self.truth[hashlib.sha256(e.x.tobytes()).hexdigest()] for e in encodings])

    def adapt(self, encodings, y, seed):
        self.adapted_on.append(sorted(np.round(y, 9)))
        super().adapt(encodings, y, seed)


@pytest.fixture()
def setup(tmp_path):
    space = get_space("nb201")
    archs = [spec_to_arch(s) for s in space.sample(40, seed=3)] + [spec_to_arch(space.reference_spec())]
    _write_table(tmp_path / "lat.csv", archs, {})
    dataset = Dataset(tmp_path / "ds", create=True)
    for device in ("a", "b", "t"):
        import_table(tmp_path / "lat.csv", "nb201", "arch_str", device + "_ms", device, dataset)
    examples = load_examples(dataset, ["a", "b"])
    by_device = {d: {e.item_id: e.ratio for e in examples if e.device == d} for d in ("a", "b")}
    sources = [e for e in examples if e.device == "a"]
    encodings = encode_examples(sources, dataset, EncodingCache(dataset.encodings_dir, VOCABULARY))
    truth = {hashlib.sha256(enc.x.tobytes()).hexdigest(): (by_device["a"][ex.item_id], by_device["b"][ex.item_id])
             for enc, ex in zip(encodings, sources)}
    return tmp_path, archs, dataset, truth


def test_adaptation_sees_only_the_shots_and_the_reference(setup):
    tmp_path, archs, dataset, truth = setup
    config = {"training": {"devices": ["a", "b"], "item_ids": []}}
    predictor = RecordingHeads(truth)
    first = evaluate(predictor, config, dataset, "t", shots=SHOTS)
    target = {e.item_id: e.ratio for e in load_examples(dataset, ["t"])}
    shot_ids = set(target) - set(first.ids)
    assert len(shot_ids) == SHOTS + 1  # the shots and the reference, none of them scored
    assert predictor.adapted_on == [sorted(np.round([target[i] for i in shot_ids], 9))]
    assert 1.0 in predictor.adapted_on[0]  # the reference's ratio

    # A device that agrees with t on the shots and the reference only: the same adaptation, the same predictions.
    item_of = {json.loads(r["spec_json"])["choices"]["arch"]: r["item_id"] for r in dataset.rows(["t"])}
    scored_archs = {a for a in archs if item_of[a] in set(first.ids)}
    _write_table(tmp_path / "changed.csv", archs, {a: 50.0 + 7.0 * (i % 5) for i, a in enumerate(sorted(scored_archs))})
    import_table(tmp_path / "changed.csv", "nb201", "arch_str", "t_ms", "t2", dataset)
    second = evaluate(RecordingHeads(truth), config, dataset, "t2", shots=SHOTS)
    assert second.ids == first.ids
    assert np.allclose(second.predicted_ms, first.predicted_ms)
    assert not np.allclose(second.measured_ms, first.measured_ms)


def test_ten_shots_rank_better_than_the_average(setup):
    _, _, dataset, truth = setup
    config = {"training": {"devices": ["a", "b"], "item_ids": []}}
    predictor = RecordingHeads(truth)
    zero = evaluate(predictor, config, dataset, "t", shots=0)
    assert predictor.mix.tolist() == [0.5, 0.5]
    ten = evaluate(predictor, config, dataset, "t", shots=SHOTS)
    assert np.allclose(predictor.mix, [0.8, 0.2], atol=0.05)
    assert ten.metrics["spearman"] > zero.metrics["spearman"]
    assert ten.metrics["mape_pct"] < zero.metrics["mape_pct"]

