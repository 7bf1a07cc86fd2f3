"""Benchmarks 2 and 3 on the public phone tables: devices never seen in training, from their reference and K shots.

2. Unseen phones: one phone is left out entirely (all its columns, both runtimes); the predictor trains on every
   column of the other phones and predicts each held-out column from its reference latency plus K = 0, 5, 10
   measured models, chosen by the predictor (`trainer.adapting.chosen_shots`, what `trainer calibration-set` asks a
   user to measure) or at random. The K shots adapt the mix of the training heads (`HeadsPredictor.adapt`); they
   are not scored.
3. Another runtime or precision on the same phone and cores: TFLite -> PyTorch Mobile and fp32 -> int8. The
   target column is left out, its source column stays in training, and the target is predicted from K = 10 shots.

    python benchmarks/bench_qed_devices.py --models runs/qed-models [--kinds nodecost] [--shots 0,5,10]
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qed_common import REFERENCE, encode_models, join_tables, read_table, score_column  # noqa: E402

from trainer.adapting import chosen_shots  # noqa: E402
from trainer.predictors import predictor_class  # noqa: E402

PHONES = ("pixel4", "s10", "mi8se", "onefusion", "iphonexs")


def phone_of(device: str) -> str:
    return device.partition(":")[2].split("|")[0]


def train(kind: str, hyper, encodings: Sequence, ratios: np.ndarray, seed: int):
    predictor = predictor_class(kind)(dict(hyper, heads=ratios.shape[1]))
    predictor.fit(list(encodings), ratios, [], np.zeros((0, ratios.shape[1])), seed)
    return predictor


def pick_shots(predictor, encodings: Sequence, measured: np.ndarray, reference: int, k: int, how: str,
               seed: int) -> List[int]:
    """K measured models other than the reference: the predictor's choice or a random draw."""
    pool = [i for i in range(len(encodings)) if i != reference and np.isfinite(measured[i])]
    if k == 0:
        return []
    if how == "random":
        return sorted(np.random.default_rng(seed).choice(pool, size=k, replace=False).tolist())
    chosen = chosen_shots(predictor, [encodings[i] for i in pool], [encodings[reference]], k)
    return sorted(pool[i] for i in chosen)


def predict_column(predictor, encodings: Sequence, measured: np.ndarray, reference: int, k: int, how: str,
                   seed: int) -> Dict[str, float]:
    """Adapt to the column's reference and K shots, score on every other measured model of the column."""
    shots = pick_shots(predictor, encodings, measured, reference, k, how, seed)
    points = shots + [reference]
    predictor.adapt([encodings[i] for i in points], measured[points], seed)
    predicted = predictor.predict(list(encodings))
    scored = np.ones(len(measured), bool)
    scored[points] = False
    return score_column(measured[scored], predicted[scored])


def mean_scores(scores: List[Dict[str, float]]) -> Dict[str, float]:
    return {key: float(np.nanmean([s[key] for s in scores])) for key in ("within_10", "within_20", "spearman",
                                                                           "mape_pct")}


def kin(device: str) -> tuple:
    """A column's runtime and precision: what a user adapting a new board knows it will run."""
    runtime, _, column = device.partition(":")
    return runtime, column.split("|")[-1]


def unseen_phones(kind, hyper, table, encodings, shots: Sequence[int], how: str, seed: int, same_kin: bool):
    """With same_kin, a held-out column mixes only the training columns of its own runtime and precision."""
    results = {}
    reference = table.models.index(REFERENCE)
    for phone in PHONES:
        target = [j for j, d in enumerate(table.devices) if phone_of(d) == phone]
        groups = sorted({kin(table.devices[j]) for j in target}) if same_kin else [None]
        scores: Dict[int, List[Dict[str, float]]] = {k: [] for k in shots}
        for group in groups:
            source = [j for j, d in enumerate(table.devices) if phone_of(d) != phone and group in (None, kin(d))]
            predictor = train(kind, hyper, encodings, table.ratios[:, source], seed)
            for j in [j for j in target if group in (None, kin(table.devices[j]))]:
                for k in shots:
                    scores[k].append(predict_column(predictor, encodings, table.ratios[:, j], reference, k, how,
                                                    seed))
        for k in shots:
            results["{} K={}".format(phone, k)] = dict(mean_scores(scores[k]), columns=len(target))
    return results


def transfer_pairs(devices: Sequence[str]) -> Dict[str, List[tuple]]:
    """(source, target) column pairs: same phone and cores, TFLite -> PyTorch and fp32 -> int8."""
    index = {d: j for j, d in enumerate(devices)}
    runtime, precision = [], []
    for device, j in index.items():
        name, _, column = device.partition(":")
        if name == "tflite" and "torch:" + column in index:
            runtime.append((j, index["torch:" + column]))
        if column.endswith("|float") and device[:-len("float")] + "quant" in index:
            precision.append((j, index[device[:-len("float")] + "quant"]))
    return {"tflite->torch": runtime, "fp32->int8": precision}


def transfers(kind, hyper, table, encodings, shots: Sequence[int], how: str, seed: int):
    """Each target column left out and predicted from its reference and K shots, for every K of `shots`."""
    results = {}
    reference = table.models.index(REFERENCE)
    for name, pairs in transfer_pairs(table.devices).items():
        scores: Dict[int, List[Dict[str, float]]] = {k: [] for k in shots}
        for _, target in pairs:
            kept = [j for j in range(len(table.devices)) if j != target]
            predictor = train(kind, hyper, encodings, table.ratios[:, kept], seed)
            for k in shots:
                scores[k].append(predict_column(predictor, encodings, table.ratios[:, target], reference, k, how,
                                                seed))
        for k in shots:
            results["{} K={}".format(name, k)] = dict(mean_scores(scores[k]), columns=len(pairs))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="Directory of <name>.onnx (build_qed_models.py).")
    parser.add_argument("--kinds", default="nodecost")
    parser.add_argument("--hyper", default="{}", help="JSON hyper-parameters for the learned kinds.")
    parser.add_argument("--shots", default="0,5,10")
    parser.add_argument("--selection", choices=["chosen", "random"], default="chosen")
    parser.add_argument("--same-kin", action="store_true",
                        help="mix only the training columns of the target's own runtime and precision")
    parser.add_argument("--transfer", action="store_true",
                        help="Also benchmark 3 (one fit per target column, scored at each K of --shots).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", dest="json_out", type=Path, default=None)
    args = parser.parse_args(argv)
    table = join_tables([read_table("tflite"), read_table("torch")])
    report = {}
    for kind in args.kinds.split(","):
        encodings_by_name = encode_models(table.models, args.models, predictor_class(kind)().vocabulary)
        encodings = [encodings_by_name[m] for m in table.models]
        start = time.perf_counter()
        shots = [int(k) for k in args.shots.split(",")]
        result = unseen_phones(kind, json.loads(args.hyper), table, encodings, shots, args.selection, args.seed,
                               args.same_kin)
        if args.transfer:
            result.update(transfers(kind, json.loads(args.hyper), table, encodings, shots, args.selection, args.seed))
        report[kind] = {"rows": result, "seconds": time.perf_counter() - start}
        print("\n{} ({} shots, {:.0f} s)".format(kind, args.selection, report[kind]["seconds"]))
        print("{:<22} {:>7} {:>7} {:>7} {:>7}".format("held out", "±10 %", "±20 %", "rho", "MAPE"))
        for name, m in result.items():
            print("{:<22} {:>6.1%} {:>6.1%} {:>7.4f} {:>6.1f}%  ({} columns)".format(
                name, m["within_10"], m["within_20"], m["spearman"], m["mape_pct"], m["columns"]))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
