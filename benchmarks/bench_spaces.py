"""Subnet generation and export throughput per space: specs/s (sample), models/s (build), ONNX bytes/s (serialize),
analyze/s. Median of repeats. Usage: python benchmarks/bench_spaces.py [--n 100] [--repeats 5]"""

import argparse
import statistics
import time

from kernels.analysis import analyze
from kernels.spaces import get_space, list_spaces


def _median_rate(call, count: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="subnets per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| space | specs/s (sample) | models/s (build) | models/s (build+serialize) | analyze/s | MB/model |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in list_spaces():
        space = get_space(name)
        specs = space.sample(args.n, seed=0)
        sample_rate = _median_rate(lambda: space.sample(args.n, seed=1), args.n, args.repeats)
        build_rate = _median_rate(lambda: [space.build(s) for s in specs], args.n, args.repeats)
        export_rate = _median_rate(lambda: [space.build(s).SerializeToString() for s in specs], args.n, args.repeats)
        models = [space.build(s) for s in specs]
        analyze_rate = _median_rate(lambda: [analyze(m) for m in models], args.n, args.repeats)
        size_mb = statistics.mean(m.ByteSize() for m in models) / 1e6
        print("| {} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {:.2f} |".format(
            name, sample_rate, build_rate, export_rate, analyze_rate, size_mb))


if __name__ == "__main__":
    main()
