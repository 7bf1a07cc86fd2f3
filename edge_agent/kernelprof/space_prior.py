"""A model space's own layers as kernel samples (`profile --kernels --kernel-space NAME`), or a folder's models'
(`--kernel-models DIR`).

A NAS user predicts the subnets of one space, and in a space the same few layer shapes recur in every subnet: sampling
them directly (as ProxylessNAS and FBNet build their per-layer tables) puts measured points where the predictions
will be asked for. The layers are read off subnets drawn from the space, split into kernels the way a runtime with
the common activation fusions would run them, and turned into kernels.single configs, most frequent first.
"""

import collections
import json
from typing import Dict, Iterable, List, Optional, Tuple

from edge_agent.fusion.ops import ACTIVATION_CLASSES
from edge_agent.fusion.partition import Kernel, partition
from edge_agent.kernelprof.space import ACTS, acceptable

# Another draw than `profile --space NAME --seed S` makes: the kernels come from other subnets than the ones a
# whole-model benchmark with the same seed scores.
SEED_OFFSET = 7919
# The activation fusions every runtime we met performs; with them a space's conv, dwconv, fc and add layers become
# kernels that kernels.single can build alone.
_COMMON_FUSIONS = frozenset((head, act) for head in ("conv", "dwconv", "fc", "add") for act in ACTIVATION_CLASSES)


def single_config(kernel: Kernel) -> Optional[Tuple[str, Dict[str, object]]]:
    """The kernels.single (type, config) that runs this kernel alone, or None when none can."""
    config, kind = kernel.config, kernel.kind
    if "with" in config or isinstance(config.get("hw"), list):
        return None
    act = config.get("act", "none")
    if kind == "conv" and act in ACTS:
        single = {key: config[key] for key in ("hw", "cin", "cout", "kernel", "stride", "act")}
        return "conv", dict(single, groups=config["groups"]) if config["groups"] > 1 else single
    if kind == "dwconv" and act in ACTS:
        return "dwconv", {key: config[key] for key in ("hw", "cin", "kernel", "stride", "act")}
    if kind == "fc":
        return "fc", {"cin": config["cin"], "cout": config["cout"], "act": "relu" if act == "relu" else "none"}
    if kind in ("maxpool", "avgpool"):
        size = int(config["kernel"])
        return kind, {"hw": config["hw"], "cin": config["cin"], "kernel": size, "stride": config["stride"],
                      "pad": size // 2 if size % 2 else 0}
    if kind == "add":
        return "add", {"hw": config["hw"], "cin": config["cin"], "act": "relu" if act == "relu" else "none"}
    if kind == "global_avgpool":
        return "global_avgpool", {"hw": config["hw"], "cin": config["cin"]}
    if kind in ACTIVATION_CLASSES:
        return "act", {"hw": config["hw"], "cin": config["cin"], "act": kind}
    return None


def model_kernel_configs(model) -> List[Tuple[str, Dict[str, object]]]:
    """(kernel type, config) of every kernel of the model under the common activation fusions that kernels.single
    can build."""
    found = [single_config(kernel) for kernel in partition(model, _COMMON_FUSIONS)]
    return [k for k in found if k is not None and acceptable(*k)]


def space_kernel_configs(space_name: str, models: int, seed: int) -> Dict[str, List[Dict[str, object]]]:
    """Per kernel type (edge_agent.kernelprof.space.KERNEL_TYPES), the distinct configs found in `models` subnets of
    the space drawn with seed + SEED_OFFSET, the most frequent first (ties in order of appearance)."""
    from kernels.spaces import get_space

    space = get_space(space_name)
    return kernel_configs_by_type(space.build(spec) for spec in space.sample(models, seed + SEED_OFFSET))


def kernel_configs_by_type(models: Iterable) -> Dict[str, List[Dict[str, object]]]:
    """Per kernel type, the distinct configs of the models' kernels (model_kernel_configs), the most frequent first
    (ties in order of appearance)."""
    counts: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for model in models:
        for kernel_type, config in model_kernel_configs(model):
            counts[kernel_type][json.dumps(config, sort_keys=True)] += 1
    return {kernel_type: [json.loads(key) for key, _ in counter.most_common()]
            for kernel_type, counter in counts.items()}
