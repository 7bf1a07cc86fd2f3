"""setup_rpi.sh and setup_jetson.sh: shellcheck, dry runs on this machine and against the board fixture trees,
and one real generic-mode install into a temporary venv (offline: dependencies come from this venv)."""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
SCRIPTS = ["setup_rpi.sh", "setup_jetson.sh", "setup_common.sh"]


def run_script(script, *args, env=None, cwd=REPO):
    return subprocess.run(["bash", os.path.join(cwd, script)] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, timeout=600,
                          universal_newlines=True, cwd=cwd)


def test_scripts_are_shellcheck_clean():
    shellcheck = os.path.join(os.path.dirname(sys.executable), "shellcheck")
    done = subprocess.run([shellcheck, "-x"] + SCRIPTS, cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("script,board", [("setup_rpi.sh", "Raspberry Pi"), ("setup_jetson.sh", "Jetson")])
def test_dry_run_off_board_installs_the_generic_agent(script, board, tmp_path):
    venv = tmp_path / "venv"
    done = run_script(script, "--dry-run", "--venv", str(venv))
    assert done.returncode == 0, done.stdout
    assert "this is not a {}".format(board) in done.stdout
    assert "[dry-run] {}/bin/python -m pip install {}/\\[agent\\]".format(venv, REPO) not in done.stdout
    assert "pip install {}\\[agent\\]".format(REPO) in done.stdout
    assert "[dry-run] {}/bin/edge-agent check".format(venv) in done.stdout
    assert "apt-get" not in done.stdout and "jetson" not in done.stdout.split("installing edge-agent")[1].split(
        "\n")[0]
    assert not venv.exists()


def test_dry_run_on_a_pi_gives_board_advice(tmp_path):
    done = run_script("setup_rpi.sh", "--dry-run", "--sysroot", os.path.join(FIXTURES, "rpi4"),
                      "--venv", str(tmp_path / "venv"))
    assert done.returncode == 0, done.stdout
    assert "board: Raspberry Pi 4 Model B Rev 1.4 (aarch64), OS: Debian GNU/Linux 12 (bookworm)" in done.stdout
    assert "governor now: ondemand" in done.stdout and "edge-agent tune" in done.stdout
    assert "apt-get install" in done.stdout or "system packages already installed" in done.stdout
    assert not (tmp_path / "venv").exists()


@pytest.mark.parametrize("answer,extras", [("--no-jtop", "\\[agent\\]"), ("--with-jtop", "\\[agent\\,jetson\\]")])
def test_dry_run_on_a_jetson_asks_about_jtop(answer, extras, tmp_path):
    done = run_script("setup_jetson.sh", "--dry-run", answer, "--sysroot", os.path.join(FIXTURES, "xavier_nx"),
                      "--venv", str(tmp_path / "venv"))
    assert done.returncode == 0, done.stdout
    assert "L4T: # R35 (release), REVISION: 4.1" in done.stdout
    assert "power mode now: MODE_20W_6CORE" in done.stdout
    assert "pip install {}{}".format(REPO, extras) in done.stdout
    assert ("jtop --install-service" in done.stdout) == (answer == "--with-jtop")


def test_unknown_option_is_refused():
    done = run_script("setup_rpi.sh", "--bogus")
    assert done.returncode == 1 and "unknown option: --bogus" in done.stdout


def _offline_env(tmp_path):
    """pip in the new venv sees this venv's packages (not edge-latency itself) and never reaches an index."""
    deps = tmp_path / "deps"
    deps.mkdir()
    site = sysconfig.get_paths()["purelib"]
    for name in os.listdir(site):
        if name.startswith(("edge_latency", "__editable__")) or name.endswith(".pth"):
            continue
        os.symlink(os.path.join(site, name), str(deps / name))
    env = dict(os.environ, PYTHONPATH=str(deps), PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHON=sys.executable)
    env.pop("EDGE_AGENT_SYSROOT", None)
    return env


def _copy_checkout(tmp_path):
    """The files pip needs to build the project, so the build writes nothing into the real checkout."""
    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in os.listdir(REPO):
        source = os.path.join(REPO, name)
        if name in ("pyproject.toml", "README.md") or name in SCRIPTS:
            shutil.copy2(source, str(repo / name))
        elif name in ("edge_agent", "kernels", "lut", "trainer") and os.path.isdir(source):
            shutil.copytree(source, str(repo / name), ignore=ignore)
    return repo


@pytest.mark.slow
def test_generic_install_into_a_fresh_venv(tmp_path):
    env = _offline_env(tmp_path)
    repo = _copy_checkout(tmp_path)
    venv = tmp_path / "venv"
    done = run_script("setup_rpi.sh", "--venv", str(venv), env=env, cwd=str(repo))
    assert done.returncode == 0, done.stdout
    assert "this is not a Raspberry Pi" in done.stdout
    assert "ready to measure" in done.stdout or "not ready to measure yet" in done.stdout
    agent = str(venv / "bin" / "edge-agent")
    version = subprocess.run([agent, "--version"], env=env, stdout=subprocess.PIPE, universal_newlines=True,
                             cwd=str(tmp_path))
    assert version.returncode == 0 and "0.1.0" in version.stdout
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import edge_agent; print(edge_agent.__file__)"],
                           env=env, stdout=subprocess.PIPE, universal_newlines=True, cwd=str(tmp_path))
    assert where.stdout.startswith(str(venv)), where.stdout  # the installed copy, not this checkout
    again = run_script("setup_rpi.sh", "--dry-run", "--venv", str(venv), env=env, cwd=str(repo))
    assert again.returncode == 0 and "reusing the virtual environment" in again.stdout
