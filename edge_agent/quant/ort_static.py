"""onnxruntime static quantization, in-process and offline: QDQ format, per-channel weights, a fixed calibration set.

The calibration inputs are drawn from the model's input shapes with a recorded seed (QuantizeSettings), so the same
fp32 model and settings give the same INT8 model on every run: a re-run resumes it and a record names it by sha256.
"""

import contextlib
import logging
import os
import tempfile
from typing import Dict, Iterator, List

from edge_agent.bundle.schema import QuantizeSettings
from edge_agent.errors import RuntimeUnsupported
from edge_agent.runtimes.inputs import make_inputs


ACTIVATION_TYPES = {"uint8": "QUInt8", "int8": "QInt8"}  # --quantize-activations -> onnxruntime's QuantType


def default_settings(calibration_samples: int, calibration_seed: int, activations: str = "uint8") -> QuantizeSettings:
    from edge_agent.runtimes import installed_version

    return QuantizeSettings(tool_version=installed_version("ort") or "unknown", calibration_samples=calibration_samples,
                            calibration_seed=calibration_seed, activation_type=ACTIVATION_TYPES[activations])


def calibration_inputs(input_shapes: Dict[str, List[int]], settings: QuantizeSettings) -> List[Dict[str, object]]:
    return [make_inputs(input_shapes, settings.calibration_seed + index)
            for index in range(settings.calibration_samples)]


def quantize_file(src_path: str, dst_path: str, input_shapes: Dict[str, List[int]],
                  settings: QuantizeSettings) -> None:
    """Write the INT8 (QDQ) model of src_path to dst_path; RuntimeUnsupported when onnxruntime cannot."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static

    class _Reader(CalibrationDataReader):
        def __init__(self, samples):
            self._samples = iter(samples)

        def get_next(self):
            return next(self._samples, None)

    try:
        with _quiet_quantizer(), tempfile.TemporaryDirectory(prefix="edge-agent-quant-") as workdir:
            if settings.preprocess:
                from onnxruntime.quantization.shape_inference import quant_pre_process

                prepared = os.path.join(workdir, "preprocessed.onnx")
                quant_pre_process(src_path, prepared, skip_symbolic_shape=True)
                src_path = prepared
            quantize_static(src_path, dst_path, _Reader(calibration_inputs(input_shapes, settings)),
                            quant_format=QuantFormat[settings.quant_format], per_channel=settings.per_channel,
                            activation_type=QuantType[settings.activation_type],
                            weight_type=QuantType[settings.weight_type],
                            calibrate_method=CalibrationMethod[settings.calibrate_method])
    except Exception as exc:  # the quantizer raises whatever onnx, onnxruntime or numpy raise on a graph it cannot take
        text = str(exc).strip().splitlines()
        raise RuntimeUnsupported("onnxruntime cannot quantize {}: {}".format(
            src_path, text[0] if text else type(exc).__name__)) from exc


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer advises pre-processing through the root logger on every call; it is not an error, and it
    would land in the middle of a progress bar."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
