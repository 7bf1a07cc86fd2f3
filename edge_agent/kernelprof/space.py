"""Kernel config spaces: what each profiled kernel type's config ranges over, drawn uniformly, from the prior
(prior.json: where real models put their layers), or near a given config (adaptive sampling).

A config is a kernels.single config; a spec {"kernel_type", "config"} names a kernel and hashes to its item id.
"""

import functools
import hashlib
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

KERNEL_TYPES = ("conv", "group_conv", "dwconv", "fc", "maxpool", "avgpool", "global_avgpool", "add", "mul", "concat",
                "act")
CONV_TYPES = ("conv", "group_conv", "dwconv")
ACTS = ("none", "relu", "relu6", "hswish")
STANDALONE_ACTS = ("relu", "relu6", "hswish", "sigmoid", "hsigmoid")
MIN_CH, MAX_CH = 8, 1024
VECTOR_STEP = 8  # channel counts are drawn as multiples of this, the common vector width, unless drawn off it
MAX_FLOPS = 1.2e9  # larger kernels take seconds each on a Pi and real edge models rarely have them
REFERENCE_SPEC = {"kernel_type": "conv", "config": {"hw": 28, "cin": 64, "cout": 64, "kernel": 3, "stride": 1,
                                                      "act": "relu"}}
OVERHEAD_SPEC = {"kernel_type": "act", "config": {"hw": 1, "cin": 1, "act": "relu"}}


def spec(kernel_type: str, config: Dict[str, object]) -> Dict[str, object]:
    return {"kernel_type": kernel_type, "config": dict(config)}


def spec_id(kernel_spec: Dict[str, object]) -> str:
    text = json.dumps(kernel_spec, sort_keys=True, separators=(",", ":"))
    return "k-" + hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def load_prior() -> dict:
    with open(os.path.join(os.path.dirname(__file__), "prior.json"), "r", encoding="utf-8") as handle:
        return json.load(handle)


def _round_ch(value: float, step: int = VECTOR_STEP) -> int:
    return int(min(MAX_CH, max(MIN_CH, step * round(value / step))))


def _channel_step(rng: np.random.RandomState, prior: dict) -> int:
    """What the drawn kernel's channel counts are rounded to: the vector width, or (prior's off_vector share) less,
    where runtimes' vectorized kernels can fall to a slow path that no kernel on the vector width shows."""
    off_vector = prior["off_vector"]
    return int(off_vector["step"]) if rng.random_sample() < off_vector["share"] else VECTOR_STEP


def _choice(rng: np.random.RandomState, weights: Dict[str, float]):
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=np.float64)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def _geometry(kernel_type: str, rng, hw: int, cin: int, cout: int, prior: dict) -> Dict[str, object]:
    stride = 2 if rng.random_sample() < prior["stride2_share"] and hw >= 4 else 1
    if kernel_type in CONV_TYPES:
        kernel = int(_choice(rng, prior["kernel_sizes"][kernel_type]))
        config = {"hw": hw, "cin": cin, "kernel": kernel, "stride": stride, "act": _choice(rng, prior["activations"])}
        if kernel_type == "dwconv":
            return config
        config["cout"] = cout
        grouped = prior["grouped_conv"]
        if kernel_type == "group_conv" or (kernel > 1 and rng.random_sample() < grouped["share"]):
            config = _grouped(config, int(_choice(rng, grouped["group_width"])))
        return config
    if kernel_type in ("maxpool", "avgpool"):
        kernel = int(_choice(rng, prior["kernel_sizes"][kernel_type]))
        return {"hw": hw, "cin": cin, "kernel": kernel, "stride": 2, "pad": kernel // 2 if kernel % 2 else 0}
    if kernel_type == "fc":
        return {"cin": cin, "cout": cout, "act": "relu" if rng.random_sample() < 0.3 else "none"}
    if kernel_type == "add":
        return {"hw": hw, "cin": cin, "act": "relu" if rng.random_sample() < 0.5 else "none"}
    if kernel_type == "concat":
        return {"hw": hw, "cin": cin, "cin2": cout}
    if kernel_type == "act":
        return {"hw": hw, "cin": cin, "act": STANDALONE_ACTS[rng.randint(len(STANDALONE_ACTS))]}
    return {"hw": hw, "cin": cin}


def sample_prior(kernel_type: str, rng: np.random.RandomState) -> Dict[str, object]:
    prior = load_prior()
    stage = prior["stages"][rng.randint(len(prior["stages"]))]
    scaled = prior["hw_scaled"][str(stage["hw"])]
    hw = stage["hw"] if rng.random_sample() < 0.4 else int(scaled[rng.randint(len(scaled))])
    widths = stage["channels"]
    step = _channel_step(rng, prior)
    cin = _round_ch(widths[rng.randint(len(widths))] * rng.uniform(0.75, 1.25), step)
    cout = _round_ch(widths[rng.randint(len(widths))] * rng.uniform(0.75, 1.25), step)
    return _geometry(kernel_type, rng, hw, cin, cout, prior)


def sample_uniform(kernel_type: str, rng: np.random.RandomState) -> Dict[str, object]:
    hw = int(rng.choice([2, 4, 7, 8, 14, 16, 28, 32, 56, 64, 112]))
    prior = load_prior()
    step = _channel_step(rng, prior)
    cin, cout = (_round_ch(np.exp(rng.uniform(np.log(MIN_CH), np.log(MAX_CH))), step) for _ in range(2))
    return _geometry(kernel_type, rng, hw, cin, cout, prior)


def _grouped(config: Dict[str, object], group_width: int) -> Dict[str, object]:
    """The conv as a grouped one of this many channels per group, in and out: RegNet and ResNeXt keep the width
    through their grouped 3x3 convs. A cout drawn apart from cin gave groups of 1-30 output channels, configs no
    real network has, which misled the regressor on real grouped convs."""
    groups = max(2, int(round(float(config["cin"]) / group_width)))
    return dict(config, cin=groups * group_width, cout=groups * group_width, groups=groups)


def sample_near(config: Dict[str, object], rng: np.random.RandomState) -> Dict[str, object]:
    """nn-Meter's neighbourhood: channels scaled by [0.5, 1.2), everything else kept (a grouped conv keeps its
    group width, and channels off the vector width stay off it: that is where the error was found)."""
    near = dict(config)
    for key in ("cin", "cout", "cin2"):
        if key in near:
            step = VECTOR_STEP if int(near[key]) % VECTOR_STEP == 0 else int(load_prior()["off_vector"]["step"])
            near[key] = _round_ch(float(near[key]) * rng.uniform(0.5, 1.2), step)
    if int(config.get("groups", 1)) > 1:
        near = _grouped(near, int(config["cin"]) // int(config["groups"]))
    return near


def cost(kernel_type: str, config: Dict[str, object]) -> Tuple[float, float]:
    """(FLOPs, bytes moved) from the config alone, without building the model (kernels.analysis conventions)."""
    if kernel_type == "fc":
        cin, cout = float(config["cin"]), float(config["cout"])
        return 2 * cin * cout, 4 * (cin + cout + cin * cout)
    hw, cin = float(config["hw"]), float(config["cin"])
    stride, kernel = float(config.get("stride", 1)), float(config.get("kernel", 1))
    out_hw = max(1.0, np.ceil(hw / stride))
    if kernel_type in CONV_TYPES:
        cout = float(config.get("cout", cin))
        per_out = kernel * kernel * (1.0 if kernel_type == "dwconv" else cin / float(config.get("groups", 1)))
        params = cout * per_out
        return 2 * cout * out_hw ** 2 * per_out, 4 * (cin * hw ** 2 + cout * out_hw ** 2 + params)
    if kernel_type in ("maxpool", "avgpool"):
        return cin * out_hw ** 2 * kernel ** 2, 4 * (cin * hw ** 2 + cin * out_hw ** 2)
    if kernel_type == "mul" and config.get("operand", "channel") == "channel":
        return cin * hw ** 2, 4 * (2 * hw ** 2 + 1) * cin
    extra = float(config.get("cin2", 0))
    return cin * hw ** 2, 4 * (2 * cin + extra) * hw ** 2


def acceptable(kernel_type: str, config: Dict[str, object]) -> bool:
    if kernel_type in CONV_TYPES + ("maxpool", "avgpool") and config["hw"] < config.get("kernel", 1):
        return False
    return cost(kernel_type, config)[0] <= MAX_FLOPS


def draw(kernel_type: str, n: int, rng: np.random.RandomState, sampler, seen: Optional[set] = None,
         base: Optional[Sequence[Dict[str, object]]] = None) -> List[Dict[str, object]]:
    """n distinct acceptable configs from `sampler(kernel_type, rng)` (or `sampler(config, rng)` over `base`)."""
    seen = set() if seen is None else seen
    out: List[Dict[str, object]] = []
    for attempt in range(50 * max(n, 1)):
        if len(out) >= n:
            break
        config = sampler(base[attempt % len(base)], rng) if base else sampler(kernel_type, rng)
        key = json.dumps(config, sort_keys=True)
        if key not in seen and acceptable(kernel_type, config):
            seen.add(key)
            out.append(config)
    return out
