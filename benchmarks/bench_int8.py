"""INT8 ÷ fp32 latency per model on this machine (issue 24, benchmark 1): how much the speed-up of INT8 varies from
model to model, i.e. why a constant factor does not turn fp32 latencies into INT8 ones.

Each model (cifar-supernet subnets and the zoo's CNNs) is quantized as `edge-agent ... --quantize int8` does
(edge_agent.quant: QDQ, per-channel, seed 0) and its INT8 model is benched with its own fp32 model as the
interleaved reference, so the record's drift-free ratio *is* INT8 ÷ fp32. onnxruntime only: the agent makes no
INT8 models for MNN (docs/int8.md).

  python benchmarks/bench_int8.py --out runs/int8-ratio [--subnets 12] [--hw 96] [--threads 1] [--protocol quick]

Prints a markdown table (model, fp32 ms, INT8 ms, INT8 ÷ fp32, ops left in fp32) and the spread: min / median / max,
and the share of models a constant factor (the median ratio) puts within ±10 % of their INT8 latency.

Benchmarks 2 and 3 on this machine (`--predict`): cifar-supernet subnets and the zoo's CNNs (96×96, interleaved with
the cifar-supernet reference) profiled fp32, INT8, fp32, INT8 (two passes of each precision, back to back, one window
of time), each pass's second against its first as the noise ceiling (bench_noise_ceiling.py --second); then the first
passes ingested as two devices, `nodecost` and `additive` fitted per device and scored, per set, on the items they
did not train on (same device, ±10 %), and the fp32 predictor moved to the INT8 device with K = 0 and 10 chosen
shots (`trainer evaluate --shots`).

  python benchmarks/bench_int8.py --predict --out runs/int8-predict [--subnets 40] [--train-size N]
"""

import argparse
import os
import shutil
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np

from edge_agent.bundle.files import atomic_write
from edge_agent.bundle.store import read_records
from edge_agent.stats import interleaved_ratio, summarize


def write_models(out: str, subnets: int, hw: int) -> List[Tuple[str, str]]:
    """(label, fp32 path) of the subnets (seed 0), the space's reference and the zoo's CNNs at hw x hw."""
    from kernels import zoo
    from kernels.spaces import get_space

    space = get_space("cifar-supernet")
    models = [("supernet", space.build(space.reference_spec()))]
    models += [("subnet:" + spec.id[:8], space.build(spec)) for spec in space.sample(subnets, 0)]
    models += [(name, zoo.build(name, hw=hw)) for name in zoo.NAMES]
    folder = os.path.join(out, "fp32")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for label, model in models:
        path = os.path.join(folder, label.replace(":", "_") + ".onnx")
        if not os.path.exists(path):
            atomic_write(path, model.SerializeToString())
        paths.append((label, path))
    return paths


def quantized(fp32_path: str, out: str) -> str:
    from edge_agent.onnx_io import load_model
    from edge_agent.quant.ort_static import default_settings, quantize_file

    path = os.path.join(out, "int8", os.path.basename(fp32_path))
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        quantize_file(fp32_path, path, load_model(fp32_path).input_shapes, default_settings(8, 0))
    return path


def bench(int8_path: str, fp32_path: str, bundle: str, extra: List[str]) -> None:
    """INT8 model timed against its fp32 model, interleaved; a re-run skips what the bundle has."""
    _cli("edge_agent", "bench", int8_path, "--reference", fp32_path, "--out", bundle, *extra)


def fp32_ops(int8_path: str, threads: int) -> List[str]:
    from edge_agent.quant.fallback import ort_account

    return ort_account(int8_path, threads, "all")[2]


def report(rows: List[Dict[str, object]]) -> None:
    print("| model | fp32 ms | INT8 ms | INT8 ÷ fp32 | ops in fp32 |")
    print("| --- | --- | --- | --- | --- |")
    for row in sorted(rows, key=lambda r: r["ratio"]):
        ops = sorted({op.split(":")[0] for op in row["fp32_ops"]})
        print("| {} | {:.3f} | {:.3f} | {:.3f} | {} |".format(row["label"], row["fp32_ms"], row["int8_ms"],
                                                            row["ratio"], "{} ({})".format(
                                                                len(row["fp32_ops"]), ", ".join(ops)) if ops else 0))
    for group, mine in (("subnets", [r for r in rows if r["label"].startswith(("subnet", "supernet"))]),
                        ("zoo", [r for r in rows if not r["label"].startswith(("subnet", "supernet"))]),
                        ("all", rows)):
        if mine:
            ratios = np.array([r["ratio"] for r in mine])
            within = np.mean(np.abs(np.median(ratios) / ratios - 1) <= 0.10)
            print("{}: {} models, INT8 ÷ fp32 min {:.3f} / median {:.3f} / max {:.3f} (max/min {:.2f}); "
                  "the median as a constant factor puts {:.0%} within ±10 %".format(
                      group, len(mine), ratios.min(), np.median(ratios), ratios.max(), ratios.max() / ratios.min(),
                      within))


def _cli(module: str, *args) -> str:
    """A console entry point (`-m module`) or, for a path, a script; its stdout."""
    start = [sys.executable, module] if module.endswith(".py") else [sys.executable, "-m", module]
    done = subprocess.run(start + [str(a) for a in args], capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise SystemExit("{} {}: {}".format(module, args[0], done.stderr.strip()))
    return done.stdout


def predict(args, extra: List[str]) -> None:
    """Benchmarks 2 and 3 (the module's docstring)."""
    from hybrid_measure import write_models as write_zoo

    reference = write_zoo(args.out)  # zoo-models/ at 96x96 and the cifar-supernet reference
    passes = [("fp32", 1, []), ("int8", 1, ["--quantize", "int8"]), ("fp32", 2, []),
              ("int8", 2, ["--quantize", "int8"])]
    for precision, number, flags in passes:
        _cli("edge_agent", "profile", "--space", "cifar-supernet", "--subnets", args.subnets,
             "--out", os.path.join(args.out, "{}-{}".format(precision, number)), *extra, *flags)
        _cli("edge_agent", "profile", "--models", os.path.join(args.out, "zoo-models"), "--reference", reference,
             "--out", os.path.join(args.out, "{}-{}-zoo".format(precision, number)), *extra, *flags)
    for precision in ("fp32", "int8"):
        for suffix in ("", "-zoo"):
            first, second = (os.path.join(args.out, "{}-{}{}".format(precision, n, suffix)) for n in (1, 2))
            print("noise ceiling, {} {}:".format(precision, "zoo" if suffix else "subnets"))
            print(_cli(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_noise_ceiling.py"), first,
                       "--second", second).strip())
    dataset = os.path.join(args.out, "dataset")
    shutil.rmtree(dataset, ignore_errors=True)  # derived from the bundles: a re-run (which resumes them) rebuilds it
    for name in ("pred-nodecost-fp32", "pred-nodecost-int8", "pred-additive-fp32", "pred-additive-int8"):
        shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
    for precision in ("fp32", "int8"):
        for suffix in ("", "-zoo"):
            _cli("trainer", "ingest", os.path.join(args.out, precision + "-1" + suffix), "--dataset", dataset)
    from trainer.dataset import Dataset

    devices = sorted(Dataset(dataset).devices(), key=lambda d: d.endswith("-int8"))
    print("| predictor | device | shots | set | n | ±10 % | ±5 % | ρ |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind in ("nodecost", "additive"):
        for device in devices:
            _score(args, dataset, kind, device, device, 0)
        for shots in (0, 10):
            _score(args, dataset, kind, devices[0], devices[1], shots)


def _score(args, dataset: str, kind: str, source: str, target: str, shots: int) -> None:
    """Fit on the source device's training split, evaluate on the target (its unseen items; a new device: K shots)."""
    predictor = os.path.join(args.out, "pred-{}-{}".format(kind, "int8" if source.endswith("-int8") else "fp32"))
    if not os.path.exists(predictor):
        size = ["--train-size", args.train_size] if args.train_size else []  # default: 80 % of the valid items
        _cli("trainer", "fit", "--dataset", dataset, "--device", source, "--kind", kind, "--out", predictor, *size)
    import csv

    import numpy as np

    from trainer.metrics import score

    flags = ["--shots", shots] if source != target else []
    rows_file = predictor + "-{}-{}.csv".format(target, shots)
    _cli("trainer", "evaluate", "--predictor", predictor, "--dataset", dataset, "--device", target,
         "--predictions-out", rows_file, *flags)
    with open(rows_file, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # a space's subnet is named by its 16-hex spec id, a model file by its sha256
    for name, mine in (("subnets", [r for r in rows if len(r["id"]) != 64]),
                       ("zoo", [r for r in rows if len(r["id"]) == 64])):
        if len(mine) < 2:
            continue
        metrics = score(np.asarray([float(r["measured_ms"]) for r in mine]),
                        np.asarray([float(r["predicted_ms"]) for r in mine]))
        print("| {} | {} | {} | {} | {} | {:.1%} | {:.1%} | {:.3f} |".format(
            kind, "fp32 → INT8" if source != target else ("INT8" if target.endswith("-int8") else "fp32"),
            shots if source != target else "-", name, metrics["n"], metrics["within_10"], metrics["within_5"],
            metrics["spearman"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--subnets", type=int, default=None, help="default: 12 (ratios), 40 (--predict)")
    parser.add_argument("--hw", type=int, default=96, help="the zoo's input size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--protocol", default="quick")
    parser.add_argument("--predict", action="store_true", help="benchmarks 2 and 3 instead (see above)")
    parser.add_argument("--train-size", type=int, default=None)
    args = parser.parse_args()
    if args.predict:
        args.subnets = args.subnets or 40
        predict(args, ["--threads", str(args.threads), "--protocol", args.protocol])
        return
    args.subnets = args.subnets or 12
    bundle = os.path.join(args.out, "bundle")
    extra = ["--threads", str(args.threads), "--protocol", args.protocol]
    pairs = [(label, path, quantized(path, args.out)) for label, path in write_models(args.out, args.subnets, args.hw)]
    for label, fp32_path, int8_path in pairs:
        bench(int8_path, fp32_path, bundle, extra)
    records = {r.model.name: r for r in read_records(bundle).records if r.valid and r.reference_samples_ns}
    rows = []
    for label, fp32_path, int8_path in pairs:
        record = records.get(os.path.basename(int8_path))
        if record is not None:
            rows.append({"label": label, "fp32_ms": summarize(record.reference_samples_ns).median_ms,
                         "int8_ms": summarize(record.samples_ns).median_ms,
                         "ratio": interleaved_ratio(record.samples_ns, record.reference_samples_ns),
                         "fp32_ops": fp32_ops(int8_path, args.threads)})
    print("{} of {} models measured validly (onnxruntime, {} thread(s), --protocol {})".format(
        len(rows), len(pairs), args.threads, args.protocol))
    report(rows)


if __name__ == "__main__":
    main()
