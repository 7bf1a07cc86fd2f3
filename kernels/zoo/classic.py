"""ResNets, VGG, a DenseNet-121-like net and RegNetX: the plain-conv families (He 2016, Simonyan 2015, Huang 2017,
Radosavovic 2020)."""

from kernels.builder import GraphBuilder


def _stem(b: GraphBuilder, width: int = 64) -> str:
    return b.pool(b.conv(b.input, width, kernel=7, stride=2), "max", kernel=3, stride=2, pad=1)


def _basic(b: GraphBuilder, x: str, cout: int, stride: int) -> str:
    y = b.conv(b.conv(x, cout, stride=stride), cout, act="none")
    short = x if stride == 1 and b.channels(x) == cout else b.conv(x, cout, kernel=1, stride=stride, act="none")
    return b.add(y, short, act="relu")


def _bottleneck(b: GraphBuilder, x: str, width: int, stride: int, groups: int = 1, expand: int = 4) -> str:
    y = b.conv(x, width, kernel=1)
    y = b.conv(y, width, stride=stride, groups=groups)
    y = b.conv(y, width * expand, kernel=1, act="none")
    cout = width * expand
    short = x if stride == 1 and b.channels(x) == cout else b.conv(x, cout, kernel=1, stride=stride, act="none")
    return b.add(y, short, act="relu")


def _resnet(depths, block):
    def build(b: GraphBuilder) -> str:
        x = _stem(b)
        for stage, (depth, width) in enumerate(zip(depths, (64, 128, 256, 512))):
            for i in range(depth):
                x = block(b, x, width, 2 if i == 0 and stage else 1)
        return x
    return build


def _vgg(plan):
    def build(b: GraphBuilder) -> str:
        x = b.input
        for item in plan:
            x = b.pool(x, "max") if item == "M" else b.conv(x, item, bn=False)
        return x
    return build


def densenet_like(b: GraphBuilder) -> str:
    """DenseNet-121's block layout (6, 12, 24, 16), growth 32, halved in depth to keep it small."""
    x = _stem(b)
    for index, depth in enumerate((3, 6, 12, 8)):
        for _ in range(depth):
            y = b.conv(b.conv(x, 128, kernel=1), 32)
            x = b.concat([x, y])
        if index < 3:
            x = b.pool(b.conv(x, b.channels(x) // 2, kernel=1), "avg")
    return x


def _regnetx(depths, widths, group_width):
    def build(b: GraphBuilder) -> str:
        x = b.conv(b.input, 32, stride=2)
        for depth, width in zip(depths, widths):
            for i in range(depth):
                x = _bottleneck(b, x, width, 2 if i == 0 else 1, groups=width // group_width, expand=1)
        return x
    return build


def resnext50(b: GraphBuilder) -> str:
    """ResNeXt-50 32x4d: bottlenecks of width 128-1024 in 32 groups, 2x expansion."""
    x = _stem(b)
    for stage, (depth, width) in enumerate(zip((3, 4, 6, 3), (128, 256, 512, 1024))):
        for i in range(depth):
            x = _bottleneck(b, x, width, 2 if i == 0 and stage else 1, groups=32, expand=2)
    return x


BUILDERS = {
    "resnet18": _resnet((2, 2, 2, 2), _basic),
    "resnet34": _resnet((3, 4, 6, 3), _basic),
    "resnet50": _resnet((3, 4, 6, 3), _bottleneck),
    "vgg11": _vgg((64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")),
    "vgg16": _vgg((64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")),
    "vgg13": _vgg((64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")),
    "densenet_like": densenet_like,
    "resnext50": resnext50,
    "regnetx_200mf": _regnetx((1, 1, 4, 7), (24, 56, 152, 368), 8),
    "regnetx_400mf": _regnetx((1, 2, 7, 12), (32, 64, 160, 384), 16),
}
