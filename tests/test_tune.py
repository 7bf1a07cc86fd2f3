"""tune / reset against copies of the fixture trees: reset restores exactly what tune found."""

import os

import pytest
from click.testing import CliRunner
from conftest import copy_fixture

from edge_agent.cli import cli
from edge_agent.device.sysroot import SysRoot
from edge_agent.device.tune import TuneError, reset, tune
from edge_agent.errors import InputError

GPU = "sys/devices/17000000.gv11b/devfreq/17000000.gv11b"


def clock_files(root: SysRoot):
    """Every governor/min/max value tune may touch, as text."""
    values = {}
    for base in (root.path("sys/devices/system/cpu/cpufreq"), root.path(GPU)):
        if not os.path.isdir(base):
            continue
        for dirpath, _, files in os.walk(base):
            for name in files:
                if name in ("scaling_governor", "scaling_min_freq", "scaling_max_freq", "min_freq", "max_freq"):
                    rel = os.path.relpath(os.path.join(dirpath, name), root.root)
                    values[rel] = root.read_str(rel)
    return values


@pytest.mark.parametrize("board", ["rpi4", "xavier_nx"])
def test_tune_then_reset_restores_the_original_values(board, tmp_path):
    root = copy_fixture(board, tmp_path)
    original = clock_files(root)
    state_file = str(tmp_path / "state" / "tune.json")
    state = tune(root, state_file)
    tuned = clock_files(root)
    for policy in state.policies:
        assert tuned[policy.policy + "/scaling_governor"] == "performance"
        assert tuned[policy.policy + "/scaling_min_freq"] == tuned[policy.policy + "/scaling_max_freq"] == str(
            policy.max_freq_khz)
    assert tuned != original
    reset(root, state_file)
    assert clock_files(root) == original
    assert not os.path.exists(state_file)


def test_jetson_tune_runs_jetson_clocks_store_and_restore(tmp_path):
    root = copy_fixture("xavier_nx", tmp_path)
    state_file = str(tmp_path / "tune.json")
    state = tune(root, state_file)
    assert state.jetson_clocks_file and os.path.exists(state.jetson_clocks_file)
    assert root.read_str(GPU + "/min_freq") == root.read_str(GPU + "/max_freq")  # jetson_clocks pinned the GPU
    reset(root, state_file)
    assert root.read_str(GPU + "/min_freq") == "114750000"
    assert not os.path.exists(state.jetson_clocks_file)


def test_second_tune_is_refused_and_keeps_the_first_state(tmp_path):
    root = copy_fixture("rpi4", tmp_path)
    state_file = str(tmp_path / "tune.json")
    tune(root, state_file)
    with open(state_file) as handle:
        saved = handle.read()
    with pytest.raises(TuneError, match="already tuned"):
        tune(root, state_file)
    with open(state_file) as handle:
        assert handle.read() == saved
    reset(root, state_file)
    assert root.read_str("sys/devices/system/cpu/cpufreq/policy0/scaling_governor") == "ondemand"


def test_fixed_frequency_must_be_one_the_policy_offers(tmp_path):
    root = copy_fixture("rpi4", tmp_path)
    with pytest.raises(InputError, match="1234 kHz"):
        tune(root, str(tmp_path / "tune.json"), freq_khz=1234)
    assert not os.path.exists(str(tmp_path / "tune.json"))
    tune(root, str(tmp_path / "tune.json"), freq_khz=1500000)
    assert root.read_str("sys/devices/system/cpu/cpufreq/policy0/scaling_min_freq") == "1500000"


class FailingRoot(SysRoot):
    """A tree in which one sysfs write fails once, as a write to a busy or vanished attribute does."""

    def __init__(self, root: str, failing: str):
        super().__init__(root)
        self.failing = failing

    def write_text(self, rel: str, value: str) -> None:
        if rel == self.failing:
            self.failing = None
            raise OSError(16, "Device or resource busy")
        super().write_text(rel, value)


def test_failed_write_during_tune_rolls_back(tmp_path):
    copy = copy_fixture("xavier_nx", tmp_path)
    original = clock_files(copy)
    root = FailingRoot(copy.root, "sys/devices/system/cpu/cpufreq/policy4/scaling_min_freq")
    with pytest.raises(TuneError, match="busy"):
        tune(root, str(tmp_path / "tune.json"))
    assert clock_files(root) == original
    assert not os.path.exists(str(tmp_path / "tune.json"))


def test_failed_write_during_reset_keeps_the_state_file(tmp_path):
    copy = copy_fixture("rpi4", tmp_path)
    original = clock_files(copy)
    state_file = str(tmp_path / "tune.json")
    tune(copy, state_file)
    root = FailingRoot(copy.root, "sys/devices/system/cpu/cpufreq/policy0/scaling_min_freq")
    with pytest.raises(TuneError, match="kept for another try"):
        reset(root, state_file)
    assert root.read_str("sys/devices/system/cpu/cpufreq/policy0/scaling_governor") == "ondemand"
    assert os.path.exists(state_file)
    reset(root, state_file)
    assert clock_files(root) == original


def test_cli_tune_reset_and_errors(tmp_path):
    root = copy_fixture("rpi4", tmp_path)
    runner = CliRunner()
    first = runner.invoke(cli, ["tune", "--sysroot", root.root], standalone_mode=False)
    assert first.exception is None and os.path.exists(root.path("var/lib/edge-agent/tune-state.json"))
    assert runner.invoke(cli, ["reset", "--sysroot", root.root], standalone_mode=False).exception is None
    again = runner.invoke(cli, ["reset", "--sysroot", root.root], standalone_mode=False)
    assert isinstance(again.exception, TuneError) and "nothing to reset" in str(again.exception)
    bare = runner.invoke(cli, ["tune", "--sysroot", str(tmp_path / "bare")], standalone_mode=False)
    assert isinstance(bare.exception, TuneError) and "no cpufreq" in str(bare.exception)


def test_corrupt_state_file_is_a_clear_error(tmp_path):
    state_file = tmp_path / "tune.json"
    state_file.write_text('{"schema_version": 99}')
    with pytest.raises(TuneError, match="schema version 99"):
        reset(SysRoot(str(tmp_path)), str(state_file))
    state_file.write_text("{not json")
    with pytest.raises(TuneError, match="cannot read"):
        reset(SysRoot(str(tmp_path)), str(state_file))
