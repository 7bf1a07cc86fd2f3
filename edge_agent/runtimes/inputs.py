"""Deterministic model inputs: the same seed gives the same tensors on every machine."""

from typing import Dict, List

import numpy as np


def make_inputs(input_shapes: Dict[str, List[int]], seed: int) -> Dict[str, "np.ndarray"]:
    rng = np.random.RandomState(seed)  # RandomState: bit-stable across numpy versions, unlike default_rng's API
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in sorted(input_shapes.items())}
