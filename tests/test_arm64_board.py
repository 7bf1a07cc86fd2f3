"""The aarch64 board under emulation (fleet/arm64/arm64-root.sh): an arm64 Debian 12 root run through qemu-user.

The fleet playbook drives it first, as an inventory host over sshd on a loopback port: its install step runs
setup_rpi.sh, which installs the agent from aarch64 wheels; it tunes, checks, profiles onnxruntime, packs, fetches
and resets. Then, in the same installed board, edge-agent info / check / bench with both runtimes and profile / pack
with MNN run directly. Both bundles are aarch64 ones of the emulated board, and `trainer ingest` here takes them.
Root only, minutes: marked `arm64` and `slow`; skipped where this machine cannot run aarch64 binaries. No timing is
asserted: under emulation it means nothing (docs/arm64-board.md)."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from contextlib import contextmanager

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
# tune and reset write here: a copy of the Pi 4 fixture inside the board, which has no cpufreq of its own.
PLAYBOOK_SYSROOT = "/root/pi4-sysroot"
GOVERNOR = "sys/devices/system/cpu/cpufreq/policy0/scaling_governor"
RUNTIMES = ("ort", "mnn")
PLAYBOOK_RUNTIME = "ort"  # the playbook profiles this one; the other is profiled directly
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


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_banner(port, process, deadline_s=600):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "sshd in the board exited: {}".format(process.stdout.read())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
                if connection.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError("sshd in the board never answered on port {}".format(port))


@contextmanager
def _sshd(board, key_dir):
    """The board's sshd on a loopback port, root by key only, as the board's PID 1; yields (port, private key)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_dir / "id")], check=True)
    os.makedirs(board + "/root/.ssh", mode=0o700, exist_ok=True)
    shutil.copyfile(str(key_dir / "id.pub"), board + "/root/.ssh/authorized_keys")
    port = _free_port()
    command = "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -p {} -o ListenAddress=127.0.0.1 -o UsePAM=no " \
              "-o PasswordAuthentication=no".format(port)
    process = subprocess.Popen(["nice", "-n", "19", "bash", SCRIPT, "run", board, "/bin/sh", "-c", command],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    try:
        _wait_for_banner(port, process)
        yield port, str(key_dir / "id")
    finally:
        # The process is run's unshare, which ignores SIGTERM while it waits: killed, it takes the board's PID 1
        # (sshd) with it, and every job Ansible started there.
        process.kill()
        process.wait(timeout=60)
        process.stdout.close()


def _playbook_sysroot(board):
    """The Pi 4 fixture copied into the board, named as the board: tune and reset get a cpufreq tree to write, and
    the bundle's fingerprint stays the emulated board's, never a real Pi 4's."""
    shutil.copytree(os.path.join(REPO, "tests", "fixtures", "rpi4"), board + PLAYBOOK_SYSROOT, symlinks=True)
    model = _inside(board, "cat", "/sys/firmware/devicetree/base/model")
    with open(board + PLAYBOOK_SYSROOT + "/proc/device-tree/model", "w") as handle:
        handle.write(model)


def _inventory(path, port, key, fetch_dir):
    board_vars = {
        "ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root",
        "ansible_ssh_private_key_file": key, "ansible_python_interpreter": "/usr/bin/python3",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes",
        # The checkout `board` copied, this working tree (the playbook's own copy would be the committed HEAD).
        "edge_agent_copy_checkout": False, "edge_agent_checkout_dir": CHECKOUT, "edge_agent_venv": VENV,
        "edge_agent_sysroot": PLAYBOOK_SYSROOT, "edge_agent_system_packages": [], "edge_agent_become": False,
        "edge_agent_runtime": PLAYBOOK_RUNTIME, "edge_agent_subnets": 2, "edge_agent_protocol": "quick",
        # Each poll starts Python under emulation over SSH, beside the agent: seldom.
        "edge_agent_poll_s": 20, "edge_agent_profile_args": FAST[2:], "edge_agent_results_dir": "/root/fleet-results",
        "edge_agent_fetch_dir": str(fetch_dir),
    }
    path.write_text(json.dumps({"boards": {"hosts": {"arm64-board": board_vars}}}))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def played(board, tmp_path_factory):
    """ansible-playbook fleet/profile.yml against the board over SSH, whose install step sets up the board for the
    tests after it too: (its run, the workstation's fetch folder)."""
    work = tmp_path_factory.mktemp("playbook")
    _playbook_sysroot(board)
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "fleet", "ansible.cfg"), ANSIBLE_HOME=str(work / "home"),
               ANSIBLE_LOCAL_TEMP=str(work / "tmp"), ANSIBLE_NOCOLOR="1",
               PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    with _sshd(board, work) as (port, key):
        inventory = _inventory(work / "hosts.yml", port, key, work / "fetched")
        done = subprocess.run(["nice", "-n", "19", os.path.join(bin_dir, "ansible-playbook"), "-i", str(inventory),
                               os.path.join(REPO, "fleet", "profile.yml")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, universal_newlines=True,
                              timeout=3 * 3600)
    return done, work / "fetched"


def _elf_machine(path):
    with open(path, "rb") as handle:
        header = handle.read(20)
    assert header[:4] == b"\x7fELF", path
    return int.from_bytes(header[18:20], "little")


def _compiled_modules(board, pattern):
    return glob.glob("{}{}/lib/python3*/site-packages/{}".format(board, VENV, pattern))


def test_playbook_drives_the_board_over_ssh(board, played):
    done, fetched = played
    assert done.returncode == 0, done.stdout[-6000:]
    summary = json.loads((fetched / "fleet-summary.json").read_text())
    assert [(outcome["board"], outcome["status"]) for outcome in summary["boards"]] == [("arm64-board", "fetched")]
    with open(board + PLAYBOOK_SYSROOT + "/" + GOVERNOR) as handle:
        assert handle.read().strip() == "ondemand"  # reset put back what tune changed


def test_setup_installs_both_runtimes_from_aarch64_wheels(board, played):
    assert _inside(board, VENV + "/bin/python", "-c", "import platform; print(platform.machine())").strip() == "aarch64"
    for pattern in COMPILED:
        modules = _compiled_modules(board, pattern)
        assert modules, "no {} in the board's venv".format(pattern)
        assert {_elf_machine(path) for path in modules} == {EM_AARCH64}, modules


def test_setup_dry_run_takes_the_pi_path_on_the_fixture(board, played):
    out = _inside(board, "bash", CHECKOUT + "/setup_rpi.sh", "--dry-run", "--sysroot", PI_FIXTURE, "--venv", VENV)
    assert "board: Raspberry Pi 4 Model B Rev 1.4 (aarch64), OS: Debian GNU/Linux 12 (bookworm)" in out
    assert "governor now: ondemand" in out


def test_info_and_check_on_the_board(board, played):
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
def packed(board, played):
    """Per runtime: a bench of a tiny model against a tiny reference, and an archived profile of 2 subnets (the
    playbook's fetched one for its runtime, made here for the other); host paths of the archives."""
    os.makedirs(board + WORK)
    for name, channels in (("tiny", 8), ("ref", 4)):
        onnx.save(tiny_conv_model(channels, size=16), "{}{}/{}.onnx".format(board, WORK, name))
    archives = {runtime: str(path) for runtime in RUNTIMES for path in played[1].glob("*-{}-*.tar.gz".format(runtime))}
    for runtime in RUNTIMES:
        _inside(board, AGENT, "bench", WORK + "/tiny.onnx", "--reference", WORK + "/ref.onnx", "--out",
                "{}/bench-{}".format(WORK, runtime), "--runtime", runtime, *FAST)
        if runtime != PLAYBOOK_RUNTIME:
            profile_dir = "{}/{}".format(WORK, runtime)
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

