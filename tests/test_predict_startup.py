"""`trainer predict` with an additive predictor starts fast because it imports none of the heavy modules other
commands need: what it must import (onnx to read the model, numpy, safetensors) is left. Not a timing test: it checks
which modules a fresh `trainer predict` loaded (docs/benchmarks-trainer.md has the time)."""

import json
import subprocess
import sys

import onnx
import pytest
from conftest import REPO, tiny_conv_model

from kernels.spaces import get_space
from kernels.spaces.nb201 import spec_to_arch
from trainer.dataset import Dataset
from trainer.fitting import fit
from trainer.tables import import_table

# Each costs 0.1 s (pyarrow, scipy, onnxruntime, rich's console) to seconds (matplotlib, scikit-learn, torch) to import
# on a 2-core VM; the predict path of a predictor without weights to run in torch needs none of them.
HEAVY = ("torch", "torch_geometric", "sklearn", "scipy", "pyarrow", "matplotlib", "rich", "onnxruntime", "MNN",
         "pydantic")

# Runs `trainer ARGS...` as the console script does, then prints the top-level modules it loaded on stderr's last line.
PROBE = """
import json, sys
from trainer.cli import main
try:
    main(sys.argv[1:])
finally:
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """pred/ (an additive predictor fitted on nine NB201 archs of one device) and model.onnx."""
    root = tmp_path_factory.mktemp("startup")
    space = get_space("nb201")
    specs = space.sample(8, seed=1) + [space.reference_spec()]
    lines = ["{},{}".format(spec_to_arch(spec), 1.0 + 0.25 * i) for i, spec in enumerate(specs)]
    (root / "lat.csv").write_text("arch,ms\n" + "\n".join(lines) + "\n")
    dataset = Dataset(root / "data", create=True)
    import_table(root / "lat.csv", "nb201", "arch", "ms", "dev", dataset)
    fit(dataset, ["dev"], "additive", None, 0, None, root / "pred")
    onnx.save(tiny_conv_model(8, size=32), str(root / "model.onnx"))
    return root


def test_predict_with_an_additive_predictor_imports_no_heavy_module(work):
    done = subprocess.run([sys.executable, "-c", PROBE, "predict", "--predictor", str(work / "pred"),
                           str(work / "model.onnx")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout.endswith("model.onnx\n"), done.stdout + done.stderr
    loaded = set(json.loads(done.stderr.splitlines()[-1]))
    assert "onnx" in loaded and not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
