"""SubnetSpec (a subnet as a small JSON document with a stable id) and the Space interface every space implements."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx

from kernels.errors import SpaceError


def canonical_json(obj: Any) -> str:
    """Key-sorted, whitespace-free, ASCII JSON: the same bytes for the same spec on every machine."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class SubnetSpec:
    space: str
    space_version: int
    choices: Dict[str, Any]

    @property
    def id(self) -> str:
        """First 16 hex chars of the sha256 of the spec's canonical JSON."""
        return hashlib.sha256(canonical_json(self.to_dict()).encode("ascii")).hexdigest()[:16]

    def to_dict(self) -> Dict[str, Any]:
        return {"space": self.space, "space_version": self.space_version,
                "choices": json.loads(canonical_json(self.choices))}

    def __hash__(self) -> int:
        return hash(self.id)


class Space:
    """A family of networks. Subclasses set the class attributes and implement the methods below."""

    name = ""
    version = 0
    older_versions: Tuple[int, ...] = ()  # whose specs build() still builds as they were (sample() draws `version`)
    input_shape = (1, 3, 32, 32)
    description = ""
    reference_description = ""

    def reference_spec(self) -> SubnetSpec:
        raise NotImplementedError

    def sample(self, n: int, seed: int) -> List[SubnetSpec]:
        """n distinct specs, never the reference, deterministic for a seed."""
        raise NotImplementedError

    def build(self, spec: SubnetSpec, seed: int = 0, fold_bn: bool = True) -> onnx.ModelProto:
        raise NotImplementedError

    def num_choices(self) -> int:
        """How many distinct subnets the space holds."""
        raise NotImplementedError

    def spec_from_dict(self, d: Dict[str, Any]) -> SubnetSpec:
        """Validate a spec document (as written by SubnetSpec.to_dict) for this space."""
        if not isinstance(d, dict) or not isinstance(d.get("choices"), dict):
            raise SpaceError("a subnet spec is a JSON object with 'space', 'space_version' and 'choices'")
        if d.get("space") != self.name:
            raise SpaceError("spec is for space {!r}, not {!r}".format(d.get("space"), self.name))
        if d.get("space_version") not in self._versions():
            raise SpaceError("spec is for {} version {!r}; this agent builds versions {}".format(
                self.name, d.get("space_version"), ", ".join(map(str, self._versions()))))
        spec = SubnetSpec(self.name, d["space_version"], json.loads(canonical_json(d["choices"])))
        self.validate(spec)
        return spec

    def validate(self, spec: SubnetSpec) -> None:
        """Raise SpaceError if the spec's choices are not a network of this space."""
        raise NotImplementedError

    def _versions(self) -> Tuple[int, ...]:
        return (self.version,) + tuple(self.older_versions)

    def _check_spec(self, spec: SubnetSpec) -> None:
        if spec.space != self.name or spec.space_version not in self._versions():
            raise SpaceError("spec {} is for {} v{}, not {} v{}".format(
                spec.id, spec.space, spec.space_version, self.name, self.version))
        self.validate(spec)


def stratified_by_value(values: Sequence[float], n: int, rng: "np.random.RandomState") -> List[int]:
    """Indices of n items whose values spread evenly over [min, max]: the item nearest each of n evenly spaced
    targets, each item used once; returned in random order so no consumer sees them sorted by size."""
    order = np.argsort(values, kind="stable")
    sorted_values = np.asarray(values, dtype=np.float64)[order]
    low, high = sorted_values[0], sorted_values[-1]
    targets = low + (np.arange(n) + 0.5) / n * (high - low)
    free = list(range(len(order)))
    picked = []
    for target in targets:
        pos = int(np.searchsorted(sorted_values[free], target))
        candidates = [p for p in (pos - 1, pos) if 0 <= p < len(free)]
        best = min(candidates, key=lambda p: abs(sorted_values[free[p]] - target))
        picked.append(int(order[free.pop(best)]))
    rng.shuffle(picked)
    return picked


def stratified_sample(space: Space, n: int, seed: int, draw: Callable[["np.random.RandomState"], Dict[str, Any]],
                      value: Callable[[SubnetSpec], Optional[float]], pool_factor: int) -> List[SubnetSpec]:
    """n distinct specs of the space, never its reference, spread evenly over `value` across a pool of pool_factor * n
    random candidates (`draw(rng)` gives a candidate's choices; a `value` of None leaves the candidate out), in
    random order; deterministic for a seed."""
    if n < 0:
        raise SpaceError("cannot sample a negative number of subnets")
    rng = np.random.RandomState(seed)
    seen = {space.reference_spec().id}
    pool: List[SubnetSpec] = []
    values: List[float] = []
    for _ in range(1000 * max(n, 1)):
        if len(pool) >= pool_factor * n:
            break
        spec = SubnetSpec(space.name, space.version, draw(rng))
        found = value(spec) if spec.id not in seen else None
        if found is not None:
            seen.add(spec.id)
            pool.append(spec)
            values.append(found)
    return [pool[k] for k in stratified_by_value(values, n, rng)] if n else []
