"""The aarch64 board under emulation (fleet/arm64/arm64-root.sh): an arm64 Debian 12 root run through qemu-user, where
setup_rpi.sh installs the agent from aarch64 wheels and edge-agent info / check / bench / profile / pack run with both
runtimes; the packed bundles are aarch64 ones and `trainer ingest` here takes them. Root only, minutes: marked
`arm64` and `slow`; skipped where this machine cannot run aarch64 binaries. No timing is asserted: under emulation it
means nothing (docs/arm64-board.md)."""

import glob
import json
import os
import shutil
import subprocess
import tarfile

import onnx
import pytest
from conftest import REPO, run_cli, tiny_conv_model

pytestmark = [pytest.mark.arm64, pytest.mark.slow]

SCRIPT = os.path.join(REPO, "fleet", "arm64", "arm64-root.sh")
CANNOT_RUN_HERE = 77
CHECKOUT = "/opt/edge-latency"
PI_FIXTURE = CHECKOUT + "/tests/fixtures/rpi4"
VENV = "/root/edge-agent-venv"
AGENT = VENV + "/bin/edge-agent"
WORK = "/root/work"
RUNTIMES = ("ort", "mnn")
EM_AARCH64 = 183
COMPILED = ("onnxruntime/capi/onnxruntime_pybind11_state*.so", "_mnncengine*.so")  # onnxruntime's and MNN's
BOARD_MODEL = "QEMU emulated aarch64"  # what arm64-root.sh's device tree names the board
# The fastest preset in one window, any spread accepted: under emulation an item's spread says nothing, and an
# item may take many minutes on a busy machine (the preset kills one after 5).
FAST = ["--protocol", "quick", "--windows", "1", "--cv-threshold", "100", "--timeout", "3600"]


def _script(*args, timeout=3600):
    return subprocess.run(["nice", "-n", "19", "bash", SCRIPT] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, universal_newlines=True, timeout=timeout)


def _inside(board, *command, codes=(0,), timeout=3600):
    """Run a command in the board; its stdout, once its exit status is one of `codes`."""
    done = _script("run", board, *command, timeout=timeout)
    assert done.returncode in codes, "{} -> {}\n{}\n{}".format(command, done.returncode, done.stdout, done.stderr)
    return done.stdout


def _mounts_under(path):
    with open("/proc/self/mountinfo") as handle:
        points = [line.split()[4] for line in handle]
    return [point for point in points if point == path or point.startswith(path + "/")]


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A fresh board made from the cached root; removed afterwards, never through a mount left behind."""
    if os.geteuid() != 0:
        pytest.skip("needs root: debootstrap, binfmt_misc, mounts and chroot")
    host = _script("host", timeout=900)
    if host.returncode == CANNOT_RUN_HERE:
        pytest.skip(host.stderr.strip().splitlines()[-1])
    assert host.returncode == 0, host.stderr
    path = str(tmp_path_factory.mktemp("arm64") / "board")
    made = _script("board", path)
    assert made.returncode == 0, made.stderr
    try:
        yield path
    finally:
        leaked = _mounts_under(path)
        if not leaked:
            shutil.rmtree(path)
        assert not leaked, "mounts left under the board: {}".format(leaked)


@pytest.fixture(scope="module")
def installed(board):
    """setup_rpi.sh in generic mode (a chroot has no device tree); what it printed."""
    return _inside(board, "bash", CHECKOUT + "/setup_rpi.sh")


def _elf_machine(path):
    with open(path, "rb") as handle:
        header = handle.read(20)
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def _compiled_modules(board, pattern):
    return glob.glob("{}{}/lib/python3*/site-packages/{}".format(board, VENV, pattern))


def test_setup_installs_both_runtimes_from_aarch64_wheels(board, installed):
    assert "this is not a Raspberry Pi" in installed and "edge-agent check" in installed
    assert _inside(board, VENV + "/bin/python", "-c", "import platform; print(platform.machine())").strip() == "aarch64"
    for pattern in COMPILED:
        modules = _compiled_modules(board, pattern)
        assert modules, "no {} in the board's venv".format(pattern)
        assert {_elf_machine(path) for path in modules} == {EM_AARCH64}, modules


def test_setup_dry_run_takes_the_pi_path_on_the_fixture(board, installed):
    out = _inside(board, "bash", CHECKOUT + "/setup_rpi.sh", "--dry-run", "--sysroot", PI_FIXTURE, "--venv", VENV)
    assert "board: Raspberry Pi 4 Model B Rev 1.4 (aarch64), OS: Debian GNU/Linux 12 (bookworm)" in out
    assert "governor now: ondemand" in out


def test_info_and_check_on_the_board(board, installed):
    live = json.loads(_inside(board, AGENT, "info", "--json"))
    assert (live["arch"], live["cpu_model"]) == ("aarch64", "Cortex-A72")
    assert live["board_model"].startswith(BOARD_MODEL) and live["raspberry_pi"] is None
    assert live["runtime_versions"]["ort"] and live["runtime_versions"]["mnn"]
    pi = json.loads(_inside(board, AGENT, "info", "--json", "--sysroot", PI_FIXTURE))
    assert pi["board_model"].startswith("Raspberry Pi 4") and pi["raspberry_pi"]["arm_clock_hz"]
    # 2: not ready, which a VM busy with emulation may well be; either way every check reports.
    report = json.loads(_inside(board, AGENT, "check", "--json", "--sysroot", PI_FIXTURE, codes=(0, 2)))
    assert "governor" in json.dumps(report) and "other agents" in json.dumps(report)


@pytest.fixture(scope="module")
def packed(board, installed):
    """Per runtime: a bench of a tiny model against a tiny reference, a profile of 2 subnets, packed; host paths."""
    os.makedirs(board + WORK)
    for name, channels in (("tiny", 8), ("ref", 4)):
        onnx.save(tiny_conv_model(channels, size=16), "{}{}/{}.onnx".format(board, WORK, name))
    archives = {}
    for runtime in RUNTIMES:
        bench_dir, profile_dir = "{}/bench-{}".format(WORK, runtime), "{}/{}".format(WORK, runtime)
        _inside(board, AGENT, "bench", WORK + "/tiny.onnx", "--reference", WORK + "/ref.onnx", "--out", bench_dir,
                "--runtime", runtime, *FAST)
        _inside(board, AGENT, "profile", "--out", profile_dir, "--subnets", "2", "--runtime", runtime, *FAST)
        _inside(board, AGENT, "pack", profile_dir)
        archives[runtime] = board + profile_dir + ".tar.gz"
    return archives


def _bundle_files(archive):
    with tarfile.open(archive) as tar:
        members = {member.name.split("/", 1)[1]: member for member in tar.getmembers() if member.isfile()}
        return {name: tar.extractfile(member).read().decode("utf-8") for name, member in members.items()
                if name in ("manifest.json", "measurements.jsonl")}


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_bench_and_profile_write_aarch64_bundles(board, packed, runtime):
    from edge_agent.bundle.store import read_records

    bench = read_records("{}{}/bench-{}".format(board, WORK, runtime)).records
    assert [record.status for record in bench] == ["ok"]
    files = _bundle_files(packed[runtime])
    manifest = json.loads(files["manifest.json"])
    assert manifest["fingerprint"]["arch"] == "aarch64"
    assert manifest["fingerprint"]["board_model"].startswith(BOARD_MODEL)
    assert manifest["settings"]["runtime"] == runtime
    records = [json.loads(line) for line in files["measurements.jsonl"].splitlines()]
    assert {record["item_kind"] for record in records} == {"reference", "subnet"}
    assert len({record["item_id"] for record in records if record["item_kind"] == "subnet"}) == 2
    assert {record["status"] for record in records} == {"ok"}


def test_trainer_ingests_the_board_bundles(packed, tmp_path):
    dataset = str(tmp_path / "data")
    done = run_cli("trainer", "ingest", *[packed[runtime] for runtime in RUNTIMES], "--dataset", dataset)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = run_cli("trainer", "devices", "--dataset", dataset, "--json")
    assert listed.returncode == 0, listed.stderr
    devices = {device["device"]: device for device in json.loads(listed.stdout)}
    assert sorted(device["runtime"] for device in devices.values()) == sorted(RUNTIMES)
    assert all(name.startswith("qemu-emulated-aarch64") for name in devices), devices
    assert all(device["valid"] == device["rows"] > 0 for device in devices.values()), devices

