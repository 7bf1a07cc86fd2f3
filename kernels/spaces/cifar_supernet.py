"""The research seed's CIFAR-10 supernet: a ResNet-style CNN (stem, 3 stages × 3 residual blocks, GAP, FC) and the
subnets random pruning cuts from it.

Choices (spec `{"stages": [{"width": r, "blocks": [block, ...]}, ...]}`):
- `width` per stage: output channels of every block in the stage kept at ratio r of the base width. One ratio per
  stage because the residual adds tie the stage's blocks together; the stem belongs to stage 1's residual stream.
- per block `{"keep": true, "op": "conv3"|"conv5"|"sep3"|"sep5", "mid": r, "skip": bool}`: the block's op (plain
  k×k convs or depthwise-separable ones), the ratio kept of its inner conv's channels, and whether the residual skip
  exists. `{"keep": false}` removes a whole block; the first block of a stage (it changes resolution and width)
  cannot be removed.
Reference: the unpruned supernet (every block kept, conv3, mid 1.0, skip on, width 1.0).
"""

from typing import Any, Dict, List

import numpy as np
import onnx

from kernels.analysis import analyze, model_flops, model_params
from kernels.builder import GraphBuilder
from kernels.errors import SpaceError
from kernels.spaces import register_space
from kernels.spaces.base import Space, SubnetSpec, stratified_sample

STAGES = ((24, 3, 1), (48, 3, 2), (96, 3, 2))  # (base width, blocks, stride of the first block)
RATIOS = (0.25, 0.5, 0.75, 1.0)
OPS = ("conv3", "conv5", "sep3", "sep5")
NUM_CLASSES = 10
POOL_FACTOR = 4  # sample() draws this many random candidates per requested subnet, then stratifies by FLOPs
FULL_BLOCK = {"keep": True, "op": "conv3", "mid": 1.0, "skip": True}


def _width(base: int, ratio: float) -> int:
    return max(1, int(round(base * ratio)))


def _block(b: GraphBuilder, x: str, block: Dict[str, Any], base: int, cout: int, stride: int) -> str:
    kernel = 5 if block["op"].endswith("5") else 3
    mid = _width(base, block["mid"])
    if block["op"].startswith("sep"):
        y = b.conv(b.dwconv(x, kernel, stride), mid, kernel=1)
        y = b.conv(b.dwconv(y, kernel), cout, kernel=1, act="none")
    else:
        y = b.conv(b.conv(x, mid, kernel, stride), cout, kernel, act="none")
    if block["skip"]:
        same = stride == 1 and b.channels(x) == cout
        y = b.add(y, x if same else b.conv(x, cout, kernel=1, stride=stride, act="none"))
    return b.act(y, "relu")


def _check_block(block: Any, first: bool, where: str) -> None:
    if not isinstance(block, dict):
        raise SpaceError("{}: a block is a JSON object".format(where))
    if block == {"keep": False}:
        if first:
            raise SpaceError("{}: the first block of a stage cannot be removed".format(where))
        return
    if set(block) != set(FULL_BLOCK) or block["keep"] is not True:
        raise SpaceError("{}: a block is {{'keep': false}} or has exactly keep, op, mid, skip".format(where))
    if block["op"] not in OPS or block["mid"] not in RATIOS or not isinstance(block["skip"], bool):
        raise SpaceError("{}: op must be one of {}, mid one of {}, skip a boolean".format(where, OPS, RATIOS))


def _random_choices(rng: "np.random.RandomState") -> Dict[str, Any]:
    """Each choice departs from the supernet with probability p, p itself random: candidates of every size."""
    p = rng.uniform(0.0, 1.0)
    stages = []
    for _, blocks, _ in STAGES:
        width = float(rng.choice(RATIOS)) if rng.uniform() < p else 1.0
        chosen = []
        for index in range(blocks):
            if index and rng.uniform() < p / 2:
                chosen.append({"keep": False})
                continue
            chosen.append({"keep": True,
                           "op": str(rng.choice(OPS)) if rng.uniform() < p else "conv3",
                           "mid": float(rng.choice(RATIOS)) if rng.uniform() < p else 1.0,
                           "skip": bool(rng.uniform() >= p / 2)})
        stages.append({"width": width, "blocks": chosen})
    return {"stages": stages}


@register_space
class CifarSupernetSpace(Space):
    name = "cifar-supernet"
    version = 1
    input_shape = (1, 3, 32, 32)
    description = "ResNet-style CIFAR-10 supernet (3 stages x 3 residual blocks); random pruning of blocks, " \
                  "channels, ops and skips"
    reference_description = "the unpruned supernet"

    def reference_spec(self) -> SubnetSpec:
        stages = [{"width": 1.0, "blocks": [dict(FULL_BLOCK) for _ in range(blocks)]} for _, blocks, _ in STAGES]
        return SubnetSpec(self.name, self.version, {"stages": stages})

    def num_choices(self) -> int:
        per_block = len(OPS) * len(RATIOS) * 2
        total = 1
        for _, blocks, _ in STAGES:
            total *= len(RATIOS) * per_block * (per_block + 1) ** (blocks - 1)
        return total

    def validate(self, spec: SubnetSpec) -> None:
        stages = spec.choices.get("stages")
        if set(spec.choices) != {"stages"} or not isinstance(stages, list) or len(stages) != len(STAGES):
            raise SpaceError("cifar-supernet choices must be {{'stages': [{} stage objects]}}".format(len(STAGES)))
        for s, (stage, (_, blocks, _)) in enumerate(zip(stages, STAGES)):
            if not isinstance(stage, dict) or set(stage) != {"width", "blocks"} or stage["width"] not in RATIOS:
                raise SpaceError("stage {}: needs 'width' in {} and 'blocks'".format(s + 1, RATIOS))
            if not isinstance(stage["blocks"], list) or len(stage["blocks"]) != blocks:
                raise SpaceError("stage {}: needs a list of {} blocks".format(s + 1, blocks))
            for k, block in enumerate(stage["blocks"]):
                _check_block(block, k == 0, "stage {} block {}".format(s + 1, k + 1))

    def build(self, spec: SubnetSpec, seed: int = 0, fold_bn: bool = True) -> onnx.ModelProto:
        self._check_spec(spec)
        b = GraphBuilder(self.input_shape, seed=seed, fold_bn=fold_bn, name="cifar_supernet_" + spec.id)
        stages = spec.choices["stages"]
        x = b.conv(b.input, _width(STAGES[0][0], stages[0]["width"]), kernel=3)
        for stage, (base, _, stride) in zip(stages, STAGES):
            cout = _width(base, stage["width"])
            for k, block in enumerate(stage["blocks"]):
                if block["keep"]:
                    x = _block(b, x, block, base, cout, stride if k == 0 else 1)
        return b.build([b.fc(b.global_pool(x), NUM_CLASSES)])

    def sample(self, n: int, seed: int) -> List[SubnetSpec]:
        """n distinct subnets spread evenly over the FLOPs range of a random candidate pool, in random order."""
        return stratified_sample(self, n, seed, _random_choices, lambda spec: np.log(model_flops(self.build(spec))),
                                 POOL_FACTOR)


def layer_table() -> str:
    """Markdown table of the reference supernet's layers (for the README)."""
    space = CifarSupernetSpace()
    model = space.build(space.reference_spec())
    rows = ["| layer | op | output (C×H×W) | choices |", "| --- | --- | --- | --- |",
            "| stem | conv 3×3 + BN + ReLU | {}×32×32 | width (tied to stage 1) |".format(STAGES[0][0])]
    size = 32
    for s, (base, blocks, stride) in enumerate(STAGES, start=1):
        size //= stride
        for k in range(blocks):
            skip = "1×1 conv projection" if k == 0 and (stride != 1 or s > 1) else "identity"
            removable = "" if k == 0 else ", remove"
            rows.append("| stage {} block {} | conv 3×3 (+BN, ReLU) → conv 3×3 (+BN), {} skip, add, ReLU | "
                        "{}×{}×{} | op (conv3/conv5/sep3/sep5), mid channels, skip{} |".format(
                            s, k + 1, skip, base, size, size, removable))
    rows.append("| head | global average pool → FC | {} | — |".format(NUM_CLASSES))
    infos = analyze(model)
    rows.append("")
    rows.append("Reference: {:.1f} MFLOPs (multiply-add = 2), {:,} parameters, {} ONNX nodes; "
                "channel ratios {}.".format(
        sum(i.flops for i in infos) / 1e6, model_params(model), len(infos), ", ".join(str(r) for r in RATIOS)))
    return "\n".join(rows)
