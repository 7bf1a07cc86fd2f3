"""A predictor on disk is a directory: config.json (kind, vocabulary, versions, training devices and items, and the
held-out residuals of its prediction intervals; a config without them, as older ones are, gives no interval) and
weights.safetensors (plain tensors; never a pickle)."""

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from edge_agent.errors import InputError
from trainer.encoding import ENCODING_VERSION, vocabulary_hash
from trainer.predictors import predictor_class
from trainer.predictors.base import Predictor

PREDICTOR_FORMAT = "edge-latency-predictor"
PREDICTOR_FORMAT_VERSION = 2  # 2: one output head per training device (+ the mix over them)
CONFIG = "config.json"
WEIGHTS = "weights.safetensors"


def save_predictor(predictor: Predictor, out_dir: Path, training: Dict[str, Any],
                   intervals: Optional[Dict[str, Any]] = None) -> None:
    """`intervals`: the held-out residuals of trainer.intervals (None: the predictor gives no interval)."""
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "format": PREDICTOR_FORMAT, "format_version": PREDICTOR_FORMAT_VERSION, "kind": predictor.kind,
        "target": predictor.target, "encoding_version": ENCODING_VERSION,
        "vocabulary": list(predictor.vocabulary), "vocabulary_hash": vocabulary_hash(predictor.vocabulary),
        "hyper": predictor.hyper, "calibration": list(predictor.calibration), "training": training,
    }
    if intervals is not None:
        config["intervals"] = intervals
    save_file({name: value for name, value in predictor.tensors().items()}, str(out_dir / (WEIGHTS + ".tmp")))
    os.replace(out_dir / (WEIGHTS + ".tmp"), out_dir / WEIGHTS)
    (out_dir / (CONFIG + ".tmp")).write_text(json.dumps(config, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(out_dir / (CONFIG + ".tmp"), out_dir / CONFIG)


def read_config(pred_dir: Path) -> Dict[str, Any]:
    path = Path(pred_dir) / CONFIG
    if not path.is_file():
        raise InputError("{}: not a predictor directory (no {})".format(pred_dir, CONFIG))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError("{}: corrupt predictor config: {}".format(path, exc)) from None
    if config.get("format") != PREDICTOR_FORMAT or config.get("format_version") != PREDICTOR_FORMAT_VERSION:
        raise InputError("{}: predictor format {!r} version {!r} is not supported (this trainer reads {} version {}); "
                         "refit it".format(pred_dir, config.get("format"), config.get("format_version"),
                                           PREDICTOR_FORMAT, PREDICTOR_FORMAT_VERSION))
    vocabulary = config.get("vocabulary") or []
    if config.get("encoding_version") != ENCODING_VERSION or config.get("vocabulary_hash") != vocabulary_hash(vocabulary):
        raise InputError("{}: the predictor's feature vocabulary or encoding version does not match this trainer's "
                         "(encoding version {!r}, expected {}); refit it".format(
                             pred_dir, config.get("encoding_version"), ENCODING_VERSION))
    return config


def load_predictor(pred_dir: Path) -> Tuple[Predictor, Dict[str, Any]]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    config = read_config(pred_dir)
    predictor = predictor_class(config["kind"])(config.get("hyper"), vocabulary=config["vocabulary"])
    try:
        tensors = load_file(str(Path(pred_dir) / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise InputError("{}: cannot read {}: {}".format(pred_dir, WEIGHTS, exc)) from None
    try:
        predictor.load_tensors(tensors)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InputError("{}: weights do not match the predictor's vocabulary/config ({})".format(
            pred_dir, str(exc).splitlines()[0])) from None
    predictor.calibration = tuple(config.get("calibration", (1.0, 0.0)))
    return predictor, config
