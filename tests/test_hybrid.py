"""The hybrid predictor (trainer.predictors.hybrid) on a real onnxruntime kernel profile: its node features are
present, normalized by the reference's LUT total and reproducible; fitted on a planted device whose whole models take
exactly their kernel sum times a constant, it predicts a second planted device, whose kernels cost differently, from
that device's kernel profile alone (0 shots); saved and loaded, it keeps the device it was bound to."""

import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest
from conftest import run_cli

from tests.test_trainer_lut import FAST
from trainer.dataset import Dataset, Source
from trainer.encoding import encode_model
from trainer.evaluation import evaluate
from trainer.ingest import ingest
from trainer.hybrid_features import (GRAPH_COLUMNS, NODE_FEATURES, device_kernels, graph_design, lut_total_ns,
                                      node_features)
from trainer.predictors.hybrid import HYBRID_VOCABULARY
from trainer.predictors.lut import device_lut
from trainer.predictors.store import load_predictor

# device b: its conv kernels twice device a's, its adds half: no constant turns one device's ratios into the other's
KERNEL_FACTORS = {"a": {}, "b": {"conv": 2.0, "add": 0.5}}
# (channels, input size, conv blocks): kernel counts vary, so calls and a per-model constant are told apart
SHAPES = [(4, 8, 1), (4, 32, 3), (8, 16, 2), (16, 8, 4), (16, 48, 1), (24, 24, 2), (32, 32, 1), (48, 16, 3),
          (8, 64, 2), (32, 8, 5), (12, 40, 4), (20, 12, 6)]
REFERENCE_SHAPE = (16, 32, 2)


def _conv_net(channels: int, size: int, blocks: int) -> onnx.ModelProto:
    """A stem conv, residual blocks (conv + relu, add), a max pool from 3 blocks on, global pooling: conv and add
    kernels, and pools the profile never measured (the LUT's fallback), of varying sizes."""
    from kernels.builder import GraphBuilder

    graph = GraphBuilder((1, 3, size, size), seed=channels + blocks)
    x = graph.conv(graph.add_input((1, 3, size, size)), channels)
    for _ in range(blocks - 1):
        x = graph.add(x, graph.conv(x, channels))
    if blocks >= 3:
        x = graph.pool(x, "max")
    return graph.build([graph.global_pool(x)])


def _kernel_rows(rows, device):
    out = []
    for row in rows:
        if row["item_kind"] != "kernel":
            continue
        factor = KERNEL_FACTORS[device].get(json.loads(row["spec_json"]).get("kernel_type"), 1.0) \
            if row["spec_json"] else 1.0
        out.append(dict(row, device=device, row_id="{}-{}".format(device, row["row_id"]),
                        ratio=row["ratio"] * factor if row["ratio"] else row["ratio"]))
    return out


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A dataset of devices a and b: a real kernel profile's rows (b's rescaled), its fusion rules, and whole-model
    rows whose ratio is exactly the LUT total's ratio to the reference's on the device."""
    root = tmp_path_factory.mktemp("hybrid")
    bundle = root / "bundle"
    for command in (["profile", "--kernels", "--kernel-types", "conv,add", "--kernel-samples", "5"],
                    ["detect-fusion", "--case", "conv+relu", "--case", "conv+bn"]):
        done = run_cli("edge_agent", *command, "--out", str(bundle), *FAST)
        assert done.returncode in (0, 3), done.stderr  # 3: some kernel's timing was invalid, the others serve
    source_dir, dataset_dir, models = root / "source", root / "ds", root / "models"
    ingest(bundle, Dataset(source_dir, create=True), device="a")
    source = Dataset(source_dir)
    rows = source.rows(["a"])
    template = next(r for r in rows if r["item_kind"] == "kernel" and r["valid"])
    dataset = Dataset(dataset_dir, create=True)
    models.mkdir()
    paths = {}
    for shape in [REFERENCE_SHAPE] + SHAPES:
        path = models / "net{}x{}x{}.onnx".format(*shape)
        onnx.save(_conv_net(*shape), str(path))
        paths[shape] = path
    encodings = {shape: encode_model(onnx.load(str(p)), HYBRID_VOCABULARY) for shape, p in paths.items()}
    shas = {shape: hashlib.sha256(p.read_bytes()).hexdigest() for shape, p in paths.items()}
    for shape, path in paths.items():
        dataset.store_model(shas[shape], path)
    planted_ratios = {}
    for device in KERNEL_FACTORS:
        shutil.copytree(source.device_dir("a"), dataset.device_dir(device))
        kernel_rows = _kernel_rows(rows, device)
        dataset.append(kernel_rows, Source("kernels-" + device, "bundle", "kernels", device, len(kernel_rows)))
        table = device_lut(dataset, device)
        reference_ns = lut_total_ns(table, encodings[REFERENCE_SHAPE], HYBRID_VOCABULARY)
        model_rows = []
        for shape in paths:
            ratio = lut_total_ns(table, encodings[shape], HYBRID_VOCABULARY) / reference_ns
            planted_ratios[device, shape] = ratio
            model_rows.append(dict(template, device=device, row_id="{}-{}".format(device, shas[shape]),
                                   item_id=shas[shape], model_sha256=shas[shape], spec_json=None, item_kind="model",
                                   reference_item_id=shas[REFERENCE_SHAPE], ratio=ratio, latency_ms=3.0 * ratio,
                                   reference_latency_ms=3.0, valid=True, status="ok"))
        dataset.append(model_rows, Source("models-" + device, "bundle", "models", device, len(model_rows)))
    return dataset, encodings, planted_ratios


def test_node_features_normalized_and_reproducible(planted):
    dataset, encodings, _ = planted
    device = device_kernels(device_lut(dataset, "a"), encodings[REFERENCE_SHAPE], HYBRID_VOCABULARY)
    features = node_features(device, encodings[REFERENCE_SHAPE], HYBRID_VOCABULARY)
    assert features.shape == (encodings[REFERENCE_SHAPE].x.shape[0] - 1, len(NODE_FEATURES))
    kernel_nodes = features[:, 0] > 0
    assert kernel_nodes.any() and not kernel_nodes.all()  # the relus run inside the convs' kernels
    # each kernel node says where its latency came from and what it is; the reference's kernels and their calls sum
    # to its LUT total, 1 after normalizing
    sources = features[:, 1:4]
    assert np.all(sources[kernel_nodes].sum(axis=1) == 1) and np.all(sources[~kernel_nodes] == 0)
    design = dict(zip(GRAPH_COLUMNS, graph_design(device, [encodings[REFERENCE_SHAPE]], HYBRID_VOCABULARY)[0]))
    assert sum(v for k, v in design.items() if k not in ("constant", "weights")) == pytest.approx(1.0, rel=1e-9)
    assert features[:, 0].sum() == pytest.approx(1.0 - design["layout"] - design["calls"], rel=1e-9)
    again = device_kernels(device_lut(dataset, "a"), encodings[REFERENCE_SHAPE], HYBRID_VOCABULARY)
    assert np.array_equal(node_features(again, encodings[REFERENCE_SHAPE], HYBRID_VOCABULARY), features)


def test_planted_device_predicted_from_its_kernels_alone(planted, tmp_path):
    from trainer.fitting import fit

    dataset, _, planted_ratios = planted
    shifts = [planted_ratios["a", s] / planted_ratios["b", s] for s in SHAPES]
    assert max(abs(np.log(shifts))) > np.log(1.05)  # a's ratios would miss b's: b must be predicted from b's kernels
    out = tmp_path / "pred"
    fit(dataset, ["a"], "hybrid", len(SHAPES) + 1, seed=0, hyper=None, out_dir=out)
    predictor, config = load_predictor(out)
    scored = evaluate(predictor, config, dataset, "b", shots=0, measured="ratio")
    truth = scored.measured_ms
    assert scored.mode == "new device" and len(truth) == len(SHAPES)
    assert np.allclose(scored.predicted_ms, truth, rtol=1e-6)
    # with shots, b's own prices are fitted toward a's; b's kernels already explain its models, so they stay
    with_shots = evaluate(predictor, config, dataset, "b", shots=4, measured="ratio", shot_selection="random")
    assert predictor.adapted is not None and np.allclose(with_shots.predicted_ms, with_shots.measured_ms, rtol=1e-4)
    # bound to b, saved and loaded, it predicts b without the dataset
    from trainer.predictors.store import save_predictor

    save_predictor(predictor, tmp_path / "bound", config["training"], config.get("intervals"))
    reloaded, _ = load_predictor(tmp_path / "bound")
    assert reloaded.bound.reference_total_ns == predictor.bound.reference_total_ns
    assert np.allclose(reloaded.predict(_encodings(dataset, scored.ids)), truth / scored.reference_ms, rtol=1e-6)


def _encodings(dataset, ids):
    from trainer.encoding_cache import EncodingCache

    cache = EncodingCache(dataset.encodings_dir, HYBRID_VOCABULARY)
    return [cache.for_file(dataset.model_path(item)) for item in ids]


def test_predict_and_search_take_the_target_from_the_dataset(planted, tmp_path):
    """`trainer predict` and `search` with --dataset/--device read the new device's kernels: b's prediction is b's
    planted ratio times its reference, not a's."""
    from trainer.cli import main
    from trainer.fitting import fit

    dataset, _, planted_ratios = planted
    out = tmp_path / "pred"
    fit(dataset, ["a"], "hybrid", len(SHAPES) + 1, seed=0, hyper=None, out_dir=out)
    model = dataset.model_path(_sha(SHAPES[3]))
    predicted = _json_cli(main, ["predict", "--predictor", out, model, "--dataset", dataset.root, "--device", "b"])
    assert predicted[0]["predicted_ms"] == pytest.approx(3.0 * planted_ratios["b", SHAPES[3]], rel=1e-6)
    found = _json_cli(main, ["search", "--predictor", out, "--space", "cifar-supernet", "--budget-ms", "1000",
                             "--candidates", "12", "--top", "3", "--dataset", dataset.root, "--device", "b"])
    assert 1 <= len(found) <= 3 and all(f["predicted_ms"] <= 1000 for f in found)


def _sha(shape) -> str:
    return hashlib.sha256(_conv_net(*shape).SerializeToString()).hexdigest()


def _json_cli(main, args):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as done:
        main([str(a) for a in args] + ["--json"])
    assert done.value.code == 0, buffer.getvalue()
    return json.loads(buffer.getvalue())
