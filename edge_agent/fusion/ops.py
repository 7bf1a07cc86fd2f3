"""Op classes: the vocabulary fusion rules and kernel partitions speak (a depthwise Conv is not a Conv here)."""

from typing import Dict, Sequence

_BY_OP_TYPE: Dict[str, str] = {
    "BatchNormalization": "bn",
    "Relu": "relu",
    "Clip": "relu6",
    "HardSwish": "hswish",
    "HardSigmoid": "hsigmoid",
    "Sigmoid": "sigmoid",
    "Add": "add",
    "Mul": "mul",
    "Gemm": "fc",
    "MatMul": "fc",
    "MaxPool": "maxpool",
    "AveragePool": "avgpool",
    "GlobalAveragePool": "global_avgpool",
    "GlobalMaxPool": "global_maxpool",
    "Concat": "concat",
    "Flatten": "reshape",
    "Reshape": "reshape",
    "Transpose": "transpose",
}
ACTIVATION_CLASSES = ("relu", "relu6", "hswish", "hsigmoid", "sigmoid")


def op_class(op_type: str, groups: int = 1, cin: int = 0, cout: int = 0) -> str:
    """The class of one node; unknown op types keep their own name, lower-cased, so they never collide."""
    if op_type == "Conv":
        return "dwconv" if groups > 1 and groups == cin == cout else "conv"
    return _BY_OP_TYPE.get(op_type, op_type.lower())


def chain_name(classes: Sequence[str]) -> str:
    return "+".join(classes)
