"""Benchmark 2 (issue 4): cross-device. Train on some ../shared/data/nb201 devices, evaluate on others with only the
target's reference latency (--shots 0) and with 10 measured samples (--shots 10). HELP (10 samples): mean ρ 0.932.

    .venv/bin/python benchmarks/bench_trainer_cross_device.py [--train gold_6240 --train silver_4114]
        [--target pixel3 ...] [--hidden 128] [--work DIR]
"""

import argparse
import json
import time
from pathlib import Path

from bench_trainer_nb201 import DEFAULT_WORK, prepare

TRAIN = ["gold_6240", "silver_4114"]
TARGETS = ["pixel3", "silver_4210r", "samsung_a50", "sd855_cpu_kryo485_int8", "titanxp_1"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="append", default=None)
    parser.add_argument("--target", action="append", default=None)
    parser.add_argument("--kind", default="gcn")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=900)
    parser.add_argument("--shots", type=int, action="append", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--finetune-steps", type=int, default=0, help="GCN head fine-tuning steps on the shots.")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()
    train, targets, shots = args.train or TRAIN, args.target or TARGETS, args.shots or [0, 10]

    from trainer.evaluation import evaluate
    from trainer.fitting import fit
    from trainer.predictors.store import load_predictor

    dataset = prepare(args.work, sorted(set(train) | set(targets)))
    out = args.work / "pred-cross-{}-{}-{}".format(args.kind, "+".join(train), args.hidden)
    start = time.perf_counter()
    fit(dataset, train, args.kind, args.train_size, args.seed, {"hidden": args.hidden, "finetune_steps": args.finetune_steps}, out)
    print("fit on {} ({} archs each): {:.0f} s".format(", ".join(train), args.train_size, time.perf_counter() - start))
    results = []
    for target in targets:
        for k in shots:
            predictor, config = load_predictor(out)  # fresh: adaptation must not leak between targets
            m = evaluate(predictor, config, dataset, target, shots=k, seed=args.seed).metrics
            results.append({"target": target, "shots": k, "metrics": m})
            print("{:>24} shots {:>2}: ρ {:.4f}  τ {:.4f}  ±10 % {:6.1%}  ±5 % {:6.1%}  MAPE {:5.1f} %  (n={})".format(
                target, k, m["spearman"], m["kendall"], m["within_10"], m["within_5"], m["mape_pct"], m["n"]),
                flush=True)
    for k in shots:
        rhos = [r["metrics"]["spearman"] for r in results if r["shots"] == k]
        within = [r["metrics"]["within_10"] for r in results if r["shots"] == k]
        print("mean over targets, shots {}: ρ {:.4f}, ±10 % {:.1%} (HELP 10 shots: ρ 0.932; goal ≥ 0.97)".format(
            k, sum(rhos) / len(rhos), sum(within) / len(within)))
    print(json.dumps({"benchmark": "nb201-cross-device", "train": train, "hidden": args.hidden, "results": results}))


if __name__ == "__main__":
    main()
