"""On a real board (marked `board`, skipped elsewhere): the live sensors the fixture trees stand in for answer."""

import json

import pytest
from conftest import run_cli

from edge_agent.device.snapshot import take_snapshot
from edge_agent.device.sysroot import SysRoot

pytestmark = pytest.mark.board


def test_live_fingerprint_names_the_board_and_its_clocks():
    result = run_cli("edge_agent", "info", "--json")
    assert result.returncode == 0, result.stderr
    fingerprint = json.loads(result.stdout)
    text = json.dumps(fingerprint)
    assert "Raspberry Pi" in text or "Jetson" in text
    assert fingerprint["device_key"] and "unavailable" not in fingerprint["device_key"]


def test_live_snapshot_reads_temperature_and_clock():
    snapshot = take_snapshot(SysRoot("/"))
    assert snapshot.max_temp_mc is not None and 10_000 < snapshot.max_temp_mc < 110_000
    assert any(snapshot.cpu_cur_freq_khz) or snapshot.arm_clock_hz
