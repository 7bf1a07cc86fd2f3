"""Where a predictor's knowledge ends: the layers of the models it was fitted on.

A prediction interval rests on the residuals of held-out models (trainer.intervals), and it holds a new model at its
nominal share only if the new model is like them. A model whose layers lie outside the range of the training models'
layers (a larger feature map, more channels, a kernel size or an op none of them had) is one those residuals say
nothing about: the residuals of a supernet's subnets at 32×32 bounded 18–35 % of CNNs at 96×96 at a nominal 90 %
(docs/benchmarks-hybrid.md). This tells such models apart from the graph alone, so the same rule serves every
predictor kind and every device.

A layer's key is its op (for a Conv: dense k×k, 1×1, depthwise or grouped); its box, the range of each of
LAYER_FEATURES over the training models' layers of that key. A model's novelty is the share of its FLOPs in layers
outside their key's box (a key no training model had is outside); from NOVEL_SHARE on the model is novel.
"""

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from trainer.cost_features import CONV_KINDS, conv_kinds, numeric_features, op_index
from trainer.encoding import NUMERIC_FEATURES, GraphEncoding

LAYER_FEATURES = ("kernel_h", "stride_h", "cin", "cout", "in_h", "in_w")
NOVEL_SHARE = 0.5
_TOLERANCE = 1e-4  # the encoding stores log1p of float32 facts: a layer of the training set must land inside its box
_COLUMNS = [NUMERIC_FEATURES.index(name) for name in LAYER_FEATURES]


def layers(encoding: GraphEncoding, vocabulary: Sequence[str]) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """(key per node, [nodes, LAYER_FEATURES], FLOPs per node), the global node left out."""
    numeric = numeric_features(encoding, len(vocabulary))
    names = list(vocabulary) + ["other"]
    keys = [names[i] for i in op_index(encoding, len(vocabulary))]
    if "Conv" in names:
        convs = conv_kinds(encoding, vocabulary)
        keys = [CONV_KINDS[int(row.argmax())] if row.any() else key for key, row in zip(keys, convs)]
    return keys, numeric[:, _COLUMNS], numeric[:, NUMERIC_FEATURES.index("flops")]


@dataclass(frozen=True)
class Domain:
    """Per layer key, the (low, high) of each of LAYER_FEATURES over the training models' layers."""

    boxes: Dict[str, Tuple[Tuple[float, float], ...]]

    @classmethod
    def of(cls, encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]) -> "Domain":
        values: Dict[str, List[np.ndarray]] = {}
        for encoding in encodings:
            keys, features, _ = layers(encoding, vocabulary)
            for key, row in zip(keys, features):
                values.setdefault(key, []).append(row)
        return cls({key: tuple((float(low), float(high)) for low, high in zip(np.min(rows, axis=0),
                                                                            np.max(rows, axis=0)))
                    for key, rows in values.items()})

    def to_dict(self) -> Dict[str, List[List[float]]]:
        return {key: [list(bounds) for bounds in box] for key, box in self.boxes.items()}

    @classmethod
    def from_dict(cls, data: Dict[str, List[List[float]]]) -> "Domain":
        return cls({key: tuple((float(low), float(high)) for low, high in box) for key, box in data.items()})

    def novel_share(self, encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]) -> np.ndarray:
        """Per model, the share of its FLOPs in layers outside the domain (0 for a model without FLOPs)."""
        shares = []
        for encoding in encodings:
            keys, features, flops = layers(encoding, vocabulary)
            outside = np.asarray([not self._inside(key, row) for key, row in zip(keys, features)], dtype=bool)
            total = float(flops.sum())
            shares.append(float(flops[outside].sum()) / total if total > 0 else 0.0)
        return np.asarray(shares, dtype=np.float64)

    def novel(self, encodings: Sequence[GraphEncoding], vocabulary: Sequence[str]) -> np.ndarray:
        return self.novel_share(encodings, vocabulary) >= NOVEL_SHARE

    def _inside(self, key: str, row: np.ndarray) -> bool:
        box = self.boxes.get(key)
        if box is None:
            return False
        return all(low * (1 - _TOLERANCE) - _TOLERANCE <= value <= high * (1 + _TOLERANCE) + _TOLERANCE
                   for value, (low, high) in zip(row, box))
