"""Benchmark 4 (issue 4): prediction and training speed on this machine's CPU cores.

    .venv/bin/python benchmarks/bench_trainer_speed.py [--work DIR] [--hidden 600 --hidden 128 ...]

1. archs predicted per second, batched, from cached graph encodings (NB201, 15,284 archs), per predictor config, for
   the ONNX-level encoding and the cell-level one (trainer.cell_encoding; the cell encoding's own cost included); for
   the GCN both its prediction path (matrix products: trainer.predictors.gcn) and the torch-geometric message passing
   it trains with, in the same run — and, separately, the cost of encoding an arch from ONNX (build + shape
   inference + analysis), which a first prediction of an unseen model pays once;
2. one ONNX file predicted end to end in-process (read, hash, shape inference, encode, predict; predictor loaded);
   plus `trainer predict` as a fresh process (dominated by importing torch / torch_geometric);
3. `fit` wall time for 900 samples (810 train + 90 validation) from cached encodings.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_trainer_nb201 import DEFAULT_WORK, prepare


def _encodings(dataset, device):
    from trainer.encoding_cache import EncodingCache
    from trainer.examples import encode_examples, load_examples

    examples = load_examples(dataset, [device])
    return examples, encode_examples(examples, dataset, EncodingCache(dataset.encodings_dir))


def message_passing(predictor, encodings):
    """The GCN's training forward (torch-geometric message passing) over prediction-sized batches: the path
    prediction took before the matrix products."""
    import torch

    size = int(predictor.hyper["predict_batch_size"])
    with torch.no_grad():
        for i in range(0, len(encodings), size):
            predictor._forward(encodings[i:i + size])


def _timed(run, encodings) -> float:
    """Seconds for run(encodings) after a warm-up on 64 of them."""
    run(encodings[:64])
    start = time.perf_counter()
    run(encodings)
    return time.perf_counter() - start


def gcn_paths(hidden, vocabulary=None):
    """{path name: predict function} of one fresh GCN of 4 x hidden."""
    from trainer.predictors import predictor_class

    predictor = predictor_class("gcn")({"hidden": hidden}, **({"vocabulary": vocabulary} if vocabulary else {}))
    return {"predict": predictor.predict, "message_passing": lambda e: message_passing(predictor, e)}


def batched_throughput(encodings, kind, hyper, limit):
    from trainer.predictors import predictor_class

    batch = encodings[:limit]
    return len(batch) / _timed(predictor_class(kind)(hyper).predict, batch)


def cell_throughput(examples, hidden):
    """({path: (archs/s with the encoding from the spec, archs/s predicting alone)}, encoding seconds) for the
    cell-level GCN over every arch."""
    import json

    from trainer.cell_encoding import cell_vocabulary
    from trainer.encoding_cache import EncodingCache

    vocabulary = cell_vocabulary("nb201")
    specs = [json.loads(e.spec_json) for e in examples]
    start = time.perf_counter()
    cache = EncodingCache(None, vocabulary)
    encodings = [cache.for_spec(s) for s in specs]
    encode_s = time.perf_counter() - start
    rates = {}
    for path, run in gcn_paths(hidden, vocabulary).items():
        seconds = _timed(run, encodings)
        rates[path] = (len(specs) / (encode_s + seconds), len(specs) / seconds)
    return rates, encode_s


def encode_cost(n=40):
    from kernels.spaces import get_space
    from trainer.encoding import encode_model

    space = get_space("nb201")
    start = time.perf_counter()
    for spec in space.sample(n, seed=11):
        encode_model(space.build(spec))
    return (time.perf_counter() - start) / n


def end_to_end(pred_dir, work):
    import onnx

    from kernels.spaces import get_space
    from trainer.encoding_cache import EncodingCache
    from trainer.predicting import predict, resolve_reference_ms
    from trainer.predictors.store import load_predictor

    space = get_space("nb201")
    files = []
    for i, spec in enumerate(space.sample(10, seed=12)):
        files.append(work / "e2e-{}.onnx".format(i))
        onnx.save(space.build(spec), str(files[-1]))
    predictor, config = load_predictor(pred_dir)
    reference = resolve_reference_ms(predictor, config, None)
    times = []
    for path in files:
        start = time.perf_counter()
        predict(predictor, [EncodingCache(None).for_file(path)], reference)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "trainer"), "predict", "--predictor", str(pred_dir),
                    str(files[0])], check=True, capture_output=True)
    return statistics.median(times) * 1000, max(times) * 1000, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="pixel3")
    parser.add_argument("--hidden", type=int, action="append", default=None)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    args = parser.parse_args()

    import torch

    from trainer.fitting import fit

    dataset = prepare(args.work, [args.device])
    examples, encodings = _encodings(dataset, args.device)
    report = {"torch_threads": torch.get_num_threads(), "archs": len(encodings)}
    for hidden in args.hidden or [600, 128, 64]:
        limit = 2048 if hidden >= 600 else len(encodings)
        for path, run in gcn_paths(hidden).items():
            rate = limit / _timed(run, encodings[:limit])
            report["gcn_{}_{}_archs_per_s".format(hidden, path)] = round(rate)
            print("gcn 4x{} ({}): {:,.0f} archs/s batched (cached encodings, {} archs)".format(
                hidden, path.replace("_", " "), rate, limit), flush=True)
    for hidden in args.hidden or [600, 128]:
        rates, encode_s = cell_throughput(examples, hidden)
        for path, (rate, predict_rate) in rates.items():
            report["gcn_{}_cell_{}_archs_per_s".format(hidden, path)] = round(rate)
            print("gcn 4x{} cell-level ({}): {:,.0f} archs/s batched, cell encoding included ({} archs; encoding "
                  "{:.2f} s; predicting alone {:,.0f} archs/s)".format(hidden, path.replace("_", " "), rate,
                                                                    len(examples), encode_s, predict_rate), flush=True)
    for kind in ("mlp", "flops"):
        rate = batched_throughput(encodings, kind, None, len(encodings))
        report["{}_archs_per_s".format(kind)] = round(rate)
        print("{}: {:,.0f} archs/s batched".format(kind, rate), flush=True)
    cost = encode_cost()
    report["encode_from_onnx_ms"] = round(cost * 1000, 1)
    print("encoding one NB201 arch from ONNX (build + analyze): {:.1f} ms".format(cost * 1000), flush=True)
    for hidden in (128,):
        out = args.work / "pred-speed-{}".format(hidden)
        start = time.perf_counter()
        result = fit(dataset, [args.device], "gcn", 900, 0, {"hidden": hidden}, out)
        wall = time.perf_counter() - start
        report["fit_900_gcn_{}_s".format(hidden)] = round(wall, 1)
        print("fit gcn 4x{} on 900 samples: {:.0f} s ({} epochs)".format(hidden, wall, result.history.epochs),
              flush=True)
        median_ms, worst_ms, cli_s = end_to_end(out, args.work)
        report.update({"onnx_predict_in_process_ms": round(median_ms, 1), "onnx_predict_cli_s": round(cli_s, 2)})
        print("one ONNX predict end to end, in process: median {:.1f} ms (worst {:.1f}); `trainer predict` process: "
              "{:.2f} s".format(median_ms, worst_ms, cli_s), flush=True)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
