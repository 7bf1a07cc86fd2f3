"""A model space's own layers as kernel samples (`profile --kernels --kernel-space NAME`).

A NAS user predicts the subnets of one space, and in a space the same few layer shapes recur in every subnet: sampling
them directly (as ProxylessNAS and FBNet build their per-layer tables) puts measured points where the predictions
will be asked for. The layers are read off subnets drawn from the space, split into kernels the way a runtime with
the common activation fusions would run them, and turned into kernels.single configs, most frequent first.
"""

import collections
import json
from typing import Dict, List, Optional, Tuple

from edge_agent.fusion.ops import ACTIVATION_CLASSES, op_class
from edge_agent.kernelprof.space import ACTS, acceptable

# Another draw than `profile --space NAME --seed S` makes: the kernels come from other subnets than the ones a
# whole-model benchmark with the same seed scores.
SEED_OFFSET = 7919
_ABSORBING = ("conv", "dwconv", "fc", "add")


def _act_of(info, readers: Dict[str, int], consumer: Dict[str, object]) -> Tuple[str, Optional[str]]:
    """(the activation a runtime would fuse into this node, that activation node's name): the one reader of the
    node's output when it is an activation."""
    name = info.outputs[0]
    reader = consumer.get(name)
    if reader is None or readers.get(name) != 1:
        return "none", None
    cls = op_class(reader.op_type)
    return (cls, reader.name) if cls in ACTIVATION_CLASSES else ("none", None)


def single_config(cls: str, info, act: str) -> Optional[Tuple[str, Dict[str, object]]]:
    """The kernels.single (type, config) that runs this node (with `act` fused) alone, or None when none can."""
    if info.in_hw[0] != info.in_hw[1] and cls not in ("fc",):
        return None
    hw, kernel, stride = int(info.in_hw[0]), int(info.kernel_hw[0]), int(info.stride[0])
    if cls == "conv" and act in ACTS:
        config = {"hw": hw, "cin": info.cin, "cout": info.cout, "kernel": kernel, "stride": stride, "act": act}
        return "conv", dict(config, groups=info.groups) if info.groups > 1 else config
    if cls == "dwconv" and act in ACTS:
        return "dwconv", {"hw": hw, "cin": info.cin, "kernel": kernel, "stride": stride, "act": act}
    if cls == "fc":
        return "fc", {"cin": info.cin, "cout": info.cout, "act": "relu" if act == "relu" else "none"}
    if cls in ("maxpool", "avgpool"):
        return cls, {"hw": hw, "cin": info.cin, "kernel": kernel, "stride": stride,
                     "pad": kernel // 2 if kernel % 2 else 0}
    if cls == "add":
        return "add", {"hw": hw, "cin": info.cin, "act": "relu" if act == "relu" else "none"}
    if cls == "global_avgpool":
        return "global_avgpool", {"hw": hw, "cin": info.cin}
    if cls in ACTIVATION_CLASSES:
        return "act", {"hw": hw, "cin": info.cin, "act": cls}
    return None


def model_kernel_configs(model) -> List[Tuple[str, Dict[str, object]]]:
    """(kernel type, config) of every node of the model that kernels.single can build, activations fused into the
    conv, dwconv, fc or add before them."""
    from kernels.analysis import analyze

    infos = analyze(model)
    readers: Dict[str, int] = collections.Counter(name for info in infos for name in info.inputs)
    consumer = {name: info for info in infos for name in info.inputs}
    fused, found = set(), []
    for info in infos:
        if info.name in fused:
            continue
        cls = op_class(info.op_type, info.groups, info.cin, info.cout)
        act, act_node = _act_of(info, readers, consumer) if cls in _ABSORBING else ("none", None)
        fused.add(act_node)
        kernel = single_config(cls, info, act)
        if kernel is not None and acceptable(*kernel):
            found.append(kernel)
    return found


def space_kernel_configs(space_name: str, models: int, seed: int) -> Dict[str, List[Dict[str, object]]]:
    """Per kernel type (edge_agent.kernelprof.space.KERNEL_TYPES), the distinct configs found in `models` subnets of
    the space drawn with seed + SEED_OFFSET, the most frequent first (ties in order of appearance)."""
    from kernels.spaces import get_space

    space = get_space(space_name)
    counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for spec in space.sample(models, seed + SEED_OFFSET):
        for kernel_type, config in model_kernel_configs(space.build(spec)):
            counts[kernel_type][json.dumps(config, sort_keys=True)] += 1
    return {kernel_type: [json.loads(key) for key, _ in counter.most_common()]
            for kernel_type, counter in counts.items()}
