"""MNN: ONNX is converted in-process through the wheel's converter extension.

Never the `mnnconvert` console script nor `MNN.tools`: they pip-install a logging SDK and send conversion logs
out (see NOTES). The converter reports failure only on its own output, so that output is captured and read.
"""

import os
import re
import tempfile
from typing import Dict, List, Optional

import numpy as np

from edge_agent.errors import RuntimeUnsupported
from edge_agent.runtimes.inputs import make_inputs
from edge_agent.runtimes.quiet import flush_c_stdio, import_mnn

NAME = "mnn"
PRECISIONS = ("high", "normal", "low")
DEFAULT_PRECISION = "high"
WINOGRAD_MEMORY_LEVEL_HINT = 3  # MNN::Interpreter::HintMode::WINOGRAD_MEMORY_LEVEL
DEFAULT_WINOGRAD_MEMORY_LEVEL = 3  # MNN 3.x RuntimeHint::winogradMemoryUsed: the largest units its cost model likes

_UNSUPPORTED = re.compile(r"(?:These Op Not Support|not supported)[^:]*:\s*(.+)", re.IGNORECASE)


def version() -> str:
    return str(import_mnn().version())


def convert_onnx_to_mnn(onnx_path: str, mnn_path: str, extra_args: Optional[List[str]] = None) -> str:
    """Convert and return the converter's log; raise RuntimeUnsupported naming the op MNN lacks."""
    import_mnn()
    import _tools

    argv = ["mnnconvert", "-f", "ONNX", "--modelFile", onnx_path, "--MNNModel", mnn_path, "--bizCode", "edge"]
    log = _capture_fd_output(lambda: _tools.mnnconvert(argv + list(extra_args or [])))
    if "Converted Success" not in log or not os.path.exists(mnn_path):
        match = _UNSUPPORTED.search(log)
        reason = "op not supported by MNN: {}".format(match.group(1).strip()) if match else _last_line(log)
        raise RuntimeUnsupported("MNN cannot convert {}: {}".format(os.path.basename(onnx_path), reason))
    return log


def dump_mnn_json(mnn_path: str, json_path: str) -> None:
    """The converted model as JSON; `oplists[i].type` tells which kernels MNN will run."""
    import_mnn()
    import _tools

    _capture_fd_output(lambda: _tools.mnnconvert(
        ["mnnconvert", "-f", "MNN", "--modelFile", mnn_path, "--JsonFile", json_path, "--bizCode", "edge"]))


def _capture_fd_output(call) -> str:
    """Run `call` with fds 1 and 2 sent to a temporary file: the converter writes from C++, not via sys.stdout."""
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            call()
        finally:
            flush_c_stdio()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        sink.seek(0)
        return sink.read().decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "the converter gave no output"


class MnnSession:
    def __init__(self, onnx_path: str, input_shapes: Dict[str, List[int]], threads: int, input_seed: int = 0,
                 precision: str = DEFAULT_PRECISION, cache_dir: Optional[str] = None,
                 winograd_memory_level: Optional[int] = None, **_ignored):
        mnn = import_mnn()
        self._workdir = None
        if cache_dir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="edge-agent-mnn-")
            cache_dir = self._workdir.name
        mnn_path = os.path.join(cache_dir, os.path.splitext(os.path.basename(onnx_path))[0] + ".mnn")
        if not os.path.exists(mnn_path):
            # Convert beside, then rename: a kill mid-conversion must not leave a half model that a resume would load.
            partial = "{}.tmp-{}".format(mnn_path, os.getpid())
            convert_onnx_to_mnn(onnx_path, partial)
            os.replace(partial, mnn_path)
        self._mnn = mnn
        self.mnn_path = mnn_path
        self.interpreter = mnn.Interpreter(mnn_path)
        if winograd_memory_level is not None:
            self.interpreter.setSessionHint(WINOGRAD_MEMORY_LEVEL_HINT, int(winograd_memory_level))
        config = {"backend": "CPU", "numThread": threads, "precision": precision}
        self.session = _capture_result(lambda: self.interpreter.createSession(config))
        self._inputs = self.interpreter.getSessionInputAll(self.session)
        for name, array in make_inputs(input_shapes, input_seed).items():
            if name not in self._inputs:
                raise RuntimeUnsupported("MNN model has no input named {!r}".format(name))
            host = mnn.Tensor(array.shape, mnn.Halide_Type_Float, array, mnn.Tensor_DimensionType_Caffe)
            self._inputs[name].copyFrom(host)

    def run(self) -> None:
        self.interpreter.runSession(self.session)

    def outputs(self) -> list:
        self.run()
        results = []
        for _, tensor in sorted(self.interpreter.getSessionOutputAll(self.session).items()):
            shape = tensor.getShape()
            host = self._mnn.Tensor(shape, self._mnn.Halide_Type_Float, np.zeros(shape, np.float32),
                                    self._mnn.Tensor_DimensionType_Caffe)
            tensor.copyToHostTensor(host)
            results.append(np.array(host.getNumpyData()).reshape(shape))
        return results


def _capture_result(call):
    """createSession prints 'MNN use high precision' on stdout; keep stdout clean for --json output."""
    box = []
    _capture_fd_output(lambda: box.append(call()))
    return box[0]


def open_session(onnx_path: str, input_shapes: Dict[str, List[int]], threads: int, input_seed: int = 0,
                 **options) -> MnnSession:
    return MnnSession(onnx_path, input_shapes, threads, input_seed, **options)
