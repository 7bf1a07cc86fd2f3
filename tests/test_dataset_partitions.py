"""The dataset partitioned by device: what DuckDB reads is what the trainer reads, two fleets' archives ingested in
either order make the same dataset, re-ingesting a directory adds nothing, an append a crash cut short is repaired
by running it again, and a version-1 dataset (one measurements.parquet) is still read, and split into partitions by
its first ingest."""

import importlib.util
import json
from pathlib import Path

import duckdb
import pytest
from conftest import REPO

from trainer.cli import main
from trainer.dataset import Dataset, Source, partition_device, partition_name


def _bench():
    """benchmarks/bench_dataset_scale.py, whose synthetic fleets (packed bundles of NB201 cells) the tests reuse."""
    spec = importlib.util.spec_from_file_location("bench_dataset_scale",
                                                  str(Path(REPO) / "benchmarks" / "bench_dataset_scale.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fleets(tmp_path_factory):
    """Two fleets' fetched archives: boards 0-2 (12 rows each) and boards 3-4 (9 rows each)."""
    root = tmp_path_factory.mktemp("fleets")
    bench = _bench()
    bench.make_fleet(root / "a", 12, first=0, devices=3, graphs=20)
    bench.make_fleet(root / "b", 9, first=3, devices=2, graphs=20)
    return root / "a", root / "b"


def _ingest(capsys, *args):
    with pytest.raises(SystemExit) as done:
        main(["ingest"] + [str(a) for a in args])
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def _files(root: Path):
    """Every measurement file of a dataset, by path below it, with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "measurements").rglob("*.parquet"))}


def _duckdb_rows(root: Path):
    query = "SELECT * FROM read_parquet('{}/measurements/**/*.parquet', hive_partitioning=true) ORDER BY row_id"
    result = duckdb.sql(query.format(root))
    return [dict(zip(result.columns, values)) for values in result.fetchall()]


def test_partition_names_are_one_reversible_path_segment():
    for device in ("pi4-ort-1t-all", "tflite:pixel4|1large|float", "a/b=c d%e", "..", "jetson-\u00e9"):
        name = partition_name(device)
        assert name.startswith("device=") and "/" not in name and partition_device(name) == device
    assert partition_name("pixel4|1large") == "device=pixel4%7C1large"


def test_fleets_in_either_order_make_the_same_dataset(fleets, tmp_path, capsys):
    a, b = fleets
    for name, order in (("ab", (a, b)), ("ba", (b, a))):
        for fleet in order:
            code, out, _ = _ingest(capsys, fleet, "--dataset", tmp_path / name)
            assert code == 0 and out.count("added") == len(list(fleet.rglob("*.tar.gz"))), out
    ab, ba = Dataset(tmp_path / "ab"), Dataset(tmp_path / "ba")
    assert _files(ab.root) == _files(ba.root) and len(_files(ab.root)) == 5
    assert ab.rows() == ba.rows() and len(ab.rows()) == 3 * 12 + 2 * 9
    assert sorted(s.content_hash for s in ab.sources()) == sorted(s.content_hash for s in ba.sources())
    assert ab.devices() == ["lab|board-{:03d}-ort-1t-all".format(i) for i in range(5)]
    assert sorted(s.name for s in ab.sources())[0] == "board-000/results.tar.gz"


def test_reingesting_a_directory_adds_nothing(fleets, tmp_path, capsys):
    a, _ = fleets
    assert _ingest(capsys, a, "--dataset", tmp_path / "ds")[0] == 0
    before, sources = _files(tmp_path / "ds"), (tmp_path / "ds" / "sources.json").read_text()
    code, out, _ = _ingest(capsys, a, "--dataset", tmp_path / "ds")
    assert code == 0 and out.count("already ingested, nothing added") == 3
    assert _files(tmp_path / "ds") == before and (tmp_path / "ds" / "sources.json").read_text() == sources


def test_duckdb_reads_what_the_trainer_reads(fleets, tmp_path, capsys):
    for fleet in fleets:
        _ingest(capsys, fleet, "--dataset", tmp_path / "ds")
    dataset = Dataset(tmp_path / "ds")
    ours = sorted(dataset.rows(), key=lambda r: r["row_id"])
    theirs = _duckdb_rows(dataset.root)
    assert len(theirs) == len(ours) == 54 and theirs == ours
    one = dataset.devices()[3]
    assert dataset.rows([one]) == [r for r in dataset.rows() if r["device"] == one] and len(dataset.rows([one])) == 9


def test_an_append_cut_short_is_repaired_by_running_it_again(tmp_path):
    """Part files are written before sources.json: a crash between leaves rows but no ledger entry. Appending the
    same source again rewrites its own files and counts its rows, without duplicating them."""
    dataset = Dataset(tmp_path / "ds", create=True)
    rows = [{"row_id": "r{}".format(i), "device": "dev|{}".format(i % 2), "valid": True, "latency_ms": 1.0 + i}
            for i in range(6)]
    source = Source("c0ffee", "table", "t.csv", "dev|0,dev|1", 6)
    assert dataset.append(rows, source) == 6
    (dataset.root / "sources.json").unlink()
    assert dataset.append(rows, source) == 6 and len(dataset.rows()) == 6
    assert dataset.append(rows, Source("other", "table", "u.csv", "dev|0,dev|1", 6)) == 0
    assert sorted(p.name for p in dataset.partition_dir("dev|0").iterdir()) == ["part-c0ffee.parquet"]


def _version_1(root: Path, rows, sources: str) -> Dataset:
    """A version-1 dataset of these rows: one measurements.parquet (without the later latency_std_ms column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir()
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "latency_std_ms"} for r in rows]),
                   root / "measurements.parquet")
    (root / "dataset.json").write_text(json.dumps({"format": "edge-latency-dataset", "version": 1}))
    (root / "sources.json").write_text(sources)
    return Dataset(root)


def test_version_1_dataset_is_read_then_split_by_its_first_ingest(fleets, tmp_path, capsys):
    """A version-1 dataset reads as before; its first ingest moves its table into the partitions (a v1-table file
    per device), makes it version 2 and adds the new archives' part files."""
    a, b = fleets
    _ingest(capsys, a, "--dataset", tmp_path / "new")
    new = Dataset(tmp_path / "new")
    rows = new.rows()
    old = _version_1(tmp_path / "old", rows, (new.root / "sources.json").read_text())
    assert old.version == 1 and old.rows() == rows and old.devices() == new.devices()
    code, out, _ = _ingest(capsys, a, b, "--dataset", old.root)
    assert code == 0 and out.count("already ingested") == 3 and out.count(" added,") == 2
    assert json.loads((old.root / "dataset.json").read_text())["version"] == 2
    assert not (old.root / "measurements.parquet").exists()
    assert len(list(old.root.glob("measurements/*/v1-table.parquet"))) == 3
    grown = Dataset(old.root)
    assert len(grown.rows()) == 54 and len(grown.devices()) == 5
    assert grown.rows([rows[0]["device"]]) == [r for r in rows if r["device"] == rows[0]["device"]]
    assert _duckdb_rows(old.root) == sorted(grown.rows(), key=lambda r: r["row_id"])


def test_a_split_cut_short_doubles_nothing(fleets, tmp_path, capsys):
    """A crash after the table's split was written but before the table was removed: the table still answers, the
    split is ignored, and the next append finishes the job."""
    a, _ = fleets
    _ingest(capsys, a, "--dataset", tmp_path / "new")
    rows = Dataset(tmp_path / "new").rows()
    old = _version_1(tmp_path / "old", rows, "[]")
    old._split_table()
    assert Dataset(old.root).rows() == rows and Dataset(old.root).devices() == sorted({r["device"] for r in rows})
    assert old.append([dict(rows[0], row_id="extra")], Source("e", "table", "e.csv", rows[0]["device"], 1)) == 1
    assert len(Dataset(old.root).rows()) == len(rows) + 1 and not (old.root / "measurements.parquet").exists()


def test_a_refused_archive_does_not_stop_the_others(fleets, tmp_path, capsys):
    a, _ = fleets
    mixed = tmp_path / "fetched"
    (mixed / "bad").mkdir(parents=True)
    (mixed / "bad" / "results.tar.gz").write_bytes(b"not a gzip")
    (mixed / "good").mkdir()
    (mixed / "good" / "results.tar.gz").write_bytes(next(a.rglob("*.tar.gz")).read_bytes())
    code, out, err = _ingest(capsys, mixed, "--dataset", tmp_path / "ds")
    assert code == 1 and "good/results.tar.gz: 12 record(s), 12 added" in out
    assert "bad/results.tar.gz: refused" in err and "1 of 2 bundles refused" in err
    assert len(Dataset(tmp_path / "ds").rows()) == 12


def test_a_directory_without_archives_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = _ingest(capsys, tmp_path / "empty", "--dataset", tmp_path / "ds")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no manifest.json" in err
    assert not (tmp_path / "ds").exists()


def test_unknown_dataset_version_is_refused(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "edge-latency-dataset", "version": 3}))
    with pytest.raises(Exception, match="version 3 is not supported"):
        Dataset(tmp_path)
