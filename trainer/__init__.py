"""Workstation side: ingest measurement bundles and public tables, encode ONNX graphs, fit and evaluate predictors.

Heavy dependencies (torch, torch_geometric, pyarrow, matplotlib) are imported inside the modules that need them,
so `trainer --help` stays fast. The Python API (trainer.api) is exported here lazily for the same reason:
`from trainer import load_predictor`."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.api import LatencyPredictor, Prediction, load_predictor

__all__ = ["LatencyPredictor", "Prediction", "load_predictor"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from trainer import api

        return getattr(api, name)
    raise AttributeError("module 'trainer' has no attribute {!r}".format(name))
