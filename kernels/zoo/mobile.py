"""Mobile families: MobileNetV1/V2/V3, MnasNet, EfficientNet-B0, GhostNet, ShuffleNetV2, SqueezeNet (Howard 2017,
Sandler 2018, Howard 2019, Tan 2019, Tan and Le 2019, Han 2020, Ma 2018, Iandola 2016), at width 1.0."""

from kernels.builder import GraphBuilder


def mobilenet_v1(b: GraphBuilder) -> str:
    x = b.conv(b.input, 32, stride=2)
    for cout, stride in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + (
            (1024, 2), (1024, 1)):
        x = b.conv(b.dwconv(x, stride=stride), cout, kernel=1)
    return x


def _mbconv(b: GraphBuilder, x: str, cout: int, kernel: int, stride: int, expand: int, act: str = "relu6",
            se: bool = False) -> str:
    cin = b.channels(x)
    y = b.conv(x, cin * expand, kernel=1, act=act) if expand != 1 else x
    y = b.dwconv(y, kernel=kernel, stride=stride, act=act)
    if se:
        y = b.squeeze_excite(y, gate="hsigmoid" if act == "hswish" else "sigmoid")
    y = b.conv(y, cout, kernel=1, act="none")
    return b.add(y, x) if stride == 1 and cin == cout else y


def _inverted(stem: int, plan, last: int, act: str = "relu6"):
    """plan rows: (expand, cout, repeats, stride, kernel, se)."""
    def build(b: GraphBuilder) -> str:
        x = b.conv(b.input, stem, stride=2, act=act if act != "relu6" else "relu6")
        for expand, cout, repeats, stride, kernel, se in plan:
            for i in range(repeats):
                x = _mbconv(b, x, cout, kernel, stride if i == 0 else 1, expand, act, se)
        return b.conv(x, last, kernel=1, act=act)
    return build


def _v3(plan, last: int):
    """plan rows: (kernel, expanded, cout, se, act, stride), MobileNetV3 Table 1/2."""
    def build(b: GraphBuilder) -> str:
        x = b.conv(b.input, 16, stride=2, act="hswish")
        for kernel, expanded, cout, se, act, stride in plan:
            cin = b.channels(x)
            y = b.conv(x, expanded, kernel=1, act=act) if expanded != cin else x
            y = b.dwconv(y, kernel=kernel, stride=stride, act=act)
            if se:
                y = b.squeeze_excite(y, gate="hsigmoid")
            y = b.conv(y, cout, kernel=1, act="none")
            x = b.add(y, x) if stride == 1 and cin == cout else y
        return b.conv(x, last, kernel=1, act="hswish")
    return build


def _ghost(b: GraphBuilder, x: str, cout: int, act: str = "relu") -> str:
    primary = b.conv(x, cout // 2, kernel=1, act=act)
    return b.concat([primary, b.dwconv(primary, act=act)])


def ghostnet(b: GraphBuilder) -> str:
    x = b.conv(b.input, 16, stride=2)
    for kernel, expanded, cout, se, stride in ((3, 16, 16, 0, 1), (3, 48, 24, 0, 2), (3, 72, 24, 0, 1),
                                               (5, 72, 40, 1, 2), (5, 120, 40, 1, 1), (3, 240, 80, 0, 2),
                                               (3, 200, 80, 0, 1), (3, 480, 112, 1, 1), (5, 672, 160, 1, 2),
                                               (5, 960, 160, 1, 1)):
        cin = b.channels(x)
        y = _ghost(b, x, expanded)
        if stride == 2:
            y = b.dwconv(y, kernel=kernel, stride=2, act="none")
        if se:
            y = b.squeeze_excite(y, gate="hsigmoid")
        y = _ghost(b, y, cout, act="none")
        short = x if stride == 1 and cin == cout else b.conv(b.dwconv(x, kernel=kernel, stride=stride, act="none"),
                                                              cout, kernel=1, act="none")
        x = b.add(y, short)
    return b.conv(x, 960, kernel=1)


def shufflenet_v2(b: GraphBuilder) -> str:
    x = b.pool(b.conv(b.input, 24, stride=2), "max", kernel=3, stride=2, pad=1)
    for cout, repeats in ((116, 4), (232, 8), (464, 4)):
        left = b.conv(b.dwconv(x, stride=2, act="none"), cout // 2, kernel=1)
        right = b.conv(b.dwconv(b.conv(x, cout // 2, kernel=1), stride=2, act="none"), cout // 2, kernel=1)
        x = b.channel_shuffle(b.concat([left, right]), 2)
        for _ in range(repeats - 1):
            branch = b.conv(b.dwconv(b.conv(x, cout // 2, kernel=1), act="none"), cout // 2, kernel=1)
            # the split half is modelled as a 1x1 conv: ONNX Split/Slice is not in the builder
            x = b.channel_shuffle(b.concat([b.conv(x, cout // 2, kernel=1), branch]), 2)
    return b.conv(x, 1024, kernel=1)


def squeezenet(b: GraphBuilder) -> str:
    x = b.pool(b.conv(b.input, 64, stride=2, bn=False), "max", kernel=3, stride=2)
    for index, (squeeze, expand) in enumerate(((16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192),
                                               (64, 256), (64, 256))):
        s = b.conv(x, squeeze, kernel=1, bn=False)
        x = b.concat([b.conv(s, expand, kernel=1, bn=False), b.conv(s, expand, bn=False)])
        if index in (1, 3):
            x = b.pool(x, "max", kernel=3, stride=2)
    return b.conv(x, 1000, kernel=1, bn=False)


_V2 = ((1, 16, 1, 1, 3, 0), (6, 24, 2, 2, 3, 0), (6, 32, 3, 2, 3, 0), (6, 64, 4, 2, 3, 0), (6, 96, 3, 1, 3, 0),
       (6, 160, 3, 2, 3, 0), (6, 320, 1, 1, 3, 0))
_MNAS = ((1, 16, 1, 1, 3, 0), (6, 24, 2, 2, 3, 0), (3, 40, 3, 2, 5, 1), (6, 80, 4, 2, 3, 0), (6, 112, 2, 1, 3, 1),
         (6, 160, 3, 2, 5, 1), (6, 320, 1, 1, 3, 0))
_B0 = ((1, 16, 1, 1, 3, 1), (6, 24, 2, 2, 3, 1), (6, 40, 2, 2, 5, 1), (6, 80, 3, 2, 3, 1), (6, 112, 3, 1, 5, 1),
       (6, 192, 4, 2, 5, 1), (6, 320, 1, 1, 3, 1))
_V3S = ((3, 16, 16, 1, "relu", 2), (3, 72, 24, 0, "relu", 2), (3, 88, 24, 0, "relu", 1), (5, 96, 40, 1, "hswish", 2),
        (5, 240, 40, 1, "hswish", 1), (5, 240, 40, 1, "hswish", 1), (5, 120, 48, 1, "hswish", 1),
        (5, 144, 48, 1, "hswish", 1), (5, 288, 96, 1, "hswish", 2), (5, 576, 96, 1, "hswish", 1),
        (5, 576, 96, 1, "hswish", 1))
_V3L = ((3, 16, 16, 0, "relu", 1), (3, 64, 24, 0, "relu", 2), (3, 72, 24, 0, "relu", 1), (5, 72, 40, 1, "relu", 2),
        (5, 120, 40, 1, "relu", 1), (5, 120, 40, 1, "relu", 1), (3, 240, 80, 0, "hswish", 2),
        (3, 200, 80, 0, "hswish", 1), (3, 184, 80, 0, "hswish", 1), (3, 184, 80, 0, "hswish", 1),
        (3, 480, 112, 1, "hswish", 1), (3, 672, 112, 1, "hswish", 1), (5, 672, 160, 1, "hswish", 2),
        (5, 960, 160, 1, "hswish", 1), (5, 960, 160, 1, "hswish", 1))

BUILDERS = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": _inverted(32, _V2, 1280),
    "mobilenet_v3_small": _v3(_V3S, 576),
    "mobilenet_v3_large": _v3(_V3L, 960),
    "mnasnet_a1": _inverted(32, _MNAS, 1280, act="relu"),
    # EfficientNet's swish is built as hswish (the builder's activations); Lite0 is the SE-free, relu6 edge variant
    "efficientnet_b0": _inverted(32, _B0, 1280, act="hswish"),
    "efficientnet_lite0": _inverted(32, tuple(row[:5] + (0,) for row in _B0), 1280),
    "mnasnet_b1": _inverted(32, tuple(row[:4] + (5 if row[1] in (40, 160) else 3, 0) for row in _MNAS), 1280, "relu"),
    "ghostnet": ghostnet,
    "shufflenet_v2": shufflenet_v2,
    "squeezenet": squeezenet,
}
