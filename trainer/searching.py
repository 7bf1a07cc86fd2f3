"""Subnets of a space that meet a latency budget on one device (`trainer search`).

Candidates are sampled from the space, their latency predicted for the device, and of those under the budget the
ones with the most FLOPs are kept: capacity stands in for accuracy, which this toolkit does not predict. The result
is a list of specs that `edge-agent profile --specs` measures on the board, to check the predictions before training
any of them.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from edge_agent.errors import InputError
from trainer.encoding_cache import EncodingCache
from trainer.predicting import encode_space_sample, predict
from trainer.predictors.base import Predictor


@dataclass(frozen=True)
class Found:
    spec: Dict[str, Any]
    predicted_ms: float
    flops: float


@dataclass(frozen=True)
class SearchResult:
    found: List[Found]  # the most FLOPs first
    candidates: int
    under_budget: int


def search(predictor: Predictor, reference_ms: float, space_name: str, budget_ms: float, candidates: int,
           seed: int, top: int, progress: Optional[Callable[[], None]] = None) -> SearchResult:
    """The `top` candidates predicted within `budget_ms`, the most FLOPs first (ties: faster first)."""
    specs, encodings = encode_space_sample(EncodingCache(None, predictor.vocabulary), space_name, candidates, seed,
                                           progress)
    predicted = predict(predictor, encodings, reference_ms)
    under = [i for i, ms in enumerate(predicted) if ms <= budget_ms]
    if not under:
        raise InputError("no sampled subnet of {} is predicted within {:g} ms (the fastest of {}: {:.4g} ms); raise "
                         "--budget-ms or --candidates".format(space_name, budget_ms, len(specs), min(predicted)))
    under.sort(key=lambda i: (-encodings[i].total_flops, predicted[i]))
    found = [Found(specs[i], predicted[i], encodings[i].total_flops) for i in under[:top]]
    return SearchResult(found, len(specs), len(under))
