"""Benchmark 1 (issue 4): NAS-Bench-201 on one device of ../shared/data/nb201 — train on 900 archs, test on all the
rest; ±10 % share and Spearman ρ (BRP-NAS with 900 samples: ρ ≈ 0.79–0.85).

    .venv/bin/python benchmarks/bench_trainer_nb201.py [--device pixel3] [--kind gcn] [--hidden 600] [--cell]
        [--work DIR]

--cell encodes the NB201 cell (BRP-NAS style, trainer.cell_encoding) instead of the ONNX graph.

The first run imports the table's devices and encodes all 15,284 connected archs from ONNX into the dataset's
encoding cache (minutes); later runs reuse it."""

import argparse
import json
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "nb201" / "nb201_latency.csv"
DEFAULT_WORK = Path("/tmp/edge-latency-bench/nb201-v2")  # nb201 space version 2 (every edge computed)


def prepare(work: Path, devices, workers: int = 2):
    """Dataset with the devices' columns imported and every arch encoded (cached on disk)."""
    from trainer.dataset import Dataset
    from trainer.encoding_cache import EncodingCache, warm_specs
    from trainer.tables import import_table

    dataset = Dataset(work, create=True)
    for device in devices:
        import_table(DATA, "nb201", "arch_str", "{}_ms".format(device), device, dataset)
    specs = {r["spec_json"] for r in dataset.rows(columns=["spec_json", "device"])}
    start = time.perf_counter()
    done = warm_specs(EncodingCache(dataset.encodings_dir), [json.loads(s) for s in sorted(specs)], workers,
                      lambda n: print("  encoded {} archs".format(n), flush=True))
    if done:
        print("encoded {} archs from ONNX in {:.0f} s ({} workers)".format(done, time.perf_counter() - start, workers))
    return dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--kind", default="gcn")
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--train-size", type=int, default=900)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cell", action="store_true", help="cell-level input mode instead of ONNX graphs")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()

    from trainer.cell_encoding import cell_vocabulary
    from trainer.evaluation import evaluate
    from trainer.fitting import fit
    from trainer.predictors.store import load_predictor

    dataset = prepare(args.work, [args.device])
    hyper = {"hidden": args.hidden} if args.hidden else None
    out = args.work / "pred-{}-{}-{}{}".format(args.kind, args.device, args.hidden or "default",
                                               "-cell" if args.cell else "")
    start = time.perf_counter()
    result = fit(dataset, [args.device], args.kind, args.train_size, args.seed, hyper, out,
                 vocabulary=cell_vocabulary("nb201") if args.cell else None)
    fit_s = time.perf_counter() - start
    predictor, config = load_predictor(out)
    evaluation = evaluate(predictor, config, dataset, args.device)
    m = evaluation.metrics
    print(json.dumps({"benchmark": "nb201-same-device", "device": args.device, "kind": args.kind, "cell": args.cell,
                      "hyper": predictor.hyper, "train": len(result.train_items), "val": len(result.val_items),
                      "epochs": result.history.epochs, "fit_s": round(fit_s, 1), "metrics": m}, indent=1))
    print("{} {} on {}: ±10 % {:.1%}, ±5 % {:.1%}, Spearman ρ {:.4f}, Kendall τ {:.4f} over {} unseen archs "
          "(BRP-NAS 900 samples: ρ ≈ 0.79–0.85)".format(args.kind, args.device, args.device, m["within_10"],
                                                       m["within_5"], m["spearman"], m["kendall"], m["n"]))


if __name__ == "__main__":
    main()
