"""Per-item snapshots, their comparison, cooling down, and the readiness checks."""

import json
import os
import threading

from click.testing import CliRunner
from conftest import FIXTURES, copy_fixture

from edge_agent.commands.check import check
from edge_agent.device.check import other_agents, run_checks
from edge_agent.device.models import DeviceSnapshot
from edge_agent.device.snapshot import (
    compare_snapshots,
    take_snapshot,
    wait_for_cooldown,
)
from edge_agent.device.sysroot import SysRoot

ZONE0 = "sys/devices/virtual/thermal/thermal_zone0/temp"


def snap(**fields) -> DeviceSnapshot:
    return DeviceSnapshot(monotonic_ns=0, **fields)


def test_pi_snapshot_reads_firmware_state():
    shot = take_snapshot(SysRoot(os.path.join(FIXTURES, "rpi4_throttled")))
    assert shot.throttled_bits == 0x50005
    assert shot.arm_clock_hz == 600169920  # the firmware clock, while cpufreq claims 1.8 GHz
    assert shot.cpu_cur_freq_khz == [1800000]
    assert shot.max_temp_mc == 81312 and shot.throttle_temp_mc == 80000


def test_jetson_snapshot_ignores_the_fixed_pmic_reading():
    shot = take_snapshot(SysRoot(os.path.join(FIXTURES, "xavier_nx")))
    assert shot.max_temp_mc == 40500  # PMIC-Die always reads 100 degC
    assert shot.cpu_cur_freq_khz == [1190400, 1190400, 1190400]
    assert shot.throttled_bits is None and shot.arm_clock_hz is None


def test_bare_tree_snapshot_is_unavailable(tmp_path):
    shot = take_snapshot(SysRoot(str(tmp_path)))
    assert shot.cpu_cur_freq_khz == [] and shot.max_temp_mc is None and shot.load_avg_1m is None
    assert compare_snapshots(shot, shot) == []


def test_steady_snapshots_are_fine():
    shot = take_snapshot(SysRoot(os.path.join(FIXTURES, "rpi4")))
    assert compare_snapshots(shot, shot) == []


def test_throttling_that_began_during_the_item_is_a_reason():
    reasons = compare_snapshots(snap(throttled_bits=0), snap(throttled_bits=0x40000))
    assert reasons == ["throttled_since_boot bit set during the item"]
    assert compare_snapshots(snap(throttled_bits=0x40000), snap(throttled_bits=0x40000)) == []
    assert "under_voltage_now during the item" in compare_snapshots(snap(throttled_bits=0),
                                                                    snap(throttled_bits=0x10001))


def test_clock_drop_is_a_reason_but_small_wobble_is_not():
    assert compare_snapshots(snap(arm_clock_hz=1800000000), snap(arm_clock_hz=1500000000)) == [
        "arm clock fell from 1800 to 1500 MHz"]
    assert compare_snapshots(snap(arm_clock_hz=1800000000), snap(arm_clock_hz=1790000000)) == []
    assert compare_snapshots(snap(cpu_cur_freq_khz=[1420800, 1420800]),
                             snap(cpu_cur_freq_khz=[1420800, 1190400])) == [
        "cpufreq policy #1 fell from 1420 to 1190 MHz"]


def test_temperature_near_throttle_point_is_a_reason():
    assert compare_snapshots(snap(), snap(max_temp_mc=76000, throttle_temp_mc=80000))
    assert compare_snapshots(snap(), snap(max_temp_mc=70000, throttle_temp_mc=80000)) == []
    assert compare_snapshots(snap(), snap(max_temp_mc=90000)) == []  # unknown throttle point


def test_cooldown_returns_at_once_when_cool_or_without_sensor(tmp_path):
    assert wait_for_cooldown(SysRoot(os.path.join(FIXTURES, "rpi4")), 60000, timeout_s=0) is None
    assert wait_for_cooldown(SysRoot(str(tmp_path)), 1000, timeout_s=0) is None


def test_cooldown_times_out_with_a_reason():
    reason = wait_for_cooldown(SysRoot(os.path.join(FIXTURES, "rpi4_throttled")), 60000, timeout_s=0.05,
                               poll_s=0.01)
    assert reason is not None and "81.3" in reason


def test_cooldown_waits_on_temperature(tmp_path):
    root = copy_fixture("rpi4_throttled", tmp_path)
    cooler = threading.Timer(0.1, lambda: root.write_text(ZONE0, "55000\n"))
    cooler.start()
    try:
        assert wait_for_cooldown(root, 60000, timeout_s=30, poll_s=0.01) is None
    finally:
        cooler.cancel()
    assert root.read_int(ZONE0) == 55000


def test_check_ready_pi_exits_0():
    result = CliRunner().invoke(check, ["--json", "--sysroot", os.path.join(FIXTURES, "rpi4")])
    data = json.loads(result.output)
    severities = {finding["name"]: finding["severity"] for finding in data["findings"]}
    assert result.exit_code == 0 and data["ready"] is True
    assert severities["governor"] == "warn"  # ondemand: usable, but tune is advised


def test_check_throttled_pi_exits_2():
    result = CliRunner().invoke(check, ["--sysroot", os.path.join(FIXTURES, "rpi4_throttled")])
    assert result.exit_code == 2
    assert "under_voltage_now" in result.output and "not ready" in result.output


def test_check_bare_tree_is_ready_with_warnings(tmp_path):
    findings = {f.name: f for f in run_checks(SysRoot(str(tmp_path)))}
    assert findings["temperature"].severity == "warn" and "unavailable" in findings["temperature"].message
    assert findings["governor"].severity == "warn"


def test_check_finds_another_measuring_agent(tmp_path):
    root = copy_fixture("rpi4", tmp_path)
    os.makedirs(root.path("proc/4242"))
    root.write_text("proc/4242/cmdline", "/home/pi/venv/bin/python\x00/home/pi/venv/bin/edge-agent\x00profile\x00"
                                         "--space\x00nb201\x00")
    os.makedirs(root.path("proc/4243"))
    root.write_text("proc/4243/cmdline", "edge-agent\x00info\x00")
    assert [pid for pid, _ in other_agents(root, exclude=set())] == [4242]
    assert other_agents(root, exclude={4242}) == []
    result = CliRunner().invoke(check, ["--sysroot", root.root])
    assert result.exit_code == 2 and "4242" in result.output
