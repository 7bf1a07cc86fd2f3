"""onnxruntime: one CPU session per model, fixed threads, no thread spinning between interleaved models."""

from typing import Dict, List, Optional

from edge_agent.errors import RuntimeUnsupported
from edge_agent.runtimes.inputs import make_inputs

NAME = "ort"
OPT_LEVELS = ("disable", "basic", "extended", "all")
DEFAULT_OPT_LEVEL = "all"


def version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def session_options(threads: int, opt_level: str = DEFAULT_OPT_LEVEL, optimized_model_path: Optional[str] = None,
                    profile_prefix: Optional[str] = None):
    import onnxruntime as ort

    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = levels[opt_level]
    # Spinning worker threads would steal the core from the interleaved reference model and from the other item.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    if optimized_model_path:
        options.optimized_model_filepath = optimized_model_path
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


class OrtSession:
    def __init__(self, onnx_path: str, input_shapes: Dict[str, List[int]], threads: int, input_seed: int = 0,
                 opt_level: str = DEFAULT_OPT_LEVEL, **_ignored):
        import onnxruntime as ort

        try:
            self._session = ort.InferenceSession(
                onnx_path, sess_options=session_options(threads, opt_level), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unsupported ops and bad graphs
            raise RuntimeUnsupported("onnxruntime cannot load {}: {}".format(onnx_path, _first_line(exc))) from exc
        self._feeds = make_inputs(input_shapes, input_seed)
        self._output_names = [o.name for o in self._session.get_outputs()]

    def run(self) -> None:
        self._session.run(self._output_names, self._feeds)

    def outputs(self) -> list:
        return self._session.run(self._output_names, self._feeds)


def open_session(onnx_path: str, input_shapes: Dict[str, List[int]], threads: int, input_seed: int = 0,
                 **options) -> OrtSession:
    return OrtSession(onnx_path, input_shapes, threads, input_seed, **options)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
