"""The measurement's own noise ceiling (issue 4, benchmark 3): re-measure a subset of a profiled bundle's subnets and
report how often a second pass agrees with the first within ±10 % / ±5 % — absolute medians and interleaved ratios.
A predictor scored against these measurements cannot be expected to beat this share.

  python benchmarks/bench_noise_ceiling.py runs/this-cpu/bundle [--count 30] [-- extra profile args]
  python benchmarks/bench_noise_ceiling.py FIRST --second SECOND  (two passes already measured, e.g. hours apart)
  python benchmarks/bench_noise_ceiling.py FIRST --spread SECOND THIRD ...  (each item's spread over the passes)

`--spread` asks which of the two measures a machine holds still, item by item: the absolute median or the ratio to
the interleaved reference. The ratio cancels a slowdown only where it slows item and reference alike; on a shared
VM whose cache share moves, a small network moves with the reference and a large compute-bound one does not, and
then its ratio carries the reference's movement (the reference's own spread within each pass is printed too).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from edge_agent.bundle.store import CACHE_DIR, MODELS_DIR, read_records
from edge_agent.stats import interleaved_ratio, summarize


def _first_pass(bundle: str):
    """item model sha -> (median ns, ratio) of the valid interleaved records, and the reference's model sha."""
    records = [r for r in read_records(bundle).records if r.valid and r.reference_samples_ns]
    first = {r.model.model_sha256: (summarize(r.samples_ns).median_ns,
                                    interleaved_ratio(r.samples_ns, r.reference_samples_ns)) for r in records}
    return first, records[0].reference.model_sha256


def _spread(bundles) -> None:
    """Per item (in the order of its median time): max/min over the passes of its absolute median and of its ratio;
    then per pass, max/min of the reference's medians over that pass's records."""
    passes = [_first_pass(b)[0] for b in bundles]
    names = {r.model.model_sha256: r.model.name for b in bundles for r in read_records(b).records}
    items = [sha for sha in set().union(*passes) if sum(sha in p for p in passes) >= 2]
    print("| item | median ms | passes | absolute median: max/min | ratio: max/min |")
    print("| --- | --- | --- | --- | --- |")
    for sha in sorted(items, key=lambda s: np.median([p[s][0] for p in passes if s in p])):
        values = np.array([p[sha] for p in passes if sha in p])
        print("| {} | {:.2f} | {} | {:.3f} | {:.3f} |".format(
            names[sha], np.median(values[:, 0]) / 1e6, len(values),
            *(values[:, k].max() / values[:, k].min() for k in (0, 1))))
    for bundle in bundles:
        print("{}: {}".format(bundle, reference_spread(bundle)))


def reference_spread(bundle: str) -> str:
    """How far the interleaved reference's median moved over one pass's valid records: what the ratio cancels for
    items that move with the reference, and adds to those that do not."""
    medians = [summarize(r.reference_samples_ns).median_ns for r in read_records(bundle).records
               if r.valid and r.reference_samples_ns]
    if not medians:
        return "no valid record with an interleaved reference"
    return "the reference's median {:.3f}-{:.3f} ms over {} records (max/min {:.3f})".format(
        min(medians) / 1e6, max(medians) / 1e6, len(medians), max(medians) / min(medians))


def _agreement(a, b):
    error = np.abs(np.asarray(b) / np.asarray(a) - 1)
    return float(np.mean(error <= 0.10)), float(np.mean(error <= 0.05)), float(np.median(error))


def _model_file(bundle: str, sha: str) -> str:
    """Models given to `profile --models` are kept in the bundle's models/; space subnets and kernels in its .cache/."""
    for folder in (MODELS_DIR, os.path.join(CACHE_DIR, "models"), os.path.join(CACHE_DIR, "kernels")):
        path = os.path.join(bundle, folder, sha + ".onnx")
        if os.path.exists(path):
            return path
    raise SystemExit("error: {} keeps no model {}".format(bundle, sha))


def _measure_again(args, chosen, reference_sha: str):
    """A second pass of the chosen items, as `edge-agent profile --models` with the same reference."""
    with tempfile.TemporaryDirectory() as workdir:
        models = os.path.join(workdir, "models")
        os.makedirs(models)
        for sha in chosen:
            shutil.copy(_model_file(args.bundle, sha), models)
        reference = os.path.join(workdir, "reference.onnx")
        shutil.copy(_model_file(args.bundle, reference_sha), reference)
        out = os.path.join(workdir, "again")
        subprocess.run([sys.executable, "-m", "edge_agent", "profile", "--out", out, "--models", models,
                        "--reference", reference] + args.extra, check=False, capture_output=True)
        return _first_pass(out)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--second", help="a bundle of the same items measured later: compare, measure nothing")
    parser.add_argument("--spread", nargs="+", metavar="BUNDLE",
                        help="more passes of the same items: each item's spread over all of them, measure nothing")
    args, extra = parser.parse_known_args()  # the rest goes to `edge-agent profile` (argparse refuses "-- --flag")
    args.extra = [a for a in extra if a != "--"]
    if args.spread:
        _spread([args.bundle] + args.spread)
        return
    first, reference_sha = _first_pass(args.bundle)
    chosen = sorted(first)[:args.count]
    second = _first_pass(args.second)[0] if args.second else _measure_again(args, chosen, reference_sha)
    both = [sha for sha in chosen if sha in second]
    print("| measurement, second pass vs first ({} items) | within ±10 % | within ±5 % | median error |".format(
        len(both)))
    print("| --- | --- | --- | --- |")
    for label, index in (("absolute median", 0), ("interleaved ratio", 1)):
        within_10, within_5, median = _agreement([first[s][index] for s in both], [second[s][index] for s in both])
        print("| {} | {:.1%} | {:.1%} | {:.2%} |".format(label, within_10, within_5, median))


if __name__ == "__main__":
    main()
