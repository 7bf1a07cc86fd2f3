"""Prediction intervals (trainer.intervals): nominal against empirical coverage, and the mean relative width.

1. The public phone tables (../shared/data/qed, every CPU column of both runtimes; qed_common), `nodecost` with its
   (closed form, cross-fitted intervals): a random 80/20 split of each column's models (the 20 %
   never trained on in that column; --seeds splits), and leave one CNN family out (each family predicted by a
   predictor trained without it: its items are not exchangeable with the training ones, so this is the hard case).
2. NB201 (../shared/data/nb201), a cell-level `flops` predictor through `trainer fit` / `trainer evaluate`: one device
   (train 900, score the rest), for each of --nb201-devices; and new devices (one head per source device, the
   targets of bench_trainer_cross_device.py) with 0 / 10 / 20 shots (chosen by the predictor, as `trainer
   calibration-set` would, or a random draw), where the interval is the sources' residuals widened by the shots' own
   leave-one-out ones (docs/predictors.md#intervals).

Coverage is the share of scored items whose measurement lies inside their interval; "mean over columns" averages
each column's (device's) share, "lowest" is the worst column's; width is (high - low) / prediction.

    .venv/bin/python benchmarks/bench_intervals.py --models runs/qed-models [--parts qed,nb201] [--seeds 5]
        [--json out.json]
"""

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qed_common import encode_models, family_of, join_tables, read_table  # noqa: E402

from trainer.fitting import split_items  # noqa: E402
from trainer.intervals import interval_for, interval_record, should_cross_fit  # noqa: E402
from trainer.predictors import predictor_class  # noqa: E402

COVERAGES = (0.8, 0.9, 0.95)
NB201 = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_latency.csv"
NB201_WORK = Path("/tmp/edge-latency-bench/nb201-intervals")
NB201_DEVICES = ("pixel3", "gold_6240", "samsung_a50", "titanxp_1", "sd855_cpu_kryo485_int8")
# bench_trainer_cross_device.py's split: these five are new devices, the other ten the sources.
TARGETS = ("pixel3", "silver_4210r", "samsung_a50", "sd855_cpu_kryo485_int8", "titanxp_1")
NEW_DEVICE_SHOTS = ((0, "chosen"), (10, "chosen"), (20, "chosen"), (10, "random"), (20, "random"))
SOURCES = ("gold_6240", "silver_4114", "1080ti_1", "1080ti_32", "2080ti_1", "essential_ph_1", "jetson_nano_gpu_fp16",
           "sd675_cpu_kryo460_int8", "sd855_gpu_adreno640_int8", "desktop_cpu_i7_7820x_fp32")


class Tally:
    """Per nominal coverage, every scored entry's column, whether it was inside, and its interval's relative width."""

    def __init__(self):
        self.entries: Dict[float, List[tuple]] = {c: [] for c in COVERAGES}

    def add(self, coverage: float, column: str, inside: np.ndarray, width: float) -> None:
        self.entries[coverage] += [(column, bool(i), width) for i in inside]

    def summary(self) -> Dict[str, Dict[str, float]]:
        out = {}
        for coverage, entries in self.entries.items():
            inside = np.asarray([e[1] for e in entries], dtype=float)
            widths = np.asarray([e[2] for e in entries])
            columns = sorted({e[0] for e in entries})
            shares = [np.mean([e[1] for e in entries if e[0] == c]) for c in columns]
            out["{:g}".format(coverage)] = {
                "empirical": float(inside.mean()), "column_mean": float(np.mean(shares)),
                "column_lowest": float(np.min(shares)), "mean_width": float(np.mean(widths[np.isfinite(widths)])),
                "unbounded": float(np.mean(~np.isfinite(widths))), "items": len(entries), "columns": len(columns)}
        return out


def fit_with_intervals(kind: str, hyper, encodings: Sequence, y: np.ndarray, devices: Sequence[str], seed: int):
    """(predictor, a config holding its "intervals") fitted as `trainer fit` fits it, on every row of y with a
    training entry (NaN: none): 10 % of them for validation, intervals cross-fitted when the kind is quick."""
    rows = [i for i in range(len(y)) if np.isfinite(y[i]).any()]
    fit_ids, val_ids = split_items([str(i) for i in rows], len(rows), seed)
    fit_rows, val_rows = [int(i) for i in fit_ids], [int(i) for i in val_ids]
    predictor = predictor_class(kind)(dict(hyper, heads=y.shape[1]))
    template = copy.deepcopy(predictor) if should_cross_fit(predictor, y[fit_rows]) else None
    train, val = [encodings[i] for i in fit_rows], [encodings[i] for i in val_rows]
    predictor.fit(train, y[fit_rows], val, y[val_rows], seed)
    record = interval_record(predictor, template, train, y[fit_rows], val, y[val_rows], devices, {}, seed)
    return predictor, {"intervals": record}


def tally_predictions(tally: Tally, config, devices: Sequence[str], predicted: np.ndarray, truth: np.ndarray) -> None:
    """Score the entries where `truth` is known (the held-out ones) against each column's own interval."""
    for j, device in enumerate(devices):
        known = np.isfinite(truth[:, j])
        if not known.any():
            continue
        for coverage in COVERAGES:
            interval = interval_for(config, device, coverage)
            low, high = interval.bounds(predicted[known, j])
            tally.add(coverage, device, (truth[known, j] >= low) & (truth[known, j] <= high), interval.relative_width)


def qed_random_split(encodings: Sequence, ratios: np.ndarray, devices: Sequence[str], seeds: int, hyper) -> Tally:
    """Each seed: in every column, a random 20 % of its measured models is held out of training and scored."""
    tally = Tally()
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        held = np.zeros(ratios.shape, dtype=bool)
        for j in range(ratios.shape[1]):
            measured = np.flatnonzero(np.isfinite(ratios[:, j]))
            held[rng.choice(measured, int(round(0.2 * len(measured))), replace=False), j] = True
        predictor, config = fit_with_intervals("nodecost", hyper, encodings, np.where(held, np.nan, ratios), devices,
                                               seed)
        predicted = np.exp(predictor.log_heads(encodings))
        tally_predictions(tally, config, devices, predicted, np.where(held, ratios, np.nan))
    return tally


def qed_leave_family_out(models: Sequence[str], encodings: Sequence, ratios: np.ndarray, devices: Sequence[str],
                         hyper) -> Tally:
    tally = Tally()
    families = [family_of(m) for m in models]
    for family in sorted(set(families)):
        held = np.asarray([f == family for f in families])
        predictor, config = fit_with_intervals("nodecost", hyper, encodings,
                                               np.where(held[:, None], np.nan, ratios), devices, 0)
        predicted = np.exp(predictor.log_heads([e for e, h in zip(encodings, held) if h]))
        tally_predictions(tally, config, devices, predicted, ratios[held])
    return tally


def run_qed(models_dir: Path, seeds: int) -> Dict[str, object]:
    from trainer.predictors.nodecost import NODECOST_VOCABULARY

    table = join_tables([read_table("tflite"), read_table("torch")])
    encoded = encode_models(table.models, models_dir, NODECOST_VOCABULARY)
    rows = [i for i, m in enumerate(table.models) if m in encoded]
    models, ratios = [table.models[i] for i in rows], table.ratios[rows]
    encodings = [encoded[m] for m in models]
    hyper: dict = {}
    report = {"models": len(models), "columns": len(table.devices), "families": len({family_of(m) for m in models})}
    start = time.perf_counter()
    report["random_80_20"] = qed_random_split(encodings, ratios, table.devices, seeds, hyper).summary()
    report["random_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    report["leave_family_out"] = qed_leave_family_out(models, encodings, ratios, table.devices, hyper).summary()
    report["family_seconds"] = time.perf_counter() - start
    return report


def nb201_dataset(devices: Sequence[str]):
    """The NB201 table's columns of `devices` imported (cells are encoded when used: no ONNX is built)."""
    from trainer.dataset import Dataset
    from trainer.tables import import_table

    dataset = Dataset(NB201_WORK, create=True)
    for device in devices:
        import_table(NB201, "nb201", "arch_str", "{}_ms".format(device), device, dataset)
    return dataset


def evaluation_row(predictor_dir: Path, dataset, device: str, shots: int, selection: str = "chosen"
                   ) -> Dict[str, object]:
    """`trainer evaluate`'s interval figures on the device at each nominal coverage (a fresh predictor each)."""
    from trainer.evaluation import evaluate
    from trainer.predictors.store import load_predictor

    row: Dict[str, object] = {}
    for coverage in COVERAGES:
        result = evaluate(*load_predictor(predictor_dir), dataset, device, shots=shots, shot_selection=selection,
                          coverage=coverage)
        row["{:g}".format(coverage)] = {key: result.interval[key] for key in
                                        ("empirical_coverage", "mean_relative_width", "residuals", "basis")}
        row["items"] = result.metrics["n"]
    return row


def run_nb201(devices: Sequence[str]) -> Dict[str, object]:
    from trainer.cell_encoding import cell_vocabulary
    from trainer.fitting import fit

    dataset = nb201_dataset(sorted(set(devices) | set(TARGETS) | set(SOURCES)))
    vocabulary = cell_vocabulary("nb201")
    report: Dict[str, object] = {"same_device": {}, "new_device": {}}
    start = time.perf_counter()
    for device in devices:
        out = NB201_WORK / "pred-flops-{}".format(device)
        fit(dataset, [device], "flops", 900, 0, None, out, vocabulary=vocabulary)
        report["same_device"][device] = evaluation_row(out, dataset, device, 0)
    report["same_seconds"] = time.perf_counter() - start
    start = time.perf_counter()
    out = NB201_WORK / "pred-flops-sources"
    fit(dataset, list(SOURCES), "flops", 900, 0, None, out, vocabulary=vocabulary)
    for target in TARGETS:
        report["new_device"][target] = {"{} {}".format(k, selection): evaluation_row(out, dataset, target, k, selection)
                                        for k, selection in NEW_DEVICE_SHOTS}
    report["new_seconds"] = time.perf_counter() - start
    return report


def print_tally(title: str, summary: Dict[str, Dict[str, float]]) -> None:
    print("\n" + title)
    print("| nominal | empirical (all items) | mean over columns | lowest column | mean width | unbounded |")
    print("| --- | --- | --- | --- | --- | --- |")
    for nominal, s in summary.items():
        print("| {:g} % | {:.1f} % | {:.1f} % | {:.1f} % | {:.1f} % | {:.0f} % |".format(
            100 * float(nominal),
            *(100 * s[k] for k in ("empirical", "column_mean", "column_lowest", "mean_width", "unbounded"))))


def print_nb201(report: Dict[str, object]) -> None:
    print("\nNB201, cell-level flops: nominal → empirical coverage (mean width)")
    print("| device | case | items | " + " | ".join("{:g} %".format(100 * c) for c in COVERAGES) + " |")
    print("| --- | --- | --- |" + " --- |" * len(COVERAGES))
    rows = [(d, "same device, 900 trained", r) for d, r in report["same_device"].items()]
    rows += [(d, "new device, {} shots".format(k), r) for d, by_shots in report["new_device"].items()
             for k, r in by_shots.items()]
    for device, case, row in rows:
        cells = ["{:.1f} % ({:.0f} %)".format(100 * row["{:g}".format(c)]["empirical_coverage"],
                                              100 * (row["{:g}".format(c)]["mean_relative_width"] or float("inf")))
                 for c in COVERAGES]
        print("| {} | {} | {} | {} |".format(device, case, row["items"], " | ".join(cells)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("runs/qed-models"),
                        help="Directory of the phone tables' <name>.onnx (build_qed_models.py).")
    parser.add_argument("--parts", default="qed,nb201")
    parser.add_argument("--seeds", type=int, default=5, help="Random 80/20 splits of the phone tables.")
    parser.add_argument("--nb201-devices", default=",".join(NB201_DEVICES))
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    report: Dict[str, object] = {}
    if "qed" in parts:
        report["qed"] = run_qed(args.models, args.seeds)
        print("phone tables: {models} models, {families} families, {columns} CPU columns; nodecost".format(
            **report["qed"]))
        print_tally("random 80/20 per column, {} seeds ({:.0f} s)".format(args.seeds, report["qed"]["random_seconds"]),
                    report["qed"]["random_80_20"])
        print_tally("leave one family out ({:.0f} s)".format(report["qed"]["family_seconds"]),
                    report["qed"]["leave_family_out"])
    if "nb201" in parts:
        report["nb201"] = run_nb201(args.nb201_devices.split(","))
        print_nb201(report["nb201"])
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
