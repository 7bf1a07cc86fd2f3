"""Benchmark 2 (issue 4): cross-device. Train one head per source device of ../shared/data/nb201 (by default every
device that is not a target), evaluate on the targets with only the target's reference latency (--shots 0: the
average of the source heads) and with 10 measured samples (--shots 10: the mix of source heads fitted to them and the
reference, then for a cell-level predictor the per-op correction; the 10 are the ones the predictor chooses, among all
items or among --candidates drawn per seed, or a random draw with --shot-selection random). HELP (10 samples): mean ρ
0.932. With --seeds N the mean over targets is also given as mean ± sd over the N draws. Each target's ρ is printed
beside its noise ceiling (the ρ an oracle that knows the noise-free table reaches against the measured one;
bench_trainer_ceiling.py).

    .venv/bin/python benchmarks/bench_trainer_cross_device.py [--train DEVICE ...] [--target pixel3 ...]
        [--kind gcn] [--hidden 128] [--cell] [--work DIR] [--shot-selection chosen|random] [--candidates N]
        [--seeds N] [--reuse]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

from bench_trainer_ceiling import read_rows, spearman_ceiling
from bench_trainer_nb201 import DEFAULT_WORK, prepare

TARGETS = ["pixel3", "silver_4210r", "samsung_a50", "sd855_cpu_kryo485_int8", "titanxp_1"]
DEVICES = ["pixel3", "gold_6240", "silver_4114", "silver_4210r", "1080ti_1", "1080ti_32", "2080ti_1", "titanxp_1",
           "samsung_a50", "essential_ph_1", "jetson_nano_gpu_fp16", "sd855_cpu_kryo485_int8", "sd675_cpu_kryo460_int8",
           "sd855_gpu_adreno640_int8", "desktop_cpu_i7_7820x_fp32"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="append", default=None)
    parser.add_argument("--target", action="append", default=None)
    parser.add_argument("--kind", default="gcn")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=900)
    parser.add_argument("--shots", type=int, action="append", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shot-selection", choices=["chosen", "random"], default="chosen")
    parser.add_argument("--candidates", type=int, default=None,
                        help="chosen shots come from this many items drawn per seed (default: all items)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="shot draws or candidate pools (seed, seed+1, ...) averaged per target")
    parser.add_argument("--reuse", action="store_true", help="evaluate the predictor already fitted in the work dir")
    parser.add_argument("--cell", action="store_true", help="cell-level input mode instead of ONNX graphs")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()
    targets, shots = args.target or TARGETS, args.shots or [0, 10]
    train = args.train or [d for d in DEVICES if d not in targets]
    if set(train) & set(targets):
        parser.error("a target must not be a training device: {}".format(", ".join(sorted(set(train) & set(targets)))))

    from trainer.cell_encoding import cell_vocabulary
    from trainer.evaluation import evaluate
    from trainer.fitting import fit
    from trainer.predictors.store import load_predictor

    dataset = prepare(args.work, sorted(set(train) | set(targets)))
    out = args.work / "pred-cross-{}-{}-{}{}".format(args.kind, len(train), args.hidden, "-cell" if args.cell else "")
    if not (args.reuse and (out / "config.json").is_file()):
        start = time.perf_counter()
        fit(dataset, train, args.kind, args.train_size, args.seed, {"hidden": args.hidden}, out,
            vocabulary=cell_vocabulary("nb201") if args.cell else None)
        print("fit on {} ({} archs each): {:.0f} s".format(", ".join(train), args.train_size,
                                                           time.perf_counter() - start))
    drawn = args.shot_selection == "random" or args.candidates is not None
    draws = range(args.seed, args.seed + (args.seeds if drawn else 1))
    results = []
    table = read_rows()
    for target in targets:
        ceiling = spearman_ceiling(table, target + "_ms")[2]
        for k in shots:
            runs = [evaluate(*load_predictor(out), dataset, target, shots=k, seed=s,  # fresh predictor
                             shot_selection=args.shot_selection, candidates=args.candidates).metrics
                    for s in (draws if k else draws[:1])]
            m = _mean_metrics(runs)
            results.append({"target": target, "shots": k, "metrics": m, "spearman_ceiling": ceiling,
                            "spearman_per_draw": [r["spearman"] for r in runs]})
            print("{:>24} shots {:>2}: ρ {:.4f} (ceiling {:.3f})  τ {:.4f}  ±10 % {:6.1%}  ±5 % {:6.1%}  "
                  "MAPE {:5.1f} %  (n={})".format(
                target, k, m["spearman"], ceiling, m["kendall"], m["within_10"], m["within_5"], m["mape_pct"], m["n"]),
                flush=True)
    for k in shots:
        rhos = [r["metrics"]["spearman"] for r in results if r["shots"] == k]
        within = [r["metrics"]["within_10"] for r in results if r["shots"] == k]
        per_draw = [statistics.mean(d) for d in zip(*(r["spearman_per_draw"] for r in results if r["shots"] == k))]
        spread = (" (sd over {} draws {:.4f})".format(len(per_draw), statistics.stdev(per_draw))
                  if len(per_draw) > 1 else "")
        print("mean over targets, shots {}: ρ {:.4f}{}, ±10 % {:.1%} (HELP 10 shots: ρ 0.932; goal ≥ 0.97)".format(
            k, sum(rhos) / len(rhos), spread, sum(within) / len(within)))
    print(json.dumps({"benchmark": "nb201-cross-device", "train": train, "kind": args.kind, "hidden": args.hidden,
                      "cell": args.cell, "shot_selection": args.shot_selection, "candidates": args.candidates,
                      "draws": len(draws),
                      "results": results}))


def _mean_metrics(runs):
    """Each metric averaged over the shot draws (the item count is the same in each)."""
    return dict({name: sum(m[name] for m in runs) / len(runs) for name in runs[0]}, n=runs[0]["n"])


if __name__ == "__main__":
    main()
