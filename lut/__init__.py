"""Kernel lookup tables (nn-Meter style): a model is split into the kernels the device's runtime runs (its fusion
rules applied to the ONNX graph), each kernel's latency is looked up or regressed from kernel measurements made on
the device, and the model's latency is their sum plus a fitted per-model overhead. Format: lut.format."""
