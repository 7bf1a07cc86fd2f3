"""import-table, fit, save/load, predict and evaluate on a small synthetic NB201 table."""

import csv
import hashlib
import json

import numpy as np
import pytest

from edge_agent.errors import InputError
from kernels.spaces import get_space
from kernels.spaces.nb201 import parse_arch, spec_to_arch
from trainer.cli import main
from trainer.dataset import Dataset
from trainer.encoding_cache import EncodingCache
from trainer.evaluation import evaluate
from trainer.examples import encode_examples, load_examples
from trainer.fitting import fit
from trainer.predictors import register
from trainer.predictors.base import Predictor
from trainer.predictors.heads import SHRINK_GRID, HeadsPredictor, choose_strength, fit_mix
from trainer.predictors.store import load_predictor, save_predictor
from trainer.tables import import_table

COST = {"none": 0.1, "skip_connect": 0.0, "avg_pool_3x3": 0.6, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}
OTHER_COST = {"none": 0.3, "skip_connect": 0.2, "avg_pool_3x3": 2.5, "nor_conv_1x1": 0.4, "nor_conv_3x3": 0.8}
SMALL = {"hidden": 16, "layers": 2, "epochs": 40, "patience": 40, "batch_size": 16}


def _latency(arch: str, cost=COST) -> float:
    """Synthetic: a cost per op, every edge computed (as the space builds it); the edge's position weighs in a
    little so that no two archs tie."""
    return 2.0 + sum(cost[op] * (1 + 0.03 * k) for k, op in enumerate(parse_arch(arch)))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    space = get_space("nb201")
    archs = [spec_to_arch(s) for s in space.sample(48, seed=1)] + [spec_to_arch(space.reference_spec())]
    path = tmp_path_factory.mktemp("table") / "lat.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch_str", "output_connected", "dev_ms", "other_ms", "mixed_ms"])
        for arch in archs:
            dev, other = _latency(arch), _latency(arch, OTHER_COST)
            writer.writerow([arch, 1, dev, other, 3.0 * dev ** 0.7 * other ** 0.3])
        writer.writerow([archs[0].replace("nor_conv_3x3", "skip_connect"), 1, "", 1.0])  # blank
        writer.writerow(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 1, 5.0, 5.0])  # unreachable output
        writer.writerow([archs[1], 0, 5.0, 5.0])  # flagged disconnected
    return path


@pytest.fixture(scope="module")
def dataset(table, tmp_path_factory):
    ds = Dataset(tmp_path_factory.mktemp("ds"), create=True)
    import_table(table, "nb201", "arch_str", "dev_ms", "dev", ds)
    import_table(table, "nb201", "arch_str", "other_ms", "other", ds)
    import_table(table, "nb201", "arch_str", "mixed_ms", "mixed", ds)
    return ds


def test_import_table_counts_skipped_rows_and_is_idempotent(table, tmp_path):
    ds = Dataset(tmp_path / "ds", create=True)
    report = import_table(table, "nb201", "arch_str", "dev_ms", "dev", ds)
    assert (report.imported, report.skipped_blank, report.skipped_disconnected) == (49, 1, 2)
    assert report.reference_ms == pytest.approx(2.0 + 3.0 * sum(1 + 0.03 * k for k in range(6)))
    again = import_table(table, "nb201", "arch_str", "dev_ms", "dev", ds)
    assert again.already_imported and len(ds.rows()) == 49
    rows = ds.rows()
    assert {r["item_kind"] for r in rows} == {"subnet", "reference"}
    assert all(r["ratio"] == pytest.approx(r["latency_ms"] / report.reference_ms) for r in rows)


def test_gcn_fit_learns_and_round_trips(dataset, tmp_path):
    result = fit(dataset, ["dev"], "gcn", 40, 0, SMALL, tmp_path / "pred")
    errors = result.history.val_errors
    assert min(errors[-10:]) < 0.5 * errors[0]  # validation error falls
    loaded, config = load_predictor(tmp_path / "pred")
    assert set(config["training"]["item_ids"]) == set(result.train_items) | set(result.val_items)
    examples = load_examples(dataset, ["dev"])
    encodings = encode_examples(examples, dataset, EncodingCache(dataset.encodings_dir))
    assert np.array_equal(result.predictor.predict(encodings), loaded.predict(encodings))


@pytest.mark.parametrize("kind", ["mlp", "flops", "additive"])
def test_other_kinds_fit_and_round_trip(dataset, tmp_path, kind):
    result = fit(dataset, ["dev", "other"], kind, 30, 1, {"epochs": 30} if kind == "mlp" else None, tmp_path / kind)
    loaded, config = load_predictor(tmp_path / kind)
    encodings = encode_examples(load_examples(dataset, ["dev"]), dataset, EncodingCache(dataset.encodings_dir))
    assert np.allclose(result.predictor.predict(encodings), loaded.predict(encodings))
    heads = loaded.log_heads(encodings)
    assert heads.shape == (len(encodings), 2) and np.allclose(loaded.mix, [0.5, 0.5])
    scored = evaluate(loaded, config, dataset, "other")  # a training device: its own head
    assert loaded.mix.tolist() == [0.0, 1.0]
    assert scored.metrics["n"] == len(load_examples(dataset, ["other"])) - 1 - len(config["training"]["item_ids"])


@register("planted")
class PlantedPredictor(Predictor):
    """Knows every item's true ratio: evaluate must score it at 100 %."""

    truth = {}

    def raw_predict(self, encodings):
        return np.asarray([self.truth[hashlib.sha256(e.x.tobytes()).hexdigest()] for e in encodings])

    def tensors(self):
        return {"unused": np.zeros(1)}

    def load_tensors(self, tensors):
        pass


@register("planted-heads")
class PlantedHeads(HeadsPredictor):
    """Knows every item's true ratio on each training device, one head each."""

    truth = {}

    def log_heads(self, encodings):
        return np.log([self.truth[hashlib.sha256(e.x.tobytes()).hexdigest()] for e in encodings])

    def tensors(self):
        return self.mix_tensors()

    def load_tensors(self, tensors):
        self.load_mix(dict(tensors))


def test_new_device_mix_of_source_heads_is_fitted_to_the_shots(dataset, tmp_path):
    """mixed = 3 · dev^0.7 · other^0.3, so its log ratio is 0.7 · dev's + 0.3 · other's: 10 shots find that mix."""
    cache = EncodingCache(dataset.encodings_dir)
    examples = load_examples(dataset, ["other"])  # "other" measured every item "dev" did, and one more
    dev = {e.item_id: e.ratio for e in load_examples(dataset, ["dev"])}
    PlantedHeads.truth = {hashlib.sha256(enc.x.tobytes()).hexdigest(): (dev.get(ex.item_id, ex.ratio), ex.ratio)
                          for enc, ex in zip(encode_examples(examples, dataset, cache), examples)}
    save_predictor(PlantedHeads({"heads": 2}), tmp_path / "heads", {"devices": ["dev", "other"], "item_ids": []})
    predictor, config = load_predictor(tmp_path / "heads")
    zero = evaluate(predictor, config, dataset, "mixed", shots=0)
    assert np.allclose(predictor.mix, [0.5, 0.5]) and zero.metrics["within_5"] < 1.0
    ten = evaluate(predictor, config, dataset, "mixed", shots=10)
    assert np.allclose(predictor.mix, [0.7, 0.3], atol=0.02) and ten.metrics["within_5"] == 1.0
    evaluate(predictor, config, dataset, "other")
    assert predictor.mix.tolist() == [0.0, 1.0]  # a training device predicts with its own head


def test_mix_shrinks_toward_the_average():
    heads = np.log(np.random.default_rng(0).uniform(0.2, 1.0, size=(8, 3)))
    target = heads @ np.array([0.2, 0.0, 0.8])
    assert np.allclose(fit_mix(heads, target, 1e-6), [0.2, 0.0, 0.8], atol=1e-3)
    assert np.allclose(fit_mix(heads, target, 1e6), [1 / 3] * 3, atol=1e-3)
    assert choose_strength(heads, target) == min(SHRINK_GRID)


def test_evaluate_scores_planted_exact_predictor_at_100(dataset, tmp_path):
    examples = load_examples(dataset, ["other"])
    encodings = encode_examples(examples, dataset, EncodingCache(dataset.encodings_dir))
    PlantedPredictor.truth = {hashlib.sha256(e.x.tobytes()).hexdigest(): ex.ratio for e, ex in zip(encodings, examples)}
    predictor = PlantedPredictor()
    save_predictor(predictor, tmp_path / "planted", {"devices": ["other"], "item_ids": [examples[0].item_id],
                                                     "reference_ms": {"other": examples[0].reference_ms}})
    loaded, config = load_predictor(tmp_path / "planted")
    result = evaluate(loaded, config, dataset, "other")
    assert result.metrics["n"] == len(examples) - 2  # neither the trained item nor the reference is scored
    assert result.metrics["within_10"] == 1.0 and result.metrics["within_5"] == 1.0
    assert result.metrics["mean_accuracy"] == pytest.approx(1.0)
    assert result.metrics["spearman"] == pytest.approx(1.0)
    cross = evaluate(loaded, dict(config, training={"devices": ["dev"]}), dataset, "other", shots=5)
    assert cross.metrics["n"] == len(examples) - 1 - 5 and cross.metrics["within_5"] == 1.0


def test_cli_fit_predict_evaluate(dataset, tmp_path, capsys):
    pred = tmp_path / "p"
    with pytest.raises(SystemExit) as done:
        main(["fit", "--dataset", str(dataset.root), "--device", "dev", "--train-size", "20", "--hidden", "8",
              "--layers", "2", "--epochs", "3", "--out", str(pred)])
    assert done.value.code == 0
    space = get_space("nb201")
    arch = spec_to_arch(space.reference_spec())
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(space.reference_spec().to_dict()))
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["predict", "--predictor", str(pred), "--space", "nb201", "--arch", arch, "--spec", str(spec_file),
              "--reference-ms", "10", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and [o["input"] for o in out] == [arch, str(spec_file)]
    assert out[0]["predicted_ms"] == pytest.approx(out[1]["predicted_ms"]) and out[0]["predicted_ms"] > 0
    csv_out, png = tmp_path / "pred.csv", tmp_path / "plot.png"
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--predictor", str(pred), "--dataset", str(dataset.root), "--device", "other",
              "--shots", "3", "--json", "--predictions-out", str(csv_out), "--plot", str(png)])
    report = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and report["mode"] == "new device" and report["metrics"]["n"] == 50 - 1 - 3  # "other" also has the row blank in dev_ms
    rows = list(csv.DictReader(csv_out.read_text().splitlines()))
    assert list(rows[0]) == ["id", "measured_ms", "predicted_ms", "low_ms", "high_ms"]
    assert len(rows) == 46 and png.stat().st_size > 1000
    if report["interval"] is not None:  # each row's bounds hold its prediction
        assert all(float(r["low_ms"]) <= float(r["predicted_ms"]) <= float(r["high_ms"]) for r in rows)


def test_mismatched_predictor_is_refused(dataset, tmp_path, capsys):
    fit(dataset, ["dev"], "flops", 10, 0, None, tmp_path / "p")
    config_path = tmp_path / "p" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps(dict(config, vocabulary=config["vocabulary"] + ["NewOp"])))
    with pytest.raises(InputError, match="vocabulary"):
        load_predictor(tmp_path / "p")
    config_path.write_text(json.dumps(dict(config, format_version=99)))
    with pytest.raises(SystemExit) as done:
        main(["predict", "--predictor", str(tmp_path / "p"), "--space", "nb201", "--arch", "x"])
    assert done.value.code == 1 and "version 99 is not supported" in capsys.readouterr().err


def test_cell_input_mode_fits_and_predicts_archs_only(dataset, tmp_path, capsys):
    pred = tmp_path / "cell"
    with pytest.raises(SystemExit) as done:
        main(["fit", "--dataset", str(dataset.root), "--device", "dev", "--kind", "gcn", "--train-size", "40",
              "--hidden", "16", "--layers", "2", "--epochs", "30", "--cell-space", "nb201", "--out", str(pred)])
    assert done.value.code == 0
    loaded, config = load_predictor(pred)
    assert loaded.vocabulary[0] == "cell:nb201"
    result = evaluate(loaded, config, dataset, "dev")
    assert result.metrics["spearman"] > 0.5  # 40 cells of a per-op cost table: learnt, not memorised
    space = get_space("nb201")
    onnx_path = tmp_path / "ref.onnx"
    onnx_path.write_bytes(space.build(space.reference_spec()).SerializeToString())
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["predict", "--predictor", str(pred), "--reference-ms", "10", str(onnx_path)])
    assert done.value.code == 1 and "not ONNX models" in capsys.readouterr().err


def test_additive_recovers_an_additive_cost(dataset, tmp_path):
    # The synthetic "dev" latency is a sum of per-op costs: a node-additive model must fit it much better than FLOPs.
    scores = {}
    for kind in ("additive", "flops"):
        fit(dataset, ["dev"], kind, 36, 0, None, tmp_path / kind)
        loaded, config = load_predictor(tmp_path / kind)
        scores[kind] = evaluate(loaded, config, dataset, "dev").metrics["mape_pct"]
    assert scores["additive"] < 0.5 * scores["flops"]


def test_search_keeps_the_most_flops_within_the_budget(dataset, tmp_path, capsys):
    pred, specs = tmp_path / "p", tmp_path / "found.json"
    with pytest.raises(SystemExit) as done:
        main(["fit", "--dataset", str(dataset.root), "--device", "dev", "--kind", "flops", "--out", str(pred)])
    assert done.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["search", "--predictor", str(pred), "--space", "nb201", "--budget-ms", "6", "--candidates", "60",
              "--top", "5", "--out", str(specs), "--json"])
    found = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and 1 <= len(found) <= 5
    assert all(f["predicted_ms"] <= 6 for f in found)
    assert [f["flops"] for f in found] == sorted((f["flops"] for f in found), reverse=True)
    assert json.loads(specs.read_text()) == [f["spec"] for f in found]
    reference = get_space("nb201").reference_spec().to_dict()
    assert reference not in [f["spec"] for f in found]
    with pytest.raises(SystemExit) as done:  # a wider budget keeps at least as much capacity
        main(["search", "--predictor", str(pred), "--space", "nb201", "--budget-ms", "60", "--candidates", "60",
              "--top", "5", "--json"])
    wider = json.loads(capsys.readouterr().out)
    assert done.value.code == 0 and wider[0]["flops"] >= found[0]["flops"]
    with pytest.raises(SystemExit) as done:
        main(["search", "--predictor", str(pred), "--space", "nb201", "--budget-ms", "0.001", "--candidates", "20"])
    err = capsys.readouterr().err
    assert done.value.code != 0 and "no sampled subnet" in err and "Traceback" not in err
