"""fleet/profile.yml against this machine: three inventory hosts on a local connection, each reading a copy of a
board fixture tree through --sysroot (tune and reset write there, never to this VM's own /sys).

pi-ready (the Pi 4 fixture) is profiled, packed, fetched and ingested; pi-throttled (under-voltage, too hot) is
reported not ready and skipped; pi-broken (an empty tree: tune cannot read a governor) fails and is reported, and
the others go on. The first run is killed while the profile runs, as a dropped connection would cut it: the profile
finishes anyway, and the second run resumes the bundle instead of measuring again. The install step copies this
checkout's HEAD and runs its setup script as a dry run against this checkout's venv (a real install needs a board,
or the emulated one)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, REPO

from trainer.dataset import Dataset

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
GOVERNOR = "sys/devices/system/cpu/cpufreq/policy0/scaling_governor"
SUBNETS = 2
COPY_CHECKOUT = os.path.exists(os.path.join(REPO, ".git"))


def _env(tmp_path):
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=os.path.join(REPO, "fleet", "ansible.cfg"), ANSIBLE_HOME=str(tmp_path / "ansible"),
               ANSIBLE_ASYNC_DIR=str(tmp_path / "async"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_NOCOLOR="1", PATH=str(BIN) + os.pathsep + env.get("PATH", ""))
    return env


def _inventory(tmp_path):
    roots = {}
    for host, fixture in (("pi-ready", "rpi4"), ("pi-throttled", "rpi4_throttled")):
        roots[host] = str(tmp_path / "roots" / host)
        shutil.copytree(os.path.join(FIXTURES, fixture), roots[host], symlinks=True)
    roots["pi-broken"] = str(tmp_path / "roots" / "pi-broken")
    os.makedirs(roots["pi-broken"])
    common = {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
        # The install step copies the checkout's HEAD, which needs one (not an exported tree).
        "edge_agent_copy_checkout": COPY_CHECKOUT,
        "edge_agent_checkout_dir": str(tmp_path / "checkout") if COPY_CHECKOUT else REPO,
        "edge_agent_venv": str(BIN.parent),
        "edge_agent_setup_dry_run": True, "edge_agent_system_packages": [], "edge_agent_become": False,
        "edge_agent_subnets": SUBNETS, "edge_agent_protocol": "quick", "edge_agent_poll_s": 2,
        # This shared VM is noisy, more so with Ansible polling beside the agent; a valid item is not measured again.
        "edge_agent_profile_args": ["--cv-threshold", "5"],
        "edge_agent_results_dir": str(tmp_path / "board"), "edge_agent_fetch_dir": str(tmp_path / "fetched"),
    }
    inventory = {"boards": {"hosts": {host: {"edge_agent_sysroot": root} for host, root in roots.items()},
                            "vars": common}}
    path = tmp_path / "hosts.yml"
    path.write_text(json.dumps(inventory))  # JSON is YAML
    return path, roots


def _playbook(inventory, env):
    return [str(BIN / "ansible-playbook"), "-i", str(inventory), os.path.join(REPO, "fleet", "profile.yml")], env


def _cut_off_while_profiling(command, env, marker, deadline_s=90):
    """Start the playbook and kill it, workers and all, once the profile job's marker is written."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    deadline = time.monotonic() + deadline_s
    while not marker.exists():
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "the profile pass never started"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()
    return json.loads(marker.read_text())["jid"]


def _wait_for_job(path, deadline_s=120):
    """The async job's result once it finished (Ansible's wrapper drops "started" from the file then)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):  # not written yet, or being rewritten
            result = {"started": 1}
        if "started" not in result:
            return result
        time.sleep(0.5)
    raise AssertionError("the profile job did not finish after its playbook was killed")


def _records(bundle):
    with open(bundle / "measurements.jsonl") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_playbook_profiles_the_ready_board_skips_the_others_and_resumes(tmp_path):
    inventory, roots = _inventory(tmp_path)
    original = {host: (Path(root) / GOVERNOR).read_text().strip() for host, root in roots.items() if host != "pi-broken"}
    command, env = _playbook(inventory, _env(tmp_path))
    bundle = tmp_path / "board" / "pi-ready-ort-1t"

    jid = _cut_off_while_profiling(command, env, Path(str(bundle) + ".ansible-job.json"))
    assert (Path(roots["pi-ready"]) / GOVERNOR).read_text().strip() == "performance"  # killed before its reset
    job = _wait_for_job(tmp_path / "async" / jid)
    assert job["rc"] in (0, 3), job.get("stderr")
    measured = _records(bundle)
    assert {r["item_kind"] for r in measured} == {"reference", "subnet"}
    assert len({r["item_id"] for r in measured if r["item_kind"] == "subnet"}) == SUBNETS
    assert all(r["status"] == "ok" for r in measured)

    assert (tmp_path / "checkout" / "setup_rpi.sh").exists() == COPY_CHECKOUT

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2, second.stdout[-3000:]  # pi-broken failed; the summary says so
    assert "not profiled: pi-broken" in second.stdout
    summary = json.loads((tmp_path / "fetched" / "fleet-summary.json").read_text())
    assert summary["schema_version"] == 1
    status = {b["board"]: b for b in summary["boards"]}
    assert {board: b["status"] for board, b in status.items()} == {
        "pi-ready": "fetched", "pi-throttled": "not ready", "pi-broken": "failed"}
    assert "under_voltage_now" in status["pi-throttled"]["detail"]
    assert "Tune the CPU for measuring" in status["pi-broken"]["detail"]
    # The second run resumed: every item was already measured, so no record was added.
    assert [r["record_id"] for r in _records(bundle)] == [r["record_id"] for r in measured]
    for host, governor in original.items():  # reset ran on every board tune touched, the killed run's too
        assert (Path(roots[host]) / GOVERNOR).read_text().strip() == governor
        assert not (Path(roots[host]) / "var/lib/edge-agent/tune-state.json").exists()

    archive = tmp_path / "fetched" / "pi-ready-ort-1t.tar.gz"
    assert status["pi-ready"]["detail"] == str(archive)
    dataset = tmp_path / "dataset"
    # The fetch folder as a whole, as the README ingests it: the summary beside the archive is not a bundle.
    ingest = subprocess.run([str(BIN / "trainer"), "ingest", str(tmp_path / "fetched"), "--dataset", str(dataset)],
                            capture_output=True, text=True, timeout=120)
    assert ingest.returncode == 0, ingest.stderr
    rows = list(Dataset(str(dataset)).rows(columns=["record_id", "item_id"]))
    assert sorted(r["record_id"] for r in rows) == sorted(r["record_id"] for r in measured)
    assert {r["item_id"] for r in rows} == {r["item_id"] for r in measured}


def test_ansible_lint_passes_over_the_fleet_folder():
    lint = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--nocolor", "fleet/"], cwd=REPO,
                          env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "fleet", "ansible.cfg")),
                          capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
