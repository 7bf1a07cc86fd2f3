"""trainer ingest: verified bundles in, tampered / truncated / escaping / unknown-schema bundles refused."""

import io
import json
import tarfile

import pytest
from conftest import store_space_models

from edge_agent.bundle.pack import pack_bundle
from edge_agent.bundle.schema import (
    Manifest,
    MeasurementRecord,
    ProtocolConfig,
    RunSettings,
)
from kernels.spaces import get_space
from trainer.cli import main
from trainer.dataset import Dataset

SETTINGS = RunSettings(runtime="ort", runtime_version="1.32.0", threads=1, ort_graph_optimization_level="all")
DEVICE = "testbox-ort-1t-all"


def _record(n, kind, model, spec, ref, factor, settings=SETTINGS):
    samples = [[int(1e6 * factor) + i for i in range(5)] for _ in range(3)]
    return MeasurementRecord(
        record_id="r{}".format(n), session_id="s1", item_id=spec.id, item_kind=kind, model=model,
        spec=spec.to_dict(), reference=ref, settings=settings, protocol=ProtocolConfig(), status="ok",
        samples_ns=samples, reference_samples_ns=None if kind == "reference" else [[1000000 + i for i in range(5)]] * 3,
        started_utc="2026-01-01T00:00:00Z", finished_utc="2026-01-01T00:00:01Z")


def _write_bundle(root, settings=SETTINGS):
    space = get_space("nb201")
    specs = [space.reference_spec()] + space.sample(2, seed=5)
    refs = store_space_models(root, space, specs)
    manifest = Manifest(agent_version="0.1.0", bundle_id="b1", created_utc="2026-01-01T00:00:00Z",
                        fingerprint={"device_key": "testbox"}, settings=settings, protocol=ProtocolConfig())
    (root / "manifest.json").write_text(manifest.model_dump_json())
    records = [_record(0, "reference", refs[0], specs[0], None, 1.0, settings)]
    records += [_record(i, "subnet", refs[i], specs[i], refs[0], 0.5 * i, settings) for i in (1, 2)]
    (root / "measurements.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    return root


@pytest.fixture
def packed(tmp_path):
    bundle = _write_bundle(tmp_path / "bundle1")
    pack_bundle(str(bundle))
    return bundle, tmp_path / "bundle1.tar.gz"


def _run(args, capsys):
    with pytest.raises(SystemExit) as done:
        main(args)
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def _repack(src, dst, edit):
    """Copy an archive member by member, letting edit(info, data) change or drop members."""
    with tarfile.open(src, "r:gz") as tin, tarfile.open(dst, "w:gz") as tout:
        for info in tin.getmembers():
            data = tin.extractfile(info).read() if info.isfile() else None
            edited = edit(info, data)
            if edited is not None:
                info, data = edited
                info.size = len(data) if data is not None else 0
                tout.addfile(info, io.BytesIO(data) if data is not None else None)


def test_ingest_dir_then_archive_is_idempotent(packed, tmp_path, capsys):
    bundle, archive = packed
    ds = tmp_path / "ds"
    code, out, _ = _run(["ingest", str(bundle), "--dataset", str(ds)], capsys)
    assert code == 0 and "3 added" in out and DEVICE in out
    code, out, _ = _run(["ingest", str(archive), "--dataset", str(ds)], capsys)
    assert code == 0 and "already ingested" in out
    rows = {r["record_id"]: r for r in Dataset(ds).rows()}
    assert len(rows) == 3 and rows["r0"]["item_kind"] == "reference" and rows["r0"]["ratio"] == 1.0
    assert rows["r2"]["ratio"] == pytest.approx(1.0, rel=1e-3) and rows["r1"]["ratio"] == pytest.approx(0.5, rel=1e-3)
    assert all(r["reference_record_id"] == "r0" and r["device"] == DEVICE for r in rows.values())
    assert len(list((ds / "models").glob("*.onnx"))) == 3
    assert not any((ds / ".incoming").iterdir())
    code, out, _ = _run(["devices", "--dataset", str(ds), "--json"], capsys)
    listed = json.loads(out)
    assert [(d["device"], d["rows"], d["valid"]) for d in listed] == [(DEVICE, 3, 3)]
    assert listed[0]["reference_ms"] == pytest.approx(1.000002)


def test_mnn_precision_and_winograd_level_name_the_device(tmp_path, capsys):
    """MNN's Winograd memory level changes which conv kernels run: bundles measured at two levels are two devices."""
    levels = set()
    for level in (None, 1):
        settings = RunSettings(runtime="mnn", runtime_version="3.6.1", threads=1, mnn_precision="high",
                               mnn_winograd_memory_level=level)
        bundle = _write_bundle(tmp_path / "mnn-{}".format(level), settings)
        ds = tmp_path / "ds-{}".format(level)
        assert _run(["ingest", str(bundle), "--dataset", str(ds)], capsys)[0] == 0
        levels |= {(r["device"], r["opt_level"]) for r in Dataset(ds).rows(columns=["device", "opt_level"])}
    assert levels == {("testbox-mnn-1t-high", "high"), ("testbox-mnn-1t-high-winograd1", "high-winograd1")}


def test_archive_with_device_name(packed, tmp_path, capsys):
    code, out, _ = _run(["ingest", str(packed[1]), "--dataset", str(tmp_path / "ds"), "--device", "pi4"], capsys)
    assert code == 0 and "-> pi4" in out


def _assert_refused(args, capsys, words):
    code, _, err = _run(args, capsys)
    assert code == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert words in err


def test_tampered_archive_is_refused(packed, tmp_path, capsys):
    bad = tmp_path / "bad.tar.gz"
    _repack(packed[1], bad, lambda info, data: (info, data.replace(b'"r1"', b'"r9"'))
            if info.name.endswith("measurements.jsonl") else (info, data))
    _assert_refused(["ingest", str(bad), "--dataset", str(tmp_path / "ds")], capsys, "does not match")
    measurements = tmp_path / "ds" / "measurements"
    assert not measurements.exists() or not list(measurements.rglob("*.parquet"))


def test_truncated_archive_is_refused(packed, tmp_path, capsys):
    cut = tmp_path / "cut.tar.gz"
    data = packed[1].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    _assert_refused(["ingest", str(cut), "--dataset", str(tmp_path / "ds")], capsys, "truncated")


@pytest.mark.parametrize("member", ["escape", "absolute", "symlink"])
def test_escaping_members_are_refused(packed, tmp_path, capsys, member):
    bad = tmp_path / "evil.tar.gz"

    def add_evil(info, data):
        if not info.name.endswith("manifest.json"):
            return info, data
        evil = tarfile.TarInfo({"escape": "bundle1/../../evil.txt", "absolute": "/tmp/evil-trainer.txt",
                                "symlink": "bundle1/link"}[member])
        if member == "symlink":
            evil.type, evil.linkname = tarfile.SYMTYPE, "/etc/passwd"
        return evil, (b"" if member == "symlink" else b"pwned")

    _repack(packed[1], bad, add_evil)
    _assert_refused(["ingest", str(bad), "--dataset", str(tmp_path / "ds" / "inner")], capsys, "refusing member")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "ds" / "evil.txt").exists()


def test_unknown_schema_is_refused(tmp_path, capsys):
    bundle = _write_bundle(tmp_path / "b")
    manifest = json.loads((bundle / "manifest.json").read_text())
    (bundle / "manifest.json").write_text(json.dumps(dict(manifest, schema_version=99)))
    _assert_refused(["ingest", str(bundle), "--dataset", str(tmp_path / "ds")], capsys, "schema version 99")


def test_renamed_model_is_refused(tmp_path, capsys):
    bundle = _write_bundle(tmp_path / "b")
    model = sorted((bundle / "models").glob("*.onnx"))[0]
    model.write_bytes(model.read_bytes() + b"\x00")
    _assert_refused(["ingest", str(bundle), "--dataset", str(tmp_path / "ds")], capsys, "sha256 name")
