"""Subnets of a space that meet a latency budget on one device (`trainer search`).

Candidates are sampled from the space, their latency predicted for the device, and of those under the budget the
ones with the most FLOPs are kept: capacity stands in for accuracy, which this toolkit does not predict. "Under the
budget" is the central prediction, or with `confident` the upper end of the prediction's interval. The result is a
list of specs that `edge-agent profile --specs` measures on the board, to check the predictions before training any
of them.
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from edge_agent.errors import InputError
from trainer.encoding_cache import EncodingCache
from trainer.intervals import Interval
from trainer.predicting import encode_space_sample, predict
from trainer.predictors.base import Predictor


@dataclass(frozen=True)
class Found:
    spec: Dict[str, Any]
    predicted_ms: float
    flops: float
    low_ms: Optional[float] = None  # the prediction's interval (trainer.intervals); None: the predictor has none
    high_ms: Optional[float] = None


@dataclass(frozen=True)
class SearchResult:
    found: List[Found]  # the most FLOPs first
    candidates: int
    under_budget: int
    interval: Optional[Interval] = None


def search(predictor: Predictor, reference_ms: float, space_name: str, budget_ms: float, candidates: int,
           seed: int, top: int, progress: Optional[Callable[[], None]] = None, interval: Optional[Interval] = None,
           confident: bool = False) -> SearchResult:
    """The `top` candidates predicted within `budget_ms`, the most FLOPs first (ties: faster first). Each carries
    its `interval`; `confident` keeps only those whose interval's upper end is within the budget, so that each is
    within it with the interval's coverage, not only at its central prediction."""
    if confident:
        _check_confident(interval)
    specs, encodings = encode_space_sample(EncodingCache(None, predictor.vocabulary), space_name, candidates, seed,
                                           progress)
    predicted = predict(predictor, encodings, reference_ms)
    if interval is None:
        low = high = [None] * len(predicted)
    else:
        low, high = interval.bounds(np.asarray(predicted), interval.novel(encodings, predictor.vocabulary))
    bound = high if confident else predicted
    under = [i for i in range(len(specs)) if bound[i] <= budget_ms]
    if not under:
        what = "with its interval's upper end " if confident else ""
        raise InputError("no sampled subnet of {} is predicted {}within {:g} ms (the lowest of {}: {:.4g} ms); raise "
                         "--budget-ms or --candidates".format(space_name, what, budget_ms, len(specs), min(bound)))
    under.sort(key=lambda i: (-encodings[i].total_flops, predicted[i]))
    found = [Found(specs[i], predicted[i], encodings[i].total_flops, _number(low[i]), _number(high[i]))
             for i in under[:top]]
    return SearchResult(found, len(specs), len(under), interval)


def _check_confident(interval: Optional[Interval]) -> None:
    if interval is None:
        raise InputError("--confident needs the predictor's prediction interval, and it records none: refit it "
                         "(`trainer fit` records the held-out residuals intervals rest on)")
    if not interval.bounded:
        raise InputError("--confident needs a bounded interval: the predictor held out too few items for {:g} % "
                         "coverage; lower --coverage or refit on more items".format(100 * interval.coverage))


def _number(value) -> Optional[float]:
    return None if value is None else float(value)
