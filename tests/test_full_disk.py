"""A full or read-only disk: one-line error, non-zero exit, and every record written before is kept.

Uses a real small tmpfs, so it needs the right to mount (root in a container that allows it); skipped elsewhere."""

import os
import subprocess

import pytest
from conftest import run_cli

from edge_agent.bundle.store import read_records

FAST = ["--protocol", "quick", "--warmup-time", "0.05", "--min-time", "0.15", "--cv-threshold", "10"]


@pytest.fixture
def small_disk(tmp_path):
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: {}".format(mounted.stderr.decode().strip()))
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(directory):
    with open(os.path.join(str(directory), "filler"), "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        except OSError:
            pass


def test_full_disk_keeps_earlier_records(small_disk, tiny_models):
    out = str(small_disk / "bundle")
    assert run_cli("edge_agent", "bench", tiny_models[0], "--out", out, *FAST).returncode == 0
    first = read_records(out).records
    _fill(small_disk)
    result = run_cli("edge_agent", "bench", tiny_models[2], "--out", out, *FAST)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "disk full" in result.stderr.splitlines()[-1]
    kept = read_records(out).records
    assert [r.record_id for r in kept] == [r.record_id for r in first]


def test_read_only_disk_is_a_clear_error(small_disk, tiny_models):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = run_cli("edge_agent", "bench", tiny_models[0], "--out", str(small_disk / "bundle"), *FAST)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("error: ") and "bundle" in result.stderr
