"""The README's commands that run in seconds are run here, as the README writes them, on tiny data.

Every command line of the README's fenced bash blocks is either run (RUN: the README's own line, with only the listed
replacements, each of which must still be in it) or deliberately skipped (SKIPPED, with the reason). A README line
that neither names fails the first test, and so does a RUN or SKIPPED entry no README line starts with any more: a
changed command or flag is noticed. The commands run in a fresh interpreter each, in README order, in a work folder
laid out as the README assumes (data/, pred/..., runs/..., ../shared/data/...)."""

import csv
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import onnx
import pytest
from conftest import REPO, tiny_conv_model
from test_api import _save_lut

from edge_agent.cli import main as agent_main
from kernels.spaces import get_space
from kernels.spaces.nb201 import parse_arch, spec_to_arch
from trainer.cli import main as trainer_main
from trainer.dataset import Dataset
from trainer.fitting import fit
from trainer.tables import import_table

README = Path(REPO) / "README.md"
PROGRAMS = {".venv/bin/trainer": [sys.executable, "-m", "trainer"],
            ".venv/bin/edge-agent": [sys.executable, "-m", "edge_agent"], ".venv/bin/python": [sys.executable]}


@dataclass(frozen=True)
class Run:
    """How a README command is run: the README's line with `replace` applied (each old text must be in the line),
    passing on one of `codes`, its stdout holding `prints`."""

    replace: Tuple[Tuple[str, str], ...] = ()
    codes: Tuple[int, ...] = (0,)
    prints: str = ""


# README command line (its start) -> how it runs here.
RUN: Dict[str, Run] = {
    ".venv/bin/edge-agent info": Run(prints="runtimes"),
    ".venv/bin/edge-agent check": Run(codes=(0, 2)),  # 2: not fit to measure (a shared VM often is not)
    ".venv/bin/trainer devices --dataset data/": Run(prints="pi4"),
    ".venv/bin/trainer predict --predictor runs/this-cpu/predictor-lut model.onnx": Run(prints="ms  model.onnx"),
    ".venv/bin/trainer predict --predictor runs/this-cpu/predictor --dataset runs/this-cpu/dataset --device DEVICE":
        Run(replace=(("DEVICE", "pi4"),), prints='"predicted_ms"'),
    ".venv/bin/trainer predict --predictor pred/lut my-models/net.onnx": Run(prints="ms  my-models/net.onnx"),
    ".venv/bin/trainer import-table ../shared/data/qed/tflite_cnn_real_e2e.csv --models runs/qed-models":
        Run(prints="tflite:s10|1large|float"),
    ".venv/bin/trainer fit --dataset qed/ --kind nodecost": Run(prints="nodecost"),
    ".venv/bin/trainer predict --predictor pred/qed --dataset qed/": Run(prints="my_cnn.onnx"),
    ".venv/bin/trainer import-table ../shared/data/nb201/nb201_latency.csv --space nb201": Run(prints="pixel3"),
    # a GCN on 900 archs takes minutes: the same command fits a tiny one for a few epochs on 12 of the table's archs
    ".venv/bin/trainer fit --dataset data/ --device pixel3 --kind gcn --cell-space nb201 --train-size 900":
        Run(replace=(("--kind gcn", "--kind gcn --hidden 8 --layers 2 --epochs 3"),
                     ("--train-size 900", "--train-size 12")), prints="pixel3"),
    ".venv/bin/trainer evaluate --predictor pred/pixel3 --dataset data/ --device pixel3 --plot eval.png": Run(),
    ".venv/bin/trainer evaluate --predictor pred/pixel3 --dataset data/ --device new-board --shots 10": Run(),
    ".venv/bin/trainer adapt --predictor pred/P --dataset data/ --device myboard --out pred/P-myboard":
        Run(prints="myboard"),
    ".venv/bin/trainer report --dataset data/": Run(prints="report: report.html"),
    ".venv/bin/python -c import duckdb;": Run(prints="pi4"),
    # 1000 candidates take about a minute here: 20 show the command works
    ".venv/bin/trainer search --predictor pred/lut --space cifar-supernet --budget-ms 1.0":
        Run(replace=(("--candidates 1000", "--candidates 20"),), prints="found.json"),
}

# README command line (its start) -> why it is not run.
SKIPPED: Dict[str, str] = {
    "python3 -m venv": "installs the project",
    ".venv/bin/python -m pytest": "the test suite itself",
    ".venv/bin/trainer quickstart": "the main job: 6-13 minutes of measuring and fitting",
    ".venv/bin/edge-agent bench": "measures (seconds per model by protocol); tests/test_bench_cli.py runs bench",
    ".venv/bin/edge-agent profile": "measures a space or kernels for minutes",
    "git clone": "board setup",
    "./setup_rpi.sh": "board setup (root; tests/test_setup_scripts.py checks the scripts)",
    "sudo ~/edge-agent-venv/bin/edge-agent": "tune / reset: root, on a board",
    "~/edge-agent-venv/bin/edge-agent": "on the board",
    "tmux new": "on the board",
    "scp": "copies from a board",
    "ANSIBLE_CONFIG=fleet/ansible.cfg .venv/bin/ansible-playbook":
        "drives boards over SSH; tests/test_fleet_playbook.py runs the playbook against this machine",
    ".venv/bin/trainer ingest": "needs a measured bundle; tests/test_trainer_ingest.py ingests them",
    ".venv/bin/trainer fit --kind lut": "needs kernel records from `edge-agent profile --kernels`",
    ".venv/bin/trainer fit --kind hybrid": "needs kernel records; tests/test_hybrid.py fits one on a planted device",
    ".venv/bin/trainer evaluate --predictor pred/hybrid": "needs the hybrid above; tests/test_hybrid.py evaluates one",
    ".venv/bin/trainer search --predictor pred/hybrid": "needs the hybrid above; tests/test_hybrid.py searches with one",
    ".venv/bin/pip install": "installs packages from the network",
    "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/build_qed_models.py":
        "builds 87 CNNs' graphs with the bench extra, about a minute (tiny graphs stand in)",
    ".venv/bin/trainer calibration-set": "chooses from 2,000 candidates: 1-2 minutes",
    ".venv/bin/python benchmarks/bench_int8.py": "measures 34 models in fp32 and INT8 for minutes; "
                                                 "tests/test_quantize.py measures INT8 on tiny models",
    ".venv/bin/trainer predict --predictor pred/P-myboard --spec calib/specs.json":
        "predicts calibration-set's specs, and calibration-set is not run (above)",
}


def _fenced_blocks(language: str) -> List[str]:
    """The README's fenced code blocks of one language, in order."""
    pattern = r"^```{}\n(.*?)^```".format(re.escape(language))
    return re.findall(pattern, README.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)


def readme_commands() -> List[List[str]]:
    """The shell words of each command line of the README's bash blocks, continuations joined, comments dropped."""
    lines = [line for block in _fenced_blocks("bash") for line in block.replace("\\\n", " ").splitlines()]
    return [words for words in (shlex.split(line, comments=True) for line in lines) if words]


def _text(words: List[str]) -> str:
    """A command's words joined by single spaces: what RUN and SKIPPED starts are matched against."""
    return " ".join(words)


def _entry(command: str) -> List[str]:
    """The RUN and SKIPPED starts that match a README command (its text)."""
    return [start for start in list(RUN) + list(SKIPPED) if command.startswith(start)]


def test_every_readme_command_is_run_or_deliberately_skipped():
    commands = [_text(words) for words in readme_commands()]
    unmatched = [c for c in commands if len(_entry(c)) != 1]
    assert not unmatched, "add each to RUN or SKIPPED (exactly one): {}".format(unmatched)
    stale = [start for start in list(RUN) + list(SKIPPED) if not any(c.startswith(start) for c in commands)]
    assert not stale, "no README command starts with these any more: {}".format(stale)


def _nb201_table(path: Path) -> None:
    """A tiny table in the public NB201 table's form (arch_str, output_connected, <device>_ms): 30 archs and the
    reference, synthetic latencies, one column per device the commands use."""
    space = get_space("nb201")
    archs = [spec_to_arch(s) for s in space.sample(30, seed=4)] + [spec_to_arch(space.reference_spec())]
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["nb201_index", "arch_str", "output_connected", "pixel3_ms", "pi4_ms", "myboard_ms"])
        for index, arch in enumerate(archs):
            ops = parse_arch(arch)
            ms = 2.0 + sum((1 + 0.03 * k) * (3.0 if op == "nor_conv_3x3" else 0.5) for k, op in enumerate(ops))
            writer.writerow([index, arch, 1, ms, 0.5 + 1.5 * ms, 0.2 * ms ** 1.2])


def _qed_table(path: Path, models: Path) -> None:
    """A tiny table in the public phone tables' form (model, FLOPS, size, <device>|mean and |std columns in µs) and
    its models' graphs: ten small convs, mobilenetv2_w1 (the README's reference) among them."""
    path.parent.mkdir(parents=True)
    models.mkdir(parents=True)
    devices = ("pixel4|1large|float", "s10|1large|float")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "FLOPS", "size"] + [d + "|" + s for d in devices for s in ("mean", "std")])
        for index, name in enumerate(["mobilenetv2_w1"] + ["net{}".format(i) for i in range(9)]):
            channels, size = 4 + 4 * (index % 5), 16 + 8 * (index % 3)
            onnx.save(tiny_conv_model(channels, size=size), str(models / (name + ".onnx")))
            us = 50.0 + 0.05 * channels * size * size
            writer.writerow([name, "", "", us, 0.02 * us, 20.0 + 1.3 * us, 0.03 * us])


def _dataset(root: Path, table: Path, columns: Dict[str, str]) -> Dataset:
    """A dataset of the NB201 table's columns, each filed under its device (device -> column)."""
    dataset = Dataset(root, create=True)
    for device, column in columns.items():
        import_table(table, "nb201", "arch_str", column, device, dataset)
    return dataset


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The folder the README's commands run in. What the skipped commands would have made is made here:
    data/ (devices pi4, new-board, myboard; the README imports pixel3), pred/additive and pred/P (additive, pi4),
    pred/lut (a tiny kernel LUT), runs/this-cpu/{dataset (pi4), predictor (additive), predictor-lut}, model.onnx,
    my-models/net.onnx, my_cnn.onnx, runs/qed-models/, and ../shared/data/{nb201/nb201_latency.csv,
    qed/tflite_cnn_real_e2e.csv}."""
    root = tmp_path_factory.mktemp("readme")
    work = root / "work"
    table = root / "shared" / "data" / "nb201" / "nb201_latency.csv"
    _nb201_table(table)
    _qed_table(root / "shared" / "data" / "qed" / "tflite_cnn_real_e2e.csv", work / "runs" / "qed-models")
    data = _dataset(work / "data", table, {"pi4": "pi4_ms", "new-board": "pi4_ms", "myboard": "myboard_ms"})
    for name in ("additive", "P"):
        fit(data, ["pi4"], "additive", None, 0, None, work / "pred" / name)
    runs = work / "runs" / "this-cpu"
    fit(_dataset(runs / "dataset", table, {"pi4": "pi4_ms"}), ["pi4"], "additive", None, 0, None, runs / "predictor")
    for lut in (work / "pred" / "lut", runs / "predictor-lut"):
        _save_lut(lut)
    (work / "my-models").mkdir()
    for path in (work / "model.onnx", work / "my-models" / "net.onnx", work / "my_cnn.onnx"):
        onnx.save(tiny_conv_model(8, size=32), str(path))
    return work


def _argv(words: List[str], run: Run) -> List[str]:
    """The README command as this test runs it: the replacements applied (whole words), the program run by this
    interpreter."""
    for old, new in run.replace:
        old_words = old.split(" ")
        at = next((i for i in range(len(words)) if words[i:i + len(old_words)] == old_words), None)
        assert at is not None, "the README's {!r} no longer has {!r}".format(_text(words), old)
        words = words[:at] + new.split(" ") + words[at + len(old_words):]
    return PROGRAMS[words[0]] + words[1:]


def test_readme_commands_run(work):
    ran = []
    for words in readme_commands():
        run = next((RUN[start] for start in _entry(_text(words)) if start in RUN), None)
        if run is None:
            continue
        done = subprocess.run(_argv(words, run), cwd=work, capture_output=True, text=True, timeout=120)
        assert done.returncode in run.codes and run.prints in done.stdout, "{}\n{}{}".format(
            _text(words), done.stdout, done.stderr)
        ran.append(words)
    assert len(ran) == len(RUN)
    assert (work / "eval.png").stat().st_size > 0 and (work / "pred" / "P-myboard" / "config.json").exists()
    assert len(json.loads((work / "found.json").read_text())) == 5


def test_readme_python_example_runs(work):
    blocks = _fenced_blocks("python")
    assert blocks
    for code in blocks:
        done = subprocess.run([sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, code + done.stderr


def _table_commands() -> List[Tuple[str, str]]:
    """(program, command) of every row of the README's command table."""
    table = README.read_text(encoding="utf-8").split("## Commands", 1)[1].split("\n## ", 1)[0]
    return sorted(set(re.findall(r"`(?:sudo )?(edge-agent|trainer) ([a-z][a-z-]*)", table)))


def test_agent_spaces_lists_the_spaces(capsys):
    """`edge-agent spaces [--json]`, a row of the README's command table."""
    with pytest.raises(SystemExit) as done:
        agent_main(["spaces", "--json"])
    assert done.value.code == 0 and "cifar-supernet" in capsys.readouterr().out


def test_every_command_in_the_readme_table_has_help(capsys):
    """'Every command has --help': the table's commands, and each program's own."""
    mains = {"edge-agent": agent_main, "trainer": trainer_main}
    commands = _table_commands()
    assert len(commands) >= 20
    for program, command in [(p, None) for p in mains] + commands:
        with pytest.raises(SystemExit) as done:
            mains[program]([command, "--help"] if command else ["--help"])
        out = capsys.readouterr().out
        assert done.value.code == 0 and "Usage:" in out, (program, command, out)
