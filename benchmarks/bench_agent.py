"""Edge-agent benchmarks (issue 2): overhead, repeatability, footprint. Figures go in docs/benchmarks-agent.md.

  python benchmarks/bench_agent.py overhead      [--rounds 7]
  python benchmarks/bench_agent.py repeatability [--benches 10] [--protocol default]
  python benchmarks/bench_agent.py footprint

The machine is shared and drifts: every comparison is made side by side in one run and reported as medians/ratios.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from edge_agent.bundle.schema import RunSettings
from edge_agent.measure.job import Job, ModelToRun
from edge_agent.measure.presets import PRESETS
from edge_agent.measure.worker import Worker
from edge_agent.stats import interleaved_ratio, summarize


def _space_models(workdir: str):
    """The cifar-supernet reference and one mid-size subnet, as ONNX files."""
    import onnx

    from kernels.spaces import get_space

    space = get_space("cifar-supernet")
    paths = []
    for name, spec in (("reference", space.reference_spec()), ("subnet", space.sample(5, seed=3)[2])):
        path = os.path.join(workdir, name + ".onnx")
        onnx.save(space.build(spec), path)
        paths.append(path)
    return paths


def _settings(runtime: str) -> RunSettings:
    from edge_agent.runtimes import get_runtime

    return RunSettings(runtime=runtime, runtime_version=get_runtime(runtime).version(), threads=1,
                       ort_graph_optimization_level="all" if runtime == "ort" else None,
                       mnn_precision="high" if runtime == "mnn" else None)


def _job(path: str, protocol, reference=None, runtime="ort") -> Job:
    shapes = {"input": [1, 3, 32, 32]}
    return Job(model=ModelToRun(onnx_path=path, input_shapes=shapes),
               reference=ModelToRun(onnx_path=reference, input_shapes=shapes) if reference else None,
               settings=_settings(runtime), protocol=protocol)


def _bare_median_ns(path: str, runs: int) -> float:
    """The simplest honest loop over the same onnxruntime session settings, no agent involved."""
    from edge_agent.runtimes.ort import open_session

    session = open_session(path, {"input": [1, 3, 32, 32]}, threads=1, opt_level="all")
    for _ in range(runs):
        session.run()
    samples = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples)


def overhead(args) -> None:
    protocol = PRESETS["default"]
    with tempfile.TemporaryDirectory() as workdir, Worker() as worker:
        _, subnet = _space_models(workdir)
        ratios = []
        for round_index in range(args.rounds):
            result = worker.run(_job(subnet, protocol), timeout_s=600)
            agent = summarize(result.samples_ns)
            bare = _bare_median_ns(subnet, agent.runs)
            ratios.append(agent.median_ns / bare)
            print("round {}: agent {:.4f} ms, bare loop {:.4f} ms, ratio {:.4f}".format(
                round_index + 1, agent.median_ns / 1e6, bare / 1e6, ratios[-1]))
    print("agent / bare-loop median ratio: median {:.4f} over {} rounds (target <= 1.02)".format(
        statistics.median(ratios), len(ratios)))


def repeatability(args) -> None:
    protocol = PRESETS[args.protocol]
    with tempfile.TemporaryDirectory() as workdir, Worker() as worker:
        reference, subnet = _space_models(workdir)
        medians, ratios = [], []
        for index in range(args.benches):
            result = worker.run(_job(subnet, protocol, reference, args.runtime), timeout_s=600)
            medians.append(summarize(result.samples_ns).median_ns / 1e6)
            ratios.append(interleaved_ratio(result.samples_ns, result.reference_samples_ns))
            print("bench {:2d}: median {:.4f} ms  ratio {:.4f}".format(index + 1, medians[-1], ratios[-1]))
    for name, values in (("absolute median", medians), ("interleaved ratio", ratios)):
        print("{}: CV {:.2%} over {} benches (min {:.4f}, max {:.4f})".format(
            name, statistics.stdev(values) / statistics.mean(values), len(values), min(values), max(values)))


def footprint(args) -> None:
    import psutil

    with tempfile.TemporaryDirectory() as workdir:
        _, subnet = _space_models(workdir)
        command = [sys.executable, "-m", "edge_agent", "bench", subnet, "--out", os.path.join(workdir, "bundle"),
                   "--runtime", args.runtime]
        peak_total, peak_child = _peak_tree_rss(
            psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    print("peak RSS of `edge-agent bench` ({}): measuring child {:.0f} MB, agent + child {:.0f} MB "
          "(target <= 150 MB)".format(args.runtime, peak_child / 2 ** 20, peak_total / 2 ** 20))
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import edge_agent, edge_agent.cli"], check=True)
        bare_start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append((bare_start - start) - (time.perf_counter() - bare_start))
    print("`import edge_agent` (+ the CLI module) beyond a bare interpreter: median {:.3f} s (target <= 0.5 s)".format(
        statistics.median(times)))


def _peak_tree_rss(process):
    """(peak of the whole process tree, peak of the largest child) in bytes, polled every 20 ms."""
    import psutil

    peak_total = peak_child = 0
    while process.poll() is None:
        try:
            children = [p.memory_info().rss for p in process.children(recursive=True)]
            peak_total = max(peak_total, process.memory_info().rss + sum(children))
            peak_child = max([peak_child] + children)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    return peak_total, peak_child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["overhead", "repeatability", "footprint"])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--benches", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--protocol", default="default", choices=sorted(PRESETS))
    parser.add_argument("--runtime", default="ort", choices=["ort", "mnn"])
    args = parser.parse_args()
    {"overhead": overhead, "repeatability": repeatability, "footprint": footprint}[args.what](args)


if __name__ == "__main__":
    main()
