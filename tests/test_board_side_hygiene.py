"""The board side stays light and runs on Python 3.8 (JetPack 5)."""

import os
import subprocess
import sys

import pytest
from conftest import REPO


def test_import_edge_agent_and_its_commands_pull_no_heavy_libraries():
    code = ("import sys, edge_agent, edge_agent.cli, kernels, kernels.spaces, edge_agent.commands.profile, "
            "edge_agent.commands.bench\n"
            "heavy = [m for m in ('torch', 'torch_geometric', 'sklearn', 'pyarrow', 'matplotlib', 'onnxruntime', 'MNN')"
            " if m in sys.modules]\n"
            "print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == ""


def test_board_side_source_is_python_3_8_compatible():
    vermin = os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.exists(vermin):
        pytest.skip("vermin is not installed (it comes with the `test` extra)")
    result = subprocess.run([vermin, "-t=3.8-", "--no-tips", "--violations", "--eval-annotations",
                             "--no-parse-comments", "edge_agent", "kernels"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
