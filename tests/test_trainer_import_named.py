"""import-table for tables whose rows name ONNX files (--models): units, the reference row, std columns, skipped
cells and files, idempotence, one-line errors, an older dataset file, and a two-device fit that predicts a model
from its graph alone."""

import csv
import json

import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kernels.analysis import model_flops
from kernels.builder import GraphBuilder
from trainer.cli import main
from trainer.dataset import ROW_FIELDS, Dataset
from trainer.tables import NamedTable, device_name, import_named_table

US_PER_MFLOP = 40.0  # device a, in microseconds
S_PER_MFLOP = 1e-4  # device b, in seconds
REFERENCE = "m00"


def _model(width: int, depth: int, seed: int) -> onnx.ModelProto:
    b = GraphBuilder(input_shape=(1, 3, 16, 16), seed=seed, name="m{}".format(seed))
    x = b.input
    for _ in range(depth):
        x = b.conv(x, width)
    return b.build([b.fc(b.global_pool(x), 10)])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(models dir, {name: MFLOPs}, held-out model path, its MFLOPs): 16 conv stacks, a broken file, one held out."""
    root = tmp_path_factory.mktemp("models")
    flops = {}
    for i in range(16):
        model = _model(4 + 4 * (i % 8), 1 + i // 8, i)
        onnx.save(model, str(root / "m{:02d}.onnx".format(i)))
        flops["m{:02d}".format(i)] = model_flops(model) / 1e6
    (root / "broken.onnx").write_bytes(b"not an onnx model\n" * 10)
    held = _model(18, 2, 99)
    held_path = tmp_path_factory.mktemp("held") / "held.onnx"
    onnx.save(held, str(held_path))
    return root, flops, held_path, model_flops(held) / 1e6


@pytest.fixture(scope="module")
def table(models, tmp_path_factory):
    """dev_a in us and dev_b in s, both with std twins; dev_c's reference cell is blank; one model has no file, one
    is broken, one cell of dev_a is blank."""
    _, flops, _, _ = models
    path = tmp_path_factory.mktemp("table") / "lat.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "FLOPS", "dev_a|mean", "dev_a|std", "dev_b|mean", "dev_b|std", "dev_c|mean"])
        for name, mflops in sorted(flops.items()):
            a = "" if name == "m05" else US_PER_MFLOP * mflops
            writer.writerow([name, mflops, a, 2.0, S_PER_MFLOP * mflops, 1e-5, "" if name == REFERENCE else 1.0])
        writer.writerow(["absent", 1.0, 10.0, 0.1, 0.01, 0.0, 1.0])
        writer.writerow(["broken", 1.0, 10.0, 0.1, 0.01, 0.0, 1.0])
    return path


def _named(models, **options) -> NamedTable:
    return NamedTable(models[0], REFERENCE, **options)


def _run(args, capsys):
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_device_names_drop_the_globs_literal_suffix():
    assert device_name("pixel4|1large|float|mean", "*|mean") == "pixel4|1large|float"
    assert device_name("pixel4|1large|float|mean", "pixel4|*") == "pixel4|1large|float|mean"
    assert device_name("lat_ms", "lat_ms") == "lat_ms"


def test_columns_glob_imports_each_device_with_units_reference_and_std(models, table, tmp_path):
    _, flops, _, _ = models
    dataset = Dataset(tmp_path / "ds", create=True)
    report = import_named_table(table, _named(models, unit="us", columns_glob="dev_a|mean"), dataset)
    assert [d.device for d in report.devices] == ["dev_a|mean"]  # a glob without wildcards: the whole column
    report = import_named_table(table, _named(models, unit="s", columns_glob="*|mean"), Dataset(tmp_path / "ds2",
                                                                                                  create=True))
    by_device = {d.device: d for d in report.devices}
    assert sorted(by_device) == ["dev_a", "dev_b", "dev_c"]
    a, b, c = by_device["dev_a"], by_device["dev_b"], by_device["dev_c"]
    assert (a.imported, a.skipped_blank, a.skipped_missing, a.skipped_unencodable) == (15, 1, 1, 1)
    assert (b.imported, b.skipped_blank, b.skipped_missing, b.skipped_unencodable) == (16, 0, 1, 1)
    assert c.imported == 0 and "has no latency" in c.skipped_reason and c.reference_ms is None
    assert (report.models, report.models_encoded, report.models_missing, report.models_unencodable) == (18, 16, 1, 1)
    assert b.std_column == "dev_b|std" and b.reference_ms == pytest.approx(S_PER_MFLOP * flops[REFERENCE] * 1e3)
    rows = Dataset(tmp_path / "ds2").rows(["dev_b"])
    reference = next(r for r in rows if r["item_kind"] == "reference")
    assert reference["item_id"] == reference["reference_item_id"] == "model:" + REFERENCE and reference["ratio"] == 1
    for row in rows:
        name = row["item_id"].split(":", 1)[1]
        assert row["latency_ms"] == pytest.approx(S_PER_MFLOP * flops[name] * 1e3)
        assert row["ratio"] == pytest.approx(flops[name] / flops[REFERENCE])
        assert row["latency_std_ms"] == pytest.approx(1e-2)
        assert Dataset(tmp_path / "ds2").model_path(row["model_sha256"]) is not None
    assert {r["item_kind"] for r in rows} == {"model", "reference"}


def test_us_converts_to_ms_and_each_model_is_encoded_once(models, table, tmp_path, monkeypatch):
    import trainer.encoding_cache as encoding_cache

    calls = []
    real = encoding_cache.encode_model
    monkeypatch.setattr(encoding_cache, "encode_model", lambda model, vocab: calls.append(1) or real(model, vocab))
    dataset = Dataset(tmp_path / "ds", create=True)
    import_named_table(table, _named(models, unit="us", latency_columns=("dev_a|mean", "dev_b|mean"),
                                     devices=("A", "B")), dataset)
    assert len(calls) == 16  # 16 good models over two devices, each encoded once
    _, flops, _, _ = models
    for row in dataset.rows(["A"]):
        assert row["latency_ms"] == pytest.approx(US_PER_MFLOP * flops[row["item_id"][6:]] / 1e3)


def test_reimport_is_idempotent(models, table, tmp_path):
    dataset = Dataset(tmp_path / "ds", create=True)
    first = import_named_table(table, _named(models, unit="us", columns_glob="*|mean"), dataset)
    sources = dataset.sources()
    again = import_named_table(table, _named(models, unit="us", columns_glob="*|mean"), dataset)
    assert [d.already_imported for d in again.devices] == [True, True, False]  # dev_c stays skipped
    assert sum(d.imported for d in again.devices) == 0 and len(dataset.rows()) == sum(
        d.imported for d in first.devices) == 31
    assert dataset.sources() == sources and [s.device for s in sources] == ["dev_a", "dev_b"]


def test_a_model_the_encoder_refuses_is_skipped_and_counted(models, table, tmp_path, monkeypatch):
    import trainer.encoding_cache as encoding_cache

    def refuse(model, vocabulary):
        raise ValueError("unreadable graph")

    monkeypatch.setattr(encoding_cache, "encode_model", refuse)
    report = import_named_table(table, _named(models, latency_columns=("dev_b|mean",), devices=("B",)),
                                Dataset(tmp_path / "ds", create=True))
    assert (report.devices[0].imported, report.devices[0].skipped_unencodable, report.models_unencodable) == (0, 17, 17)


def test_an_older_dataset_file_without_the_std_column_reads_and_appends(models, table, tmp_path):
    dataset = Dataset(tmp_path / "ds", create=True)
    old_fields = [(name, getattr(pa, kind)()) for name, kind in ROW_FIELDS if name != "latency_std_ms"]
    old_row = {name: None for name, _ in old_fields}
    old_row.update(row_id="r1", device="old", item_id="x", item_kind="reference", valid=True, latency_ms=2.0,
                   ratio=1.0)
    pq.write_table(pa.Table.from_pylist([old_row], schema=pa.schema(old_fields)), dataset.table_path)
    assert dataset.rows()[0]["latency_std_ms"] is None and dataset.devices() == ["old"]
    import_named_table(table, _named(models, latency_columns=("dev_b|mean",), devices=("B",)), dataset)
    assert dataset.devices() == ["B", "old"] and len(dataset.rows(["old"])) == 1


def test_cli_prints_a_line_per_device_and_devices_lists_them(models, table, tmp_path, capsys):
    args = ["import-table", table, "--models", models[0], "--reference", REFERENCE, "--unit", "us", "--columns",
            "*|mean", "--dataset", tmp_path / "ds"]
    code, out, err = _run(args, capsys)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and lines[0].startswith("dev_a (dev_a|mean ± dev_a|std): 15 row(s) imported;")
    assert "1 blank, 0 invalid, 1 missing file, 1 failed to encode" in lines[0]
    assert lines[2] == "dev_c (dev_c|mean): skipped: the reference row 'm00' has no latency (blank)"
    assert lines[3].startswith("18 model(s): 16 encoded, 1 missing, 1 failed to encode; 2 device(s) imported (31 row")
    code, out, _ = _run(args + ["--json"], capsys)
    assert code == 0 and [d["already_imported"] for d in json.loads(out)["devices"]] == [True, True, False]
    code, out, _ = _run(["devices", "--dataset", tmp_path / "ds", "--json"], capsys)
    assert [d["device"] for d in json.loads(out)] == ["dev_a", "dev_b"]


@pytest.mark.parametrize("extra, message", [
    (["--latency-column", "nope", "--device", "A"], "no column 'nope'"),
    (["--columns", "*|median"], "matches no column"),
    (["--latency-column", "dev_a|mean", "--device", "A", "--device", "B"], "1 --latency-column but 2 --device"),
    (["--columns", "*|mean", "--latency-column", "dev_a|mean"], "without --latency-column"),
    (["--columns", "*|mean", "--space", "nb201"], "either --space"),
    (["--columns", "*|mean", "--reference", "resnet"], "no row names the reference 'resnet'"),
    (["--columns", "*|mean", "--model-column", "name"], "no column 'name'"),
])
def test_cli_errors_are_one_line(models, table, tmp_path, capsys, extra, message):
    args = ["import-table", table, "--models", models[0], "--dataset", tmp_path / "ds"]
    args += [] if "--reference" in extra else ["--reference", REFERENCE]
    code, out, err = _run(args + extra, capsys)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_refuses_models_that_are_not_a_directory(table, tmp_path, capsys):
    code, _, err = _run(["import-table", table, "--models", table, "--reference", REFERENCE, "--columns", "*|mean",
                         "--dataset", tmp_path / "ds"], capsys)
    assert code == 1 and err.strip() == "error: --models {}: not a directory".format(table)


def test_two_device_fit_predicts_a_held_out_model_from_its_graph(models, table, tmp_path, capsys):
    _, flops, held, held_mflops = models
    dataset, predictor = tmp_path / "ds", tmp_path / "pred"
    assert _run(["import-table", table, "--models", models[0], "--reference", REFERENCE, "--unit", "us",
                 "--latency-column", "dev_a|mean", "--device", "A", "--latency-column", "dev_b|mean", "--device", "B",
                 "--dataset", dataset], capsys)[0] == 0
    code, out, err = _run(["fit", "--dataset", dataset, "--device", "A", "--device", "B", "--kind", "additive",
                           "--out", predictor], capsys)
    assert code == 0, err
    reference_ms = 3.0
    code, out, err = _run(["predict", "--predictor", predictor, "--reference-ms", reference_ms, held, "--json"],
                          capsys)
    assert code == 0, err
    truth_ms = reference_ms * held_mflops / flops[REFERENCE]
    assert json.loads(out)[0]["predicted_ms"] == pytest.approx(truth_ms, rel=0.1)


def test_the_space_form_is_unchanged_and_refuses_models_options(tmp_path, capsys):
    from kernels.spaces import get_space
    from kernels.spaces.nb201 import spec_to_arch

    space = get_space("nb201")
    path = tmp_path / "nb201.csv"
    archs = [spec_to_arch(space.reference_spec())] + [spec_to_arch(s) for s in space.sample(3, seed=1)]
    path.write_text("arch_str,t_ms\n" + "".join("{},{}\n".format(a, 2.0 + i) for i, a in enumerate(archs)))
    args = ["import-table", path, "--space", "nb201", "--arch-column", "arch_str", "--latency-column", "t_ms",
            "--device", "t", "--dataset", tmp_path / "ds"]
    code, out, _ = _run(args, capsys)
    assert code == 0 and out.startswith("t t_ms: 4 row(s) imported; skipped 0 blank") and "reference 2 ms" in out
    code, _, err = _run(args + ["--unit", "us"], capsys)
    assert code == 1 and err.strip() == "error: --unit applies to --models tables, not to --space ones"


def test_device_prefix_keeps_two_runtimes_tables_apart(models, table, tmp_path, capsys):
    base = ["import-table", table, "--models", models[0], "--reference", REFERENCE, "--unit", "us", "--columns",
            "*|mean", "--dataset", tmp_path / "ds"]
    for prefix in ("tflite:", "torch:"):
        code, _, _ = _run(base + ["--device-prefix", prefix], capsys)
        assert code == 0
    code, out, _ = _run(["devices", "--dataset", tmp_path / "ds", "--json"], capsys)
    assert [d["device"] for d in json.loads(out)] == ["tflite:dev_a", "tflite:dev_b", "torch:dev_a", "torch:dev_b"]


def test_a_column_filed_under_a_device_another_source_holds_is_refused(models, table, tmp_path, capsys):
    base = ["import-table", table, "--models", models[0], "--reference", REFERENCE, "--unit", "us",
            "--dataset", tmp_path / "ds"]
    assert _run(base + ["--latency-column", "dev_a|mean", "--device", "A"], capsys)[0] == 0
    code, _, err = _run(base + ["--latency-column", "dev_b|mean", "--device", "A"], capsys)
    assert code == 1 and "device 'A' is already in the dataset from another table or column" in err
    assert _run(base + ["--latency-column", "dev_a|mean", "--device", "A"], capsys)[0] == 0  # the same: idempotent
