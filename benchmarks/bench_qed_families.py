"""Benchmark 1 on the public phone tables: CNN families never seen in training.

For each family (qed_common.family_of), every predictor is trained on all other models of every CPU column of both
runtimes' tables at once, and predicts the held-out family on each column; each model is thus predicted exactly
once per column, by a predictor that never saw its family. Kinds fitted in closed form train on every other model
(so the figures do not depend on --seed); iterative kinds hold 10 % of them back for early stopping, as `trainer
fit` does. Scored per column (±10 %, ±20 %, Spearman ρ, MAPE) and
averaged over the issue's column groups: one core fp32, four small cores fp32, int8.

Baselines: a log-linear fit of the ratio on FLOPs and parameters per column, and the trainer's `additive` kind.

    python benchmarks/bench_qed_families.py --models runs/qed-models [--kinds nodecost,additive] [--json out.json]
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qed_common import (  # noqa: E402
    column_group, encode_models, family_of, join_tables, noise_ceiling, read_table, score_column)

from trainer.fitting import split_items  # noqa: E402
from trainer.predictors import predictor_class  # noqa: E402

BASELINE = "flops+size"
GROUPS = ("1core-fp32", "4small-fp32", "int8")


def log_linear(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Per column, log ratio ~ a + b log FLOPs + c log params on the column's measured training models."""
    design = np.column_stack([np.ones(len(train_x)), train_x])
    out = np.full((len(test_x), train_y.shape[1]), np.nan)
    for j in range(train_y.shape[1]):
        known = np.isfinite(train_y[:, j])
        coef = np.linalg.lstsq(design[known], np.log(train_y[known, j]), rcond=None)[0]
        out[:, j] = np.exp(np.column_stack([np.ones(len(test_x)), test_x]) @ coef)
    return out


def size_features(encodings) -> np.ndarray:
    return np.asarray([[np.log1p(np.expm1(e.static[0])), np.log1p(np.expm1(e.static[1]))] for e in encodings])


def fit_predict(kind: str, hyper: Dict[str, object], train, train_y: np.ndarray, test, seed: int) -> np.ndarray:
    """[test, devices] predicted ratios of a predictor trained on every column at once."""
    if kind == BASELINE:
        return log_linear(size_features(train), train_y, size_features(test))
    cls = predictor_class(kind)
    names = [str(i) for i in range(len(train))]
    fit_ids, val_ids = (names, []) if cls.closed_form else split_items(names, None if len(names) >= 10 else
                                                                       len(names), seed)
    fit_rows, val_rows = [int(i) for i in fit_ids], [int(i) for i in val_ids]
    predictor = cls(dict(hyper, heads=train_y.shape[1]))
    predictor.fit([train[i] for i in fit_rows], train_y[fit_rows], [train[i] for i in val_rows], train_y[val_rows],
                  seed)
    return np.exp(predictor.log_heads(test))


def leave_family_out(kind: str, hyper, models: List[str], encodings, ratios: np.ndarray, seed: int) -> np.ndarray:
    """[models, devices] each model predicted by a predictor trained without its family."""
    families = [family_of(m) for m in models]
    predicted = np.full_like(ratios, np.nan)
    for family in sorted(set(families)):
        held = [i for i, f in enumerate(families) if f == family]
        kept = [i for i, f in enumerate(families) if f != family]
        predicted[held] = fit_predict(kind, hyper, [encodings[models[i]] for i in kept], ratios[kept],
                                      [encodings[models[i]] for i in held], seed)
    return predicted


def summarize(devices: Sequence[str], ratios: np.ndarray, predicted: np.ndarray) -> Dict[str, Dict[str, float]]:
    return {device: score_column(ratios[:, j], predicted[:, j]) for j, device in enumerate(devices)}


def group_means(per_column: Dict[str, Dict[str, float]], table) -> Dict[str, Dict[str, float]]:
    """Each group's mean scores, beside the noise ceiling of its measurements (qed_common.noise_ceiling)."""
    out = {}
    for group in GROUPS:
        members = [m for d, m in per_column.items() if column_group(d) == group]
        out[group] = {key: float(np.nanmean([m[key] for m in members]))
                      for key in ("within_10", "within_20", "spearman", "mape_pct")}
        out[group]["columns"] = len(members)
        cv = table.cv[:, [j for j, d in enumerate(table.devices) if column_group(d) == group]]
        out[group]["noise_ceiling"] = noise_ceiling(cv)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="Directory of <name>.onnx (build_qed_models.py).")
    parser.add_argument("--kinds", default="{},additive,nodecost".format(BASELINE))
    parser.add_argument("--hyper", default="{}", help="JSON hyper-parameters for the learned kinds.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", type=Path, default=None, help="Write every column's scores.")
    args = parser.parse_args(argv)
    table = join_tables([read_table("tflite"), read_table("torch")])
    report = {}
    for kind in args.kinds.split(","):
        vocabulary = predictor_class("flops" if kind == BASELINE else kind)().vocabulary
        encodings = encode_models(table.models, args.models, vocabulary)
        rows = [i for i, m in enumerate(table.models) if m in encodings]
        models, ratios = [table.models[i] for i in rows], table.ratios[rows]
        start = time.perf_counter()
        predicted = leave_family_out(kind, json.loads(args.hyper), models, encodings, ratios, args.seed)
        per_column = summarize(table.devices, ratios, predicted)
        report[kind] = {"models": len(models), "families": len({family_of(m) for m in models}),
                        "columns": per_column, "groups": group_means(per_column, table),
                        "seconds": time.perf_counter() - start}
        print_kind(kind, report[kind])
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def print_kind(kind: str, result) -> None:
    print("\n{}: {} models, {} families, leave one family out ({:.0f} s)".format(
        kind, result["models"], result["families"], result["seconds"]))
    print("{:<14} {:>7} {:>7} {:>7} {:>7} {:>8}".format("columns", "±10 %", "±20 %", "rho", "MAPE", "ceiling"))
    for group, m in result["groups"].items():
        print("{:<14} {:>6.1%} {:>6.1%} {:>7.3f} {:>6.1f}% {:>7.1%}  ({} columns)".format(
            group, m["within_10"], m["within_20"], m["spearman"], m["mape_pct"], m["noise_ceiling"], m["columns"]))


if __name__ == "__main__":
    sys.exit(main())
