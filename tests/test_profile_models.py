"""`edge-agent profile --models DIR`: resumable, kill -9 safe, and a valid bundle when the budget runs out."""

import os
import shutil
import signal
import subprocess
import sys
import time

import onnx
from conftest import REPO, run_cli, tiny_conv_model, valid_counts

from edge_agent.bundle.store import MEASUREMENTS, read_records

FAST = ["--protocol", "quick", "--warmup-time", "0.05", "--min-time", "0.3", "--cv-threshold", "10"]


def _models_dir(tmp_path, count):
    folder = tmp_path / "models"
    folder.mkdir()
    for index in range(count):
        onnx.save(tiny_conv_model(channels=4 + 2 * index, size=16), str(folder / "m{:02d}.onnx".format(index)))
    reference = tmp_path / "reference.onnx"
    onnx.save(tiny_conv_model(channels=8, size=24), str(reference))
    return str(folder), str(reference)


def test_kill_9_mid_profile_then_resume_loses_and_duplicates_nothing(tmp_path):
    models, reference = _models_dir(tmp_path, 6)
    out = str(tmp_path / "bundle")
    command = [sys.executable, "-m", "edge_agent", "profile", "--out", out, "--models", models,
               "--reference", reference] + FAST
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    measurements = os.path.join(out, MEASUREMENTS)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(valid_counts(out, "model") if os.path.exists(measurements) else {}) >= 2:
            break
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # the agent and its measuring child, as a power cut would
    process.wait()
    before = read_records(out).records
    survived = valid_counts(out, "model")
    assert 2 <= len(survived) < 6

    result = run_cli("edge_agent", "profile", "--out", out, "--models", models, "--reference", reference, *FAST)
    assert result.returncode == 0, result.stderr
    after = read_records(out).records
    assert [r.record_id for r in after[:len(before)]] == [r.record_id for r in before]
    counts = valid_counts(out, "model")
    assert len(counts) == 6 and set(counts.values()) == {1}
    assert "already done" in result.stdout and "{} already done".format(len(survived)) in result.stdout


def test_budget_stops_cleanly_and_rerun_finishes(tmp_path):
    models, reference = _models_dir(tmp_path, 4)
    out = str(tmp_path / "bundle")
    args = ["edge_agent", "profile", "--out", out, "--models", models, "--reference", reference] + FAST
    first = run_cli(*(args + ["--budget", "0.1"]))  # 6 s: the opening reference plus a few items
    assert first.returncode == 0, first.stderr
    assert "left by the budget" in first.stdout
    kinds = [r.item_kind for r in read_records(out).records]
    assert kinds[0] == "reference" and kinds[-1] == "reference"  # opened and closed even when cut short
    second = run_cli(*args)
    assert second.returncode == 0
    assert len(valid_counts(out, "model")) == 4


def test_pack_covers_every_file_with_a_checksum(tmp_path):
    import hashlib
    import tarfile

    models, reference = _models_dir(tmp_path, 2)
    out = str(tmp_path / "bundle")
    assert run_cli("edge_agent", "profile", "--out", out, "--models", models, "--reference", reference,
                   *FAST).returncode == 0
    packed = run_cli("edge_agent", "pack", out)
    assert packed.returncode == 0, packed.stderr
    with tarfile.open(out + ".tar.gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    sums = dict(reversed(line.split("  ", 1)) for line in members.pop("bundle/SHA256SUMS").decode().splitlines())
    assert set("bundle/" + path for path in sums) == set(members)
    assert all(hashlib.sha256(members["bundle/" + p]).hexdigest() == digest for p, digest in sums.items())
    assert "bundle/manifest.json" in members and not any(".cache" in name or ".lock" in name for name in members)
    again = run_cli("edge_agent", "pack", out)
    assert again.returncode != 0 and "already exists" in again.stderr
    shutil.rmtree(out)
