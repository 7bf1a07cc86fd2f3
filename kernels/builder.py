"""GraphBuilder: ONNX graphs of edge-CNN blocks with deterministic random weights.

By default a graph looks like a trained network exported for deployment: BatchNormalization is folded into the
preceding convolution's weights and bias. `fold_bn=False` keeps Conv → BatchNormalization as separate nodes, drawn
from the same random numbers, so both variants compute the same function (fusion detection compares them).
Weights: He-uniform convolutions and FC, BN statistics near identity; every draw comes from one numpy
RandomState(seed) in build order, so a seed gives byte-identical models on every machine.
Graphs use opset 17 and IR version 8, which onnxruntime 1.16 (the oldest on boards) still loads.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kernels.errors import KernelsError

OPSET = 17
IR_VERSION = 8
BN_EPSILON = 1e-5
ACTIVATIONS = ("none", "relu", "relu6", "hswish", "hsigmoid", "sigmoid")

Shape = Tuple[int, ...]


class GraphBuilder:
    """Collects nodes and initializers, hands out unique tensor names and tracks every tensor's static shape."""

    def __init__(self, input_shape: Sequence[int] = (1, 3, 32, 32), seed: int = 0, fold_bn: bool = True,
                 name: str = "model", input_name: str = "input"):
        self.rng = np.random.RandomState(seed)
        self.fold_bn = fold_bn
        self.name = name
        self.nodes: List[onnx.NodeProto] = []
        self.initializers: List[onnx.TensorProto] = []
        self.shapes: Dict[str, Shape] = {}
        self.inputs: List[str] = []
        self._counts: Dict[str, int] = {}
        self._scalars: Dict[float, str] = {}
        self.input = self.add_input(input_shape, input_name)

    # -- plumbing ---------------------------------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        count = self._counts.get(prefix, 0)
        self._counts[prefix] = count + 1
        return "{}_{}".format(prefix, count)

    def add_input(self, shape: Sequence[int], name: Optional[str] = None) -> str:
        name = name or self.fresh("input")
        if name in self.shapes:
            raise KernelsError("tensor name {!r} is already used".format(name))
        self.shapes[name] = tuple(int(d) for d in shape)
        self.inputs.append(name)
        return name

    def shape(self, name: str) -> Shape:
        return self.shapes[name]

    def channels(self, name: str) -> int:
        return self.shapes[name][1]

    def constant(self, prefix: str, array: "np.ndarray") -> str:
        name = self.fresh(prefix)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        self.shapes[name] = tuple(array.shape)
        return name

    def scalar(self, value: float) -> str:
        """A shared float32 scalar initializer (Clip bounds)."""
        if value not in self._scalars:
            self._scalars[value] = self.constant("scalar", np.array(value, dtype=np.float32))
        return self._scalars[value]

    def op(self, op_type: str, inputs: Sequence[str], out_shape: Sequence[int], prefix: Optional[str] = None,
           **attrs) -> str:
        """Append one node with one output whose shape the caller states; return the output's name."""
        node_name = self.fresh(prefix or op_type.lower())
        output = node_name + "_out"
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=node_name, **attrs))
        self.shapes[output] = tuple(int(d) for d in out_shape)
        return output

    def build(self, outputs: Sequence[str]) -> onnx.ModelProto:
        """The model with `outputs` as graph outputs. No checker here: callers that need it run it (it is slow)."""
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(self.shapes[n])) for n in self.inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(self.shapes[n])) for n in outputs],
            initializer=self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="edge-latency-kernels")
        model.ir_version = IR_VERSION
        return model

    # -- weights ----------------------------------------------------------------------------------------------------
    def _he_uniform(self, shape: Sequence[int], fan_in: int) -> "np.ndarray":
        # int16 draws scaled to U(-a, a): 7x faster than standard_normal, and weight generation dominated build time
        bound = np.float32(np.sqrt(6.0 / max(fan_in, 1)) / 32768.0)
        return self.rng.randint(-32768, 32768, size=tuple(shape), dtype=np.int16).astype(np.float32) * bound

    def _bn_stats(self, channels: int) -> Tuple["np.ndarray", ...]:
        gamma = self.rng.uniform(0.8, 1.2, channels).astype(np.float32)
        beta = (self.rng.standard_normal(channels) * 0.1).astype(np.float32)
        mean = (self.rng.standard_normal(channels) * 0.1).astype(np.float32)
        var = self.rng.uniform(0.5, 1.5, channels).astype(np.float32)
        return gamma, beta, mean, var

    # -- layers -----------------------------------------------------------------------------------------------------
    def conv(self, x: str, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, bn: bool = True,
             act: str = "relu", pad: Optional[int] = None, bias: Optional[bool] = None) -> str:
        """Conv (+BN)(+activation). Padding defaults to kernel // 2; a conv without BN has a bias by default."""
        n, cin, h, w = self.shapes[x]
        _check_conv(cin, cout, kernel, stride, groups)
        pad = kernel // 2 if pad is None else pad
        out_shape = (n, cout, (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1)
        if out_shape[2] < 1 or out_shape[3] < 1:
            raise KernelsError("conv kernel {} stride {} does not fit a {}x{} input".format(kernel, stride, h, w))
        weight = self._he_uniform((cout, cin // groups, kernel, kernel), cin // groups * kernel * kernel)
        has_bias = (not bn) if bias is None else bias
        conv_bias = (self.rng.standard_normal(cout) * 0.1).astype(np.float32) if has_bias else None
        attrs = dict(kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4, group=groups)
        if bn and self.fold_bn:
            gamma, beta, mean, var = self._bn_stats(cout)
            scale = gamma / np.sqrt(var + BN_EPSILON)
            weight = weight * scale[:, None, None, None]
            folded = beta - mean * scale + (conv_bias * scale if conv_bias is not None else 0.0)
            conv_bias = folded.astype(np.float32)
        inputs = [x, self.constant("w", weight)] + ([self.constant("b", conv_bias)] if conv_bias is not None else [])
        y = self.op("Conv", inputs, out_shape, prefix="conv", **attrs)
        if bn and not self.fold_bn:
            y = self.batch_norm(y)
        return self.act(y, act)

    def dwconv(self, x: str, kernel: int = 3, stride: int = 1, bn: bool = True, act: str = "relu") -> str:
        cin = self.channels(x)
        return self.conv(x, cin, kernel=kernel, stride=stride, groups=cin, bn=bn, act=act)

    def batch_norm(self, x: str) -> str:
        """A standalone BatchNormalization node (one that follows no conv stays a node even when folding)."""
        stats = self._bn_stats(self.channels(x))
        names = [self.constant(p, a) for p, a in zip(("bn_scale", "bn_bias", "bn_mean", "bn_var"), stats)]
        return self.op("BatchNormalization", [x] + names, self.shapes[x], prefix="bn", epsilon=BN_EPSILON)

    def act(self, x: str, kind: str = "relu") -> str:
        if kind not in ACTIVATIONS:
            raise KernelsError("unknown activation {!r}; choose one of: {}".format(kind, ", ".join(ACTIVATIONS)))
        shape = self.shapes[x]
        if kind == "none":
            return x
        if kind == "relu6":
            return self.op("Clip", [x, self.scalar(0.0), self.scalar(6.0)], shape, prefix="relu6")
        if kind == "hsigmoid":
            return self.op("HardSigmoid", [x], shape, prefix="hsigmoid", alpha=1.0 / 6, beta=0.5)
        op_type = {"relu": "Relu", "hswish": "HardSwish", "sigmoid": "Sigmoid"}[kind]
        return self.op(op_type, [x], shape, prefix=kind)

    def pool(self, x: str, kind: str = "max", kernel: int = 2, stride: Optional[int] = None, pad: int = 0,
             count_include_pad: bool = False) -> str:
        """MaxPool ("max") or AveragePool ("avg"); stride defaults to the kernel size."""
        if kind not in ("max", "avg"):
            raise KernelsError("unknown pool {!r}; choose max or avg".format(kind))
        stride = kernel if stride is None else stride
        n, c, h, w = self.shapes[x]
        out_shape = (n, c, (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1)
        if kernel < 1 or stride < 1 or pad > kernel // 2 or out_shape[2] < 1 or out_shape[3] < 1:
            raise KernelsError("pool kernel {} stride {} pad {} does not fit a {}x{} input".format(
                kernel, stride, pad, h, w))
        attrs = dict(kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pad] * 4)
        if kind == "avg":
            return self.op("AveragePool", [x], out_shape, prefix="avgpool",
                           count_include_pad=int(count_include_pad), **attrs)
        return self.op("MaxPool", [x], out_shape, prefix="maxpool", **attrs)

    def global_pool(self, x: str, kind: str = "avg") -> str:
        if kind not in ("max", "avg"):
            raise KernelsError("unknown global pool {!r}; choose max or avg".format(kind))
        n, c = self.shapes[x][:2]
        op_type = "GlobalAveragePool" if kind == "avg" else "GlobalMaxPool"
        return self.op(op_type, [x], (n, c, 1, 1), prefix="gap" if kind == "avg" else "gmp")

    def fc(self, x: str, cout: int, act: str = "none") -> str:
        """Gemm with a bias; a rank-4 input is flattened first."""
        shape = self.shapes[x]
        if len(shape) != 2:
            shape = (shape[0], int(np.prod(shape[1:])))
            x = self.op("Flatten", [x], shape, prefix="flatten", axis=1)
        weight = self._he_uniform((cout, shape[1]), shape[1])
        bias = (self.rng.standard_normal(cout) * 0.1).astype(np.float32)
        y = self.op("Gemm", [x, self.constant("fc_w", weight), self.constant("fc_b", bias)], (shape[0], cout),
                    prefix="fc", transB=1)
        return self.act(y, act)

    def add(self, a: str, b: str, act: str = "none") -> str:
        if self.shapes[a] != self.shapes[b]:
            raise KernelsError("cannot add shapes {} and {}".format(self.shapes[a], self.shapes[b]))
        return self.act(self.op("Add", [a, b], self.shapes[a], prefix="add"), act)

    def concat(self, xs: Sequence[str]) -> str:
        shapes = [self.shapes[x] for x in xs]
        if len({(s[0],) + s[2:] for s in shapes}) != 1:
            raise KernelsError("cannot concatenate shapes {} along channels".format(shapes))
        out_shape = (shapes[0][0], sum(s[1] for s in shapes)) + shapes[0][2:]
        return self.op("Concat", list(xs), out_shape, prefix="concat", axis=1)

    def channel_shuffle(self, x: str, groups: int) -> str:
        """ShuffleNet's shuffle: Reshape to (N, g, C/g, H, W), swap the group axes, Reshape back."""
        n, c, h, w = self.shapes[x]
        if groups < 1 or c % groups:
            raise KernelsError("channel shuffle: {} channels do not split into {} groups".format(c, groups))
        split = (n, groups, c // groups, h, w)
        y = self.op("Reshape", [x, self.constant("shape", np.array(split, np.int64))], split, prefix="shuffle_split")
        y = self.op("Transpose", [y], (n, c // groups, groups, h, w), prefix="shuffle_swap", perm=[0, 2, 1, 3, 4])
        return self.op("Reshape", [y, self.constant("shape", np.array((n, c, h, w), np.int64))], (n, c, h, w),
                       prefix="shuffle_merge")

    def squeeze_excite(self, x: str, ratio: float = 0.25, gate: str = "sigmoid") -> str:
        """SE: global pool → 1×1 conv + ReLU → 1×1 conv + gate (sigmoid or hsigmoid) → scale the input."""
        c = self.channels(x)
        s = self.global_pool(x, "avg")
        s = self.conv(s, max(1, int(round(c * ratio))), kernel=1, bn=False, act="relu")
        s = self.conv(s, c, kernel=1, bn=False, act=gate)
        return self.multiply(x, s, prefix="se_scale")

    def multiply(self, x: str, factor: str, prefix: str = "mul") -> str:
        """x times a factor of x's shape or one that broadcasts to it (one value per channel: SE's scale)."""
        shape, other = self.shapes[x], self.shapes[factor]
        if len(other) > len(shape) or any(o not in (1, s) for o, s in zip(other[::-1], shape[::-1])):
            raise KernelsError("cannot multiply shape {} by {}".format(shape, other))
        return self.op("Mul", [x, factor], shape, prefix=prefix)


def _check_conv(cin: int, cout: int, kernel: int, stride: int, groups: int) -> None:
    if min(cin, cout, kernel, stride, groups) < 1:
        raise KernelsError("conv needs positive channels, kernel, stride and groups")
    if cin % groups or cout % groups:
        raise KernelsError("conv groups {} must divide cin {} and cout {}".format(groups, cin, cout))
