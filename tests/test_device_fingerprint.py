"""Fingerprints read from fixture trees that mirror a Raspberry Pi 4 and a Jetson Xavier NX, and from this bare
machine (no cpufreq, thermal or hwmon files): absent sensors are unavailable, never an error."""

import json
import os

from click.testing import CliRunner

from edge_agent.commands.info import info
from edge_agent.device.fingerprint import collect_fingerprint
from edge_agent.device.sysroot import SysRoot

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture_root(name: str) -> SysRoot:
    return SysRoot(os.path.join(FIXTURES, name))


def test_raspberry_pi_4_fingerprint():
    fp = collect_fingerprint(fixture_root("rpi4"))
    assert fp.board_model == "Raspberry Pi 4 Model B Rev 1.4"  # trailing NUL stripped
    assert fp.device_key == "raspberry-pi-4-model-b-rev-1.4"
    assert fp.arch == "aarch64"
    assert fp.cpu_model == "Cortex-A72"
    assert [core.cpu for core in fp.cores] == [0, 1, 2, 3]
    assert {core.governor for core in fp.cores} == {"ondemand"}
    assert {(core.min_freq_khz, core.max_freq_khz, core.cur_freq_khz) for core in fp.cores} == {
        (600000, 1800000, 600000)}
    assert len(fp.clusters) == 1 and fp.clusters[0].cpus == [0, 1, 2, 3]
    assert fp.clusters[0].freq_domains == ["policy0"]
    assert [(zone.type, zone.temp_mc) for zone in fp.thermal_zones] == [("cpu-thermal", 47236)]
    assert fp.throttle_temp_mc == 80000  # firmware throttle point, not the 110 degC critical trip
    assert fp.os.version_id == "12" and fp.kernel == "6.1.0-rpi7-rpi-v8"
    assert fp.memory.swap_used_bytes == 0 and fp.memory.total_bytes == 3885240 * 1024
    assert fp.raspberry_pi.throttled_bits == 0 and fp.raspberry_pi.throttled_flags == []
    assert fp.raspberry_pi.arm_clock_hz == 600117184
    assert fp.raspberry_pi.temp_mc == 47200
    assert fp.raspberry_pi.under_voltage_alarm is False
    assert fp.jetson is None


def test_throttled_pi_flags_are_decoded():
    pi = collect_fingerprint(fixture_root("rpi4_throttled")).raspberry_pi
    assert pi.throttled_bits == 0x50005
    assert pi.throttled_flags == ["under_voltage_now", "throttled_now", "under_voltage_since_boot",
                                  "throttled_since_boot"]
    assert pi.under_voltage_alarm is True


def test_xavier_nx_fingerprint():
    fp = collect_fingerprint(fixture_root("xavier_nx"))
    assert fp.device_key == "nvidia-jetson-xavier-nx-developer-kit"
    assert fp.arch == "aarch64"  # 5.10 has no kernel.arch: inferred from cpuinfo
    assert fp.cpu_model == "Carmel"  # from the part number, not L4T's generic "ARMv8 Processor" name
    assert [core.policy for core in fp.cores] == ["policy0", "policy0", "policy2", "policy2", "policy4", "policy4"]
    assert fp.clusters[0].freq_domains == ["policy0", "policy2", "policy4"]
    assert {core.max_freq_khz for core in fp.cores} == {1420800}  # nvpmodel cap below the 1907200 hardware max
    assert "PMIC-Die" in [zone.type for zone in fp.thermal_zones]
    assert fp.throttle_temp_mc == 97000  # lowest passive trip; the fan's active trip is not a throttle point
    jetson = fp.jetson
    assert jetson.l4t_release.startswith("# R35 (release), REVISION: 4.1")
    assert (jetson.nvpmodel_name, jetson.nvpmodel_id) == ("MODE_20W_6CORE", 8)
    assert jetson.jetson_clocks_active is False
    assert (jetson.gpu_min_freq_hz, jetson.gpu_max_freq_hz) == (114750000, 1109250000)
    assert jetson.emc_freq_hz == 1600000000 and jetson.source == "tegrastats"
    assert fp.raspberry_pi is None


def test_empty_tree_is_all_unavailable(tmp_path):
    fp = collect_fingerprint(SysRoot(str(tmp_path)))
    assert fp.board_model is None and fp.cores == [] and fp.thermal_zones == []
    assert fp.memory.total_bytes is None and fp.throttle_temp_mc is None
    assert fp.device_key == "unknown-unknown-cpu-0c"


def test_this_machine_has_no_sensors_and_does_not_crash():
    fp = collect_fingerprint(SysRoot("/"))
    assert fp.cores, "every Linux machine lists its processors"
    assert fp.device_key and "/" not in fp.device_key
    if not os.path.exists("/sys/devices/system/cpu/cpufreq/policy0"):
        assert all(core.governor is None and core.cur_freq_khz is None for core in fp.cores)
    thermal = "/sys/class/thermal"
    if not (os.path.isdir(thermal) and any(name.startswith("thermal_zone") for name in os.listdir(thermal))):
        assert fp.thermal_zones == [] and fp.throttle_temp_mc is None
    assert fp.runtime_versions["ort"] is not None


def test_device_key_ignores_state_that_changes():
    root = fixture_root("rpi4_throttled")
    assert collect_fingerprint(root).device_key == collect_fingerprint(fixture_root("rpi4")).device_key


def test_info_json_is_only_json():
    result = CliRunner().invoke(info, ["--json", "--sysroot", os.path.join(FIXTURES, "xavier_nx")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["device_key"] == "nvidia-jetson-xavier-nx-developer-kit"
    assert data["schema_version"] == 1 and data["jetson"]["nvpmodel_id"] == 8


def test_info_tables_mark_absent_sensors(tmp_path):
    result = CliRunner().invoke(info, ["--sysroot", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "unavailable" in result.output and "Device" in result.output
