import json
import os

import pytest

from edge_agent.bundle.schema import Manifest, MeasurementRecord, ModelRef, ProtocolConfig, RunSettings
from edge_agent.bundle.store import MEASUREMENTS, Bundle, read_manifest, read_records
from edge_agent.errors import BundleError

SETTINGS = RunSettings(runtime="ort", runtime_version="1.0", threads=1)


def manifest() -> Manifest:
    return Manifest(agent_version="0", bundle_id="b", created_utc="now", fingerprint={"device_key": "test"},
                    settings=SETTINGS, protocol=ProtocolConfig())


def record(item_id: str, samples=None) -> MeasurementRecord:
    return MeasurementRecord(record_id=item_id + "-r", session_id="s", item_id=item_id,
                             model=ModelRef(item_id=item_id, model_sha256="0" * 64), settings=SETTINGS,
                             protocol=ProtocolConfig(), status="ok", samples_ns=samples or [[1, 2, 3]],
                             started_utc="t0", finished_utc="t1")


def test_records_round_trip_with_raw_integer_samples(tmp_path):
    path = str(tmp_path / "b")
    with Bundle.open(path, manifest) as bundle:
        bundle.append(record("a", [[1000, 1001], [999]]))
        bundle.append(record("b"))
    read = read_records(path)
    assert [r.item_id for r in read.records] == ["a", "b"]
    assert read.records[0].samples_ns == [[1000, 1001], [999]]
    line = open(os.path.join(path, MEASUREMENTS)).readline()
    assert json.loads(line)["samples_ns"] == [[1000, 1001], [999]]
    assert read_manifest(path).fingerprint == {"device_key": "test"}


def test_torn_last_line_is_tolerated_and_the_next_record_stays_whole(tmp_path):
    path = str(tmp_path / "b")
    with Bundle.open(path, manifest) as bundle:
        bundle.append(record("a"))
    with open(os.path.join(path, MEASUREMENTS), "ab") as handle:
        handle.write(record("torn").model_dump_json().encode()[:40])  # a write cut short by a power cut
    assert read_records(path).torn_lines == 1
    with Bundle.open(path, manifest) as bundle:
        bundle.append(record("c"))
    read = read_records(path)
    assert [r.item_id for r in read.records] == ["a", "c"]
    assert read.torn_lines == 1 and read.torn_line_numbers == [2]


def test_second_agent_on_the_same_bundle_is_refused(tmp_path):
    path = str(tmp_path / "b")
    with Bundle.open(path, manifest):
        with pytest.raises(BundleError, match="in use by another edge-agent \\(pid {}\\)".format(os.getpid())):
            Bundle.open(path, manifest)
    Bundle.open(path, manifest).close()  # released on close


def test_manifest_is_written_once_and_never_replaced(tmp_path):
    path = str(tmp_path / "b")
    Bundle.open(path, manifest).close()
    before = open(os.path.join(path, "manifest.json")).read()
    other = lambda: manifest().model_copy(update={"bundle_id": "other"})  # noqa: E731
    Bundle.open(path, other).close()
    assert open(os.path.join(path, "manifest.json")).read() == before


def test_refuses_a_directory_that_is_not_a_bundle(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(BundleError, match="non-empty directory that is not a bundle"):
        Bundle.open(str(tmp_path / "photos"), manifest)
    assert os.listdir(str(tmp_path / "photos")) == ["cat.jpg"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError, match="not a bundle directory"):
        Bundle.open(str(tmp_path / "file"), manifest)


def test_unknown_schema_versions_are_refused(tmp_path):
    path = str(tmp_path / "b")
    with Bundle.open(path, manifest) as bundle:
        bundle.append(record("a"))
    data = json.loads(open(os.path.join(path, MEASUREMENTS)).readline())
    data["schema_version"] = 99
    with open(os.path.join(path, MEASUREMENTS), "a") as handle:
        handle.write(json.dumps(data) + "\n")
    with pytest.raises(BundleError, match="record schema version 99"):
        read_records(path)
    manifest_path = os.path.join(path, "manifest.json")
    data = json.load(open(manifest_path))
    data["schema_version"] = 7
    os.chmod(manifest_path, 0o644)
    with open(manifest_path, "w") as handle:
        json.dump(data, handle)
    with pytest.raises(BundleError, match="manifest schema version 7"):
        read_manifest(path)


def test_models_are_stored_by_content(tmp_path):
    with Bundle.open(str(tmp_path / "b"), manifest) as bundle:
        relative = bundle.store_model(b"abc", "f" * 64)
        assert bundle.store_model(b"abc", "f" * 64) == relative
        assert open(os.path.join(bundle.path, relative), "rb").read() == b"abc"
