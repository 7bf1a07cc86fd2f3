"""calib-cnn: random generic CNNs whose weights span 0.2-120 MB, for calibrating a kernel LUT to whole models.

Standalone kernels run with their weights hot in cache; inside a large model the weights stream from DRAM. Fitting
that term needs whole-model measurements across weight sizes from networks no benchmark model was drawn from.

Network: input 1x3xRxR; stem conv 3x3 stride 2; 3-5 stages, each halving the map in its first block; global average
pool; FC. Spec: `{"resolution": R, "stem": C, "act": A, "classes": K, "stages": [stage, ...]}` with R in 96/128/160/224,
C a multiple of 8 in [16, 64], A relu/relu6/hswish, K 100/1000, and each stage
`{"block": B, "width": W, "depth": D, ...}`: W output channels (a multiple of 8, at most 2048), D blocks (1-4), B one of
- `plain`: conv 3x3;
- `basic`: conv 3x3 -> conv 3x3, add (ResNet basic block);
- `bottleneck`: 1x1 to W/4 -> 3x3 -> 1x1 to W, add;
- `inverted`: 1x1 expand to Cin x `expand` (3|6) -> depthwise `kernel` (3|5) -> squeeze-excite if `se` -> 1x1 to W,
  add when shapes match (MobileNetV2/V3 block);
- `grouped`: 1x1 -> grouped 3x3 of `group_width` (4|8|16|32|64, dividing W) channels per group -> 1x1, add
  (ResNeXt 32x4d's first stage has 4, RegNetX 8-56);
- `dense`: a transition (1x1 to W - 3 D `growth` channels, 2x2 average pool) then 3 D layers, each 1x1 to 4 `growth`
  -> 3x3 to `growth` (16|32), concatenated to its input (DenseNet); W must leave 8 channels to the transition.
A residual block that changes shape takes a 1x1 stride-2 projection shortcut. Half the sampled networks keep one block
type through every stage, as the families they stand in for do (a network of grouped stages only is a RegNetX, whose
share of time in grouped convs a mix never reaches); the other half draw each stage's type. A spec is refused beyond
3 GFLOPs (convolutions and FC, multiply-add = 2) or 120 MB of fp32 weights, so one inference stays near 100 ms on a
laptop core.
"""

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import onnx

from kernels.builder import GraphBuilder
from kernels.errors import SpaceError
from kernels.spaces import register_space
from kernels.spaces.base import Space, SubnetSpec, stratified_sample

RESOLUTIONS = (96, 128, 160, 224)
ACTS = ("relu", "relu6", "hswish")
CLASSES = (100, 1000)
EXTRAS = {"plain": {}, "basic": {}, "bottleneck": {},
          "inverted": {"expand": (3, 6), "kernel": (3, 5), "se": (False, True)},
          "grouped": {"group_width": (4, 8, 16, 32, 64)}, "dense": {"growth": (16, 32)}}
DENSE_LAYERS_PER_DEPTH = 3
MIN_TRANSITION_WIDTH = 8
FAMILY_SHARE = 0.5  # of sampled networks, one block type in every stage
BLOCKS = tuple(sorted(EXTRAS))
# version 1, whose specs still build as they did: no dense stages, no group width 4
EXTRAS_V1 = dict({k: v for k, v in EXTRAS.items() if k != "dense"}, grouped={"group_width": (8, 16, 32, 64)})
STEMS = tuple(range(16, 65, 8))
STAGE_COUNTS = (3, 4, 5)
DEPTHS = (1, 2, 3, 4)
MAX_WIDTH = 2048
GROWTH = (1.5, 2.5)  # random per-stage width factor of sampled specs
MAX_FLOPS = 3 * 10 ** 9
MAX_WEIGHT_BYTES = 120 * 10 ** 6
POOL_FACTOR = 8  # sample() draws this many valid candidates per requested model, then stratifies by weight bytes
REFERENCE = {"resolution": 160, "stem": 32, "act": "relu", "classes": 1000, "stages": [
    {"block": "inverted", "width": 48, "depth": 2, "expand": 6, "kernel": 3, "se": False},
    {"block": "basic", "width": 96, "depth": 2},
    {"block": "bottleneck", "width": 192, "depth": 2},
    {"block": "grouped", "width": 384, "depth": 2, "group_width": 32}]}


class _Counter(GraphBuilder):
    """Shapes, weights and conv/FC FLOPs of a network without drawing its weights: validate() and sample() size
    hundreds of candidates, some of 120 MB."""

    def __init__(self, input_shape: Tuple[int, ...]):
        super().__init__(input_shape, name="count")
        self.params = 0
        self.flops = 0

    def conv(self, x: str, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, bn: bool = True,
             act: str = "relu", pad: Any = None, bias: Any = None) -> str:
        n, cin, h, w = self.shapes[x]
        pad = kernel // 2
        out = (n, cout, (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1)
        weights = cout * (cin // groups) * kernel * kernel
        self.params += weights + cout  # every conv here has a bias (folded BN or its own)
        self.flops += (2 * weights + cout) * out[2] * out[3]
        return self.act(self.op("Conv", [x], out), act)

    def fc(self, x: str, cout: int, act: str = "none") -> str:
        cin = self.channels(x)
        self.params += cin * cout + cout
        self.flops += 2 * cin * cout + cout
        return self.op("Gemm", [x], (1, cout))

    def constant(self, prefix: str, array: "np.ndarray") -> str:
        self.params += int(array.size)
        return super().constant(prefix, array)


def _shortcut(b: GraphBuilder, x: str, y: str, stride: int) -> str:
    if b.shape(x) == b.shape(y):
        return x
    return b.conv(x, b.channels(y), kernel=1, stride=stride, act="none")


def _dense_layers(b: GraphBuilder, x: str, stage: Dict[str, Any], stride: int, act: str) -> str:
    growth = stage["growth"]
    if stride == 2:
        x = b.pool(b.conv(x, _transition_width(stage), 1, act=act), "avg", kernel=2, stride=2)
    for _ in range(DENSE_LAYERS_PER_DEPTH):
        x = b.concat([x, b.conv(b.conv(x, 4 * growth, 1, act=act), growth, 3, act=act)])
    return x


def _block(b: GraphBuilder, x: str, stage: Dict[str, Any], stride: int, act: str) -> str:
    kind, width = stage["block"], stage["width"]
    if kind == "dense":
        return _dense_layers(b, x, stage, stride, act)
    if kind == "plain":
        return b.conv(x, width, 3, stride, act=act)
    if kind == "inverted":
        y = b.dwconv(b.conv(x, b.channels(x) * stage["expand"], 1, act=act), stage["kernel"], stride, act=act)
        if stage["se"]:
            y = b.squeeze_excite(y, gate="hsigmoid" if act == "hswish" else "sigmoid")
        y = b.conv(y, width, 1, act="none")
        return b.add(y, x) if b.shape(x) == b.shape(y) else y
    if kind == "basic":
        y = b.conv(b.conv(x, width, 3, stride, act=act), width, 3, act="none")
    elif kind == "bottleneck":
        mid = max(8, width // 4)
        y = b.conv(b.conv(b.conv(x, mid, 1, act=act), mid, 3, stride, act=act), width, 1, act="none")
    else:
        groups = width // stage["group_width"]
        y = b.conv(b.conv(b.conv(x, width, 1, act=act), width, 3, stride, groups, act=act), width, 1, act="none")
    return b.add(y, _shortcut(b, x, y, stride), act=act)


def _network(b: GraphBuilder, choices: Dict[str, Any]) -> str:
    x = b.conv(b.input, choices["stem"], 3, 2, act=choices["act"])
    for stage in choices["stages"]:
        for k in range(stage["depth"]):
            x = _block(b, x, stage, 2 if k == 0 else 1, choices["act"])
    return b.fc(b.global_pool(x), choices["classes"])


def _input_shape(choices: Dict[str, Any]) -> Tuple[int, int, int, int]:
    return (1, 3, choices["resolution"], choices["resolution"])


def size_of(choices: Dict[str, Any]) -> Tuple[int, int]:
    """(fp32 weight bytes, conv + FC FLOPs) of valid choices, counted without building the model."""
    counter = _Counter(_input_shape(choices))
    _network(counter, choices)
    return 4 * counter.params, counter.flops


def _check_stage(stage: Any, where: str, version_extras: Dict[str, Dict[str, tuple]]) -> None:
    if not isinstance(stage, dict) or stage.get("block") not in version_extras:
        raise SpaceError("{}: a stage is an object whose 'block' is one of {}".format(
            where, ", ".join(sorted(version_extras))))
    extras = version_extras[stage["block"]]
    if set(stage) != {"block", "width", "depth"} | set(extras):
        raise SpaceError("{}: a {} stage has exactly block, width, depth{}".format(
            where, stage["block"], "".join(", " + k for k in sorted(extras))))
    width = stage["width"]
    depth = stage["depth"]
    if type(width) is not int or width % 8 or not 8 <= width <= MAX_WIDTH or type(depth) is not int or \
            depth not in DEPTHS:
        raise SpaceError("{}: width must be a multiple of 8 up to {}, depth one of {}".format(where, MAX_WIDTH, DEPTHS))
    for key, options in extras.items():
        if type(stage[key]) is not type(options[0]) or stage[key] not in options:
            raise SpaceError("{}: {} must be one of {}".format(where, key, options))
    if stage["block"] == "grouped" and width % stage["group_width"]:
        raise SpaceError("{}: group_width {} does not divide width {}".format(where, stage["group_width"], width))
    if stage["block"] == "dense" and _transition_width(stage) < MIN_TRANSITION_WIDTH:
        raise SpaceError("{}: a dense stage of depth {} and growth {} needs width >= {}".format(
            where, depth, stage["growth"], width - _transition_width(stage) + MIN_TRANSITION_WIDTH))


def _transition_width(stage: Dict[str, Any]) -> int:
    return stage["width"] - DENSE_LAYERS_PER_DEPTH * stage["depth"] * stage["growth"]


def _check_top(choices: Dict[str, Any]) -> None:
    if set(choices) != {"resolution", "stem", "act", "classes", "stages"}:
        raise SpaceError("calib-cnn choices have exactly resolution, stem, act, classes, stages")
    for key, options in (("resolution", RESOLUTIONS), ("stem", STEMS), ("act", ACTS), ("classes", CLASSES)):
        if choices[key] not in options or isinstance(choices[key], (bool, float)):
            raise SpaceError("calib-cnn {} must be one of {}".format(key, options))
    if not isinstance(choices["stages"], list) or len(choices["stages"]) not in STAGE_COUNTS:
        raise SpaceError("calib-cnn stages must be a list of {} to {} stages".format(
            STAGE_COUNTS[0], STAGE_COUNTS[-1]))


def _fits(stage: Dict[str, Any], key: str, option: Any) -> bool:
    if key == "group_width":
        return stage["width"] % option == 0
    if key == "growth":
        return _transition_width(dict(stage, growth=option)) >= MIN_TRANSITION_WIDTH
    return True


def _random_stage(rng: "np.random.RandomState", width: int, block: Optional[str]) -> Dict[str, Any]:
    """A stage of `block` (None: a random type); a dense stage too narrow for its depth gets the deepest that fits,
    and one too narrow for any becomes a plain stage."""
    block = block or str(rng.choice(BLOCKS))
    stage = {"block": block, "width": width, "depth": int(rng.choice(DEPTHS))}
    if block == "dense":
        narrowest = min(EXTRAS["dense"]["growth"])
        stage["depth"] = max([d for d in DEPTHS[:stage["depth"]] if _fits(dict(stage, depth=d), "growth", narrowest)],
                             default=0)
        if not stage["depth"]:
            return {"block": "plain", "width": width, "depth": int(rng.choice(DEPTHS))}
    for key, options in EXTRAS[block].items():
        fits = [o for o in options if _fits(stage, key, o)]
        stage[key] = fits[rng.randint(len(fits))]
    return stage


def _random_choices(rng: "np.random.RandomState") -> Dict[str, Any]:
    stem = int(rng.choice(STEMS))
    family = str(rng.choice(BLOCKS)) if rng.uniform() < FAMILY_SHARE else None
    width, stages = stem, []
    for _ in range(int(rng.choice(STAGE_COUNTS))):
        width = min(MAX_WIDTH, 8 * max(1, round(width * rng.uniform(*GROWTH) / 8)))
        stages.append(_random_stage(rng, width, family))
    return {"resolution": int(rng.choice(RESOLUTIONS)), "stem": stem, "act": str(rng.choice(ACTS)),
            "classes": int(rng.choice(CLASSES)), "stages": stages}


@register_space
class CalibCnnSpace(Space):
    name = "calib-cnn"
    version = 2  # 2: dense stages, group width 4, single-family networks
    older_versions = (1,)
    input_shape = (1, 3, 224, 224)  # the largest; each spec names its own resolution (96-224)
    description = "random generic CNNs (plain/basic/bottleneck/inverted/grouped/dense stages), " \
                  "0.2-120 MB of weights, for calibrating kernel LUTs to whole models"
    reference_description = "160x160, 4 stages: inverted 48, basic 96, bottleneck 192, grouped 384 (2 blocks each)"

    def reference_spec(self) -> SubnetSpec:
        return SubnetSpec(self.name, self.version, REFERENCE)

    def num_choices(self) -> int:
        """An upper bound: every stage of every width, before the growth rule and the size limits (rough)."""
        per_stage = len(range(8, MAX_WIDTH + 1, 8)) * len(DEPTHS) * sum(
            int(np.prod([len(o) for o in extras.values()])) for extras in EXTRAS.values())
        top = len(RESOLUTIONS) * len(STEMS) * len(ACTS) * len(CLASSES)
        return top * sum(per_stage ** count for count in STAGE_COUNTS)

    def validate(self, spec: SubnetSpec) -> None:
        _check_top(spec.choices)
        for s, stage in enumerate(spec.choices["stages"]):
            _check_stage(stage, "stage {}".format(s + 1), EXTRAS if spec.space_version == self.version else EXTRAS_V1)
        weight_bytes, flops = size_of(spec.choices)
        if weight_bytes > MAX_WEIGHT_BYTES or flops > MAX_FLOPS:
            raise SpaceError("calib-cnn spec {} is too large: {:.1f} MB of weights, {:.2f} GFLOPs (limits {} MB, "
                             "{} GFLOPs)".format(spec.id, weight_bytes / 1e6, flops / 1e9, MAX_WEIGHT_BYTES // 10 ** 6,
                                                 MAX_FLOPS // 10 ** 9))

    def build(self, spec: SubnetSpec, seed: int = 0, fold_bn: bool = True) -> onnx.ModelProto:
        self._check_spec(spec)
        b = GraphBuilder(_input_shape(spec.choices), seed=seed, fold_bn=fold_bn, name="calib_cnn_" + spec.id)
        return b.build([_network(b, spec.choices)])

    def sample(self, n: int, seed: int) -> List[SubnetSpec]:
        """n distinct networks within the size limits, spread evenly over the log weight bytes of a random candidate
        pool, in random order."""
        return stratified_sample(self, n, seed, _random_choices, _log_weight_bytes, POOL_FACTOR)


def _log_weight_bytes(spec: SubnetSpec) -> Optional[float]:
    """None for a network over the size limits."""
    weight_bytes, flops = size_of(spec.choices)
    return float(np.log(weight_bytes)) if weight_bytes <= MAX_WEIGHT_BYTES and flops <= MAX_FLOPS else None
