"""Shared by the benchmarks on the public phone tables (../shared/data/qed): reading a table's columns as devices,
the CNN families by name stem, the models' graph encodings, and the per-column scores.

A device is one (phone, cores, precision) column of one runtime's table, named `<runtime>:<column stem>`, e.g.
`tflite:pixel4|1large|float`. Labels are ratios to the reference model's latency in the same column.
"""

import csv
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer.encoding import GraphEncoding  # noqa: E402
from trainer.encoding_cache import EncodingCache  # noqa: E402
from trainer.metrics import score  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "qed"
TABLES = {"tflite": SHARED / "tflite_cnn_real_e2e.csv", "torch": SHARED / "torch_cnn_real_e2e.csv"}
REFERENCE = "mobilenetv2_w1"
# Families whose stem names a version: the version is part of the family (MobileNetV2 is not MobileNet).
_VERSIONED = re.compile(r"^(mobilenetv\d+b?)")


def family_of(name: str) -> str:
    """The CNN family by name stem: the name before its first "_", less a trailing depth or size
    (resnet18_wd2 -> resnet, regnetx002 -> regnetx, diracnet18v2 -> diracnet, mobilenetv3_small_w1 -> mobilenetv3)."""
    versioned = _VERSIONED.match(name)
    if versioned:
        return versioned.group(1)
    return re.sub(r"\d.*$", "", name.split("_")[0])


@dataclass(frozen=True)
class Table:
    models: List[str]
    devices: List[str]
    ratios: np.ndarray  # [models, devices], NaN where the table has no measurement
    cv: np.ndarray  # [models, devices] the run-to-run std over the mean (NaN where the table gives none)

    def column(self, device: str) -> np.ndarray:
        return self.ratios[:, self.devices.index(device)]


def read_table(runtime: str, gpu: bool = False) -> Table:
    """Every `…|mean` column of the runtime's table as a device (GPU columns only with gpu=True), as ratios to the
    reference row; a column without the reference is left out."""
    with open(TABLES[runtime], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c.endswith("|mean") and (gpu or "|gpu|" not in c)]
    models = [row["model"] for row in rows]
    reference = models.index(REFERENCE)
    kept, ratios, cvs = [], [], []
    for column in columns:
        values = _cells(rows, column)
        if np.isfinite(values[reference]) and values[reference] > 0:
            kept.append("{}:{}".format(runtime, column[:-len("|mean")]))
            ratios.append(values / values[reference])
            cvs.append(_cells(rows, column[:-len("mean")] + "std") / values)
    return Table(models, kept, np.stack(ratios, axis=1), np.stack(cvs, axis=1))


def _cells(rows: Sequence[Dict[str, str]], column: str) -> np.ndarray:
    return np.asarray([float(row[column]) if (row.get(column) or "").strip() else np.nan for row in rows])


def noise_ceiling(cv: np.ndarray) -> float:
    """The share of measurements whose own repeat would land within ±10 %, from each one's run-to-run std over its
    mean (a repeat's relative difference taken as normal with sd √2·cv): what no predictor scored on them can beat."""
    from scipy.stats import norm

    known = cv[np.isfinite(cv)]
    return float(np.mean(2 * norm.cdf(0.10 / (np.sqrt(2) * np.maximum(known, 1e-9))) - 1)) if known.size else np.nan


def join_tables(tables: Sequence[Table]) -> Table:
    """One table over the models of the first (a model missing from another table is NaN there)."""
    models = tables[0].models

    def aligned(table: Table, values: np.ndarray) -> np.ndarray:
        index = {name: i for i, name in enumerate(table.models)}
        block = np.full((len(models), len(table.devices)), np.nan)
        for row, name in enumerate(models):
            if name in index:
                block[row] = values[index[name]]
        return block

    return Table(models, [d for t in tables for d in t.devices],
                 np.concatenate([aligned(t, t.ratios) for t in tables], axis=1),
                 np.concatenate([aligned(t, t.cv) for t in tables], axis=1))


def encode_models(names: Sequence[str], models_dir: Path, vocabulary: Sequence[str]) -> Dict[str, GraphEncoding]:
    """Graph encodings of DIR/<name>.onnx, cached beside the models; a missing model is left out (and named)."""
    cache = EncodingCache(Path(models_dir) / ".encodings", vocabulary)
    encodings, missing = {}, []
    for name in names:
        path = Path(models_dir) / "{}.onnx".format(name)
        if path.is_file():
            encodings[name] = cache.for_file(path)
        else:
            missing.append(name)
    cache.flush()
    if missing:
        print("no ONNX for {} model(s), left out: {}".format(len(missing), ", ".join(missing)))
    return encodings


def column_group(device: str) -> str:
    """The issue's column groups: one core fp32, four small cores, int8; else "other"."""
    _, _, column = device.partition(":")
    parts = column.split("|")
    if len(parts) < 3:
        return "other"
    cores, precision = parts[1], parts[2]
    if precision == "quant":
        return "int8"
    if cores in ("1large", "1med", "1small"):
        return "1core-fp32"
    return "4small-fp32" if cores == "4small" else "other"


def score_column(measured: np.ndarray, predicted: np.ndarray) -> Dict[str, float]:
    """The trainer's metrics plus the share within ±20 %, over the column's measured entries."""
    known = np.isfinite(measured) & np.isfinite(predicted)
    metrics = score(measured[known], predicted[known])
    relative = np.abs(predicted[known] - measured[known]) / measured[known]
    metrics["within_20"] = float(np.mean(relative <= 0.20 + 1e-12)) if known.any() else float("nan")
    return metrics
