"""Kernel-LUT benchmark: (1) adaptive vs random kernel sampling at equal budget on synthetic costs with the structure
real kernels have; (2) for one runtime, LUT predictions vs whole-model measurements from `edge-agent profile` on
cifar-supernet subnets and on the kernels.zoo architectures (no kernel sample drawn from them, never calibrated on),
next to a FLOPs-linear baseline, scored in absolute ms and as the ratio to the interleaved reference. The kernel-sum
-> whole-model calibration (lut.calibration) is fitted on half the subnets plus random calib-cnn models that span
weight sizes, and, for comparison, on the subnets alone; (3) the zoo networks' kernels measured alone against the LUT:
its kernel-level error on networks it never saw. Prints markdown tables; the figures are in docs/benchmarks-lut.md.

  .venv/bin/python benchmarks/bench_lut.py synthetic
  .venv/bin/python benchmarks/bench_lut.py device --runtime ort --work /tmp/lut-ort [--kernel-samples 40 --subnets 40]
  .venv/bin/python benchmarks/bench_lut.py device --work /tmp/lut-ort --score-only --kernel-fraction 0.5 [--seed 1]
  .venv/bin/python benchmarks/bench_lut.py device --work /tmp/lut-ort --score-only --per-model
  .venv/bin/python benchmarks/bench_lut.py device --work /tmp/lut-ort --score-only --regressor board
  .venv/bin/python benchmarks/bench_lut.py regressor --work /tmp/lut-ort   (held-out error of the kernel regressor)
  .venv/bin/python benchmarks/bench_lut.py zoo-kernels --runtime ort --work /tmp/lut-ort   (the zoo's kernels alone)
"""

import argparse
import hashlib
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUICK = ["--protocol", "quick"]


def _fast_path(c):
    return c["hw"] <= 14 and c["cin"] >= 256


def _weight_cache(c):
    return c["cin"] * c.get("cout", 1) * c["kernel"] ** 2 * 4 > 2 ** 21


def _cost(region):
    from edge_agent.kernelprof.space import cost

    def measure(kernel_type, configs):
        return [(5e3 + cost(kernel_type, c)[0] / 20 + cost(kernel_type, c)[1] / 4) * (2.5 if region(c) else 1.0)
                for c in configs]
    return measure


def _held_out(state, test, measure):
    error = np.abs(state.predict(test) / np.asarray(measure("conv", test)) - 1)
    return float(error.mean()), float((error <= 0.1).mean())


def synthetic(seeds: int = 5) -> None:
    from edge_agent.kernelprof.sampler import initial_configs, run_sampling

    test = initial_configs("conv", 300, 999)
    print("| cost function | budget | adaptive mean err | random mean err | adaptive ±10% | random ±10% |")
    print("|---|---|---|---|---|---|")
    for label, region in (("x2.5 fast path lost (hw<=14, cin>=256)", _fast_path),
                          ("x2.5 weights > 2 MiB (diagonal cliff)", _weight_cache)):
        measure = _cost(region)
        for budget in (50, 80, 120):
            row = {}
            for adaptive in (True, False):
                runs = [_held_out(run_sampling("conv", measure, budget=budget, initial=30, batch=10, seed=s,
                                               adaptive=adaptive, target_accuracy=1.01, use_sklearn=False), test,
                                  measure) for s in range(seeds)]
                row[adaptive] = np.mean(runs, axis=0)
            print("| {} | {} | {:.3f} | {:.3f} | {:.1%} | {:.1%} |".format(
                label, budget, row[True][0], row[False][0], row[True][1], row[False][1]))


def _cli(*args) -> float:
    """Minutes the command took. Invalid records (high CV on a busy machine) do not stop the benchmark: the LUT and
    the scores use the valid ones, and the counts are in the bundles."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "edge_agent"] + list(args), stdout=subprocess.DEVNULL)
    if done.returncode not in (0, 3):  # 3: EXIT_INVALID
        raise SystemExit("edge-agent {} failed (exit {})".format(args[0], done.returncode))
    return (time.monotonic() - started) / 60


NEEDED_FREE_BYTES = 4 * 2 ** 30  # a 160-per-type onnxruntime run wrote 3.2 GB (kernel, calib-cnn and zoo models)


def _check_free_space(work: str) -> None:
    """A run that fills the disk dies at its last step, the zoo, after most of an hour of profiling."""
    import shutil

    os.makedirs(work, exist_ok=True)
    free = shutil.disk_usage(work).free
    if free < NEEDED_FREE_BYTES:
        raise SystemExit("bench_lut: {:.1f} GB free under {}, a run writes up to {:.0f} GB; free some space first".format(
            free / 1e9, work, NEEDED_FREE_BYTES / 1e9))


def _onnx_by_sha(*dirs):
    """Every .onnx below the folders, hidden ones included (space subnets live in a bundle's .cache/)."""
    found = {}
    for d in dirs:
        for parent, _, files in os.walk(d):
            for path in (os.path.join(parent, f) for f in files if f.endswith(".onnx")):
                with open(path, "rb") as handle:
                    found[hashlib.sha256(handle.read()).hexdigest()] = path
    return found


def _measured(bundle, models_dir):
    """[(onnx model, measured ns, measured ratio to the reference, reference onnx)] of the bundle's valid records."""
    import onnx

    from edge_agent.bundle.store import read_records
    from edge_agent.stats import interleaved_ratio, summarize

    paths = _onnx_by_sha(bundle, models_dir)
    rows = []
    for r in read_records(bundle).records:
        if r.valid and r.item_kind in ("model", "subnet") and r.reference_samples_ns and r.model.model_sha256 in paths:
            rows.append((onnx.load(paths[r.model.model_sha256]), summarize(r.samples_ns).median_ns,
                         interleaved_ratio(r.samples_ns, r.reference_samples_ns),
                         onnx.load(paths[r.reference.model_sha256]), r.model.name))
    return rows


def _share(predicted, measured):
    return float(np.mean(np.abs(np.asarray(predicted) / np.asarray(measured) - 1) <= 0.1))


def _device_options(args):
    options = ["--runtime", args.runtime, "--opt-level", args.opt_level]
    if args.mnn_winograd_level is not None:
        options += ["--mnn-winograd-level", str(args.mnn_winograd_level)]
    return options


def _write_zoo(zdir: str, hw: int) -> None:
    """Atomically: two scorings run at once on one work directory once disagreed, most likely because one read a zoo
    file while the other rewrote it (no error raised; docs/benchmarks-lut.md)."""
    from edge_agent.bundle.files import atomic_write
    from kernels import zoo

    os.makedirs(zdir, exist_ok=True)
    for name in zoo.NAMES:
        atomic_write(os.path.join(zdir, name + ".onnx"), zoo.build(name, hw=hw).SerializeToString(), overwrite=True)


def _fit_kind(args):
    """The LUT's regressor fitter: its own trees (lut.forest), or with --regressor board the board's forest."""
    from edge_agent.kernelprof import regressor
    from lut import forest

    return regressor.fit if args.regressor == "board" else forest.fit


def device(args) -> None:
    from edge_agent.bundle.files import atomic_write
    from kernels import zoo
    from lut.build import lut_from_bundles

    if not args.score_only:
        _check_free_space(args.work)
    device_options = _device_options(args)
    common = device_options + QUICK
    kb, sb, cb, zb, zdir = (os.path.join(args.work, n) for n in ("kernels", "supernet", "calib", "zoo", "zoo-models"))
    _write_zoo(zdir, args.hw)
    ref = os.path.join(args.work, "reference.onnx")
    atomic_write(ref, zoo.build("mobilenet_v2", hw=args.hw, seed=1).SerializeToString(), overwrite=True)
    minutes = {}
    if not args.score_only:
        space = ["--kernel-space", args.kernel_space] if args.kernel_space else []
        # the rules apart (--no-fusion-rules), so that each step's minutes are its own
        minutes["kernels"] = _cli("profile", "--kernels", "--no-fusion-rules", "--kernel-samples",
                                  str(args.kernel_samples), "--out", kb, *(common + space))
        minutes["fusion"] = _cli("detect-fusion", "--out", kb, *common)
        minutes["supernet"] = _cli("profile", "--subnets", str(args.subnets), "--out", sb, *common)
        minutes["calib"] = _cli("profile", "--space", "calib-cnn", "--subnets", str(args.calibration_models),
                                "--out", cb, *common)
        minutes["zoo"] = _cli("profile", "--models", zdir, "--reference", ref, "--out", zb, *device_options,
                              "--protocol", args.zoo_protocol)
    table = lut_from_bundles([kb], fit_kind=_fit_kind(args)) if args.kernel_fraction >= 1 else _thinned_lut(kb, args)
    if args.without_layout:
        table.layout = None  # the kernel sum as measured alone, to see what the layout model changes
    subnets = _measured(sb, sb)
    sets = {"cifar-supernet": subnets[1::2],
            "zoo ({} archs, {}x{})".format(len(zoo.NAMES), args.hw, args.hw): _measured(zb, zdir)}
    # the calibration and the FLOPs baseline see the other half of the subnets and the calib-cnn models only
    calib = _measured(cb, cb)
    for label, train in (("subnets + calib-cnn", subnets[::2] + calib), ("subnets only", subnets[::2])):
        print("\ncalibrated on {} ({} models)".format(label, len(train)))
        _score(table, train, sets, args.per_model)
        print(table.calibration)
    _calib_left_out(table, subnets[::2], calib)
    from bench_noise_ceiling import reference_spread
    print("\nzoo pass: {}".format(reference_spread(zb)))
    print("LUT: {} exact entries, kinds with a regressor: {}".format(len(table.exact), ", ".join(sorted(table.kinds))))
    print("profiling minutes: " + ", ".join("{} {:.1f}".format(k, v) for k, v in minutes.items()))


def _inputs_and_layers(kb: str, kernel_space: str):
    """What the LUT is fitted from (lut.build.lut_inputs), and per sample whether it is one of the --kernel-space
    layers the profile measured first (seed 0, as the benchmark profiles)."""
    import json

    from edge_agent.kernelprof.command import space_layers
    from lut.build import lut_inputs

    inputs = lut_inputs([kb])
    layers = {(t, json.dumps(c, sort_keys=True)) for t, cs in space_layers(kernel_space, 0).items() for c in cs}
    seeded = np.array([(s.kernel_type, json.dumps(s.config, sort_keys=True)) in layers for s in inputs.samples])
    return inputs, seeded


def _thinned_lut(kb: str, args):
    """The LUT from the --kernel-space layers and a random --kernel-fraction of the other kernels: what fewer
    kernels cost the scores, measured on one run's bundles (no drift between runs in it)."""
    inputs, seeded = _inputs_and_layers(kb, args.kernel_space)
    keep = seeded | (np.random.RandomState(args.seed).rand(len(inputs.samples)) < args.kernel_fraction)
    print("kernels: the {} space layers and {} of the other {}".format(
        int(seeded.sum()), int((keep & ~seeded).sum()), int((~seeded).sum())))
    return inputs.fit([s for s, k in zip(inputs.samples, keep) if k], fit_kind=_fit_kind(args))


def regressor_error(args) -> None:
    """Per kernel kind, 5-fold held-out error of the LUT's regressor (lut.forest) on the kernels that are not
    --kernel-space layers (the configs a network outside the space brings), trained on the rest, and with a quarter,
    a half and three quarters of the training kernels (does measuring more kernels still pay?); next to the board's
    forest (edge_agent.kernelprof.regressor.fit) on the same folds."""
    from edge_agent.kernelprof import regressor
    from lut import forest
    from lut.table import kernel_design

    inputs, seeded = _inputs_and_layers(os.path.join(args.work, "kernels"), args.kernel_space)
    print("| kind | kernels (not space layers) | training share | LUT's trees: within ±10 % | median error "
          "| board's forest: within ±10 % | median error |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.kinds.split(","):
        kernels, y, layers = _pooled(inputs, seeded, kind)
        configs = [k.config for k in kernels]
        _, x, flops, nbytes = kernel_design(kernels)
        rng = np.random.RandomState(args.seed)
        folds = np.array_split(rng.permutation(np.where(~layers)[0]), 5)
        for share in (0.25, 0.5, 0.75, 1.0):
            errors = {forest.fit: [], regressor.fit: []}
            for fold in folds:
                train = rng.permutation(np.setdiff1d(np.arange(len(y)), fold))[:int(share * (len(y) - len(fold)))]
                for fit, found in errors.items():
                    model = fit(x[train], y[train], flops[train], nbytes[train],
                                calls=regressor.group_calls([configs[i] for i in train]))
                    predicted = regressor.predict(model, x[fold], flops[fold], nbytes[fold],
                                                  regressor.group_calls([configs[i] for i in fold]))
                    found += list(np.abs(predicted / y[fold] - 1))
            print("| {} | {} | {:.0%} | {} |".format(kind, sum(len(f) for f in folds), share, " | ".join(
                "{:.1%} | {:.1%}".format(np.mean(np.array(e) <= 0.1), np.median(e)) for e in errors.values())))


def _pooled(inputs, seeded, kind: str):
    """(kernels, median ns, whether a space layer) of one kind: a config measured more than once is one point, as in
    the LUT, and never on both sides of a fold."""
    from lut.table import standalone_kernels

    pooled = {}
    for sample, layer in ((s, l) for s, l in zip(inputs.samples, seeded) if s.kernel_type == kind):
        for kernel, ns in zip(*standalone_kernels([sample], inputs.rules.absorbed(), inputs.overhead_ns)):
            entry = pooled.setdefault(kernel.key(), [kernel, [], False])
            entry[1].append(ns)
            entry[2] = entry[2] or layer
    return ([k for k, _, _ in pooled.values()], np.array([np.median(ns) for _, ns, _ in pooled.values()]),
            np.array([layer for _, _, layer in pooled.values()], dtype=bool))


def zoo_kernels(args) -> None:
    """The zoo networks' kernels measured alone (`profile --kernels --kernel-samples 0 --kernel-models`, into a bundle
    of their own that no LUT is built from) against --work's kernel LUT, fitted with its trees and with the board's
    forest: the kernel side of the zoo's error, apart from what a whole model adds. Both in the LUT bundle's ns (each
    kernel's ratio to the reference kernel times that bundle's reference median), the call overhead taken off."""
    from edge_agent.kernelprof import regressor
    from lut import forest
    from lut.build import lut_inputs

    kb, zk, zdir = (os.path.join(args.work, n) for n in ("kernels", "zoo-kernels", "zoo-models"))
    _write_zoo(zdir, args.hw)
    if not args.score_only:
        minutes = _cli("profile", "--kernels", "--no-fusion-rules", "--kernel-samples", "0", "--kernel-models", zdir,
                       "--out", zk, *(_device_options(args) + QUICK))
        print("profiling minutes: {:.1f}".format(minutes))
    inputs = lut_inputs([kb])
    tables = {name: inputs.fit(fit_kind=fit) for name, fit in (("LUT's trees", forest.fit),
                                                               ("board's forest", regressor.fit))}
    rows = _alone_and_predicted(zk, inputs.reference_ns, tables)
    print("| kind | kernels | " + " | ".join("{0}: within ±10 % | {0}: median error".format(n) for n in tables) + " |")
    print("|---|---|" + "---|---|" * len(tables))
    for kind in sorted({kind for kind, *_ in rows.values()}) + ["all"]:
        chosen = np.array([values for k, *values in rows.values() if kind in ("all", k)])
        errors = [np.abs(chosen[:, 1 + i] / chosen[:, 0] - 1) for i in range(len(tables))]
        print("| {} | {} | {} |".format(kind, len(chosen), " | ".join(
            "{:.1%} | {:.1%}".format(np.mean(e <= 0.1), np.median(e)) for e in errors)))
    _network_sums(rows, args.hw, list(tables))


def _alone_and_predicted(zoo_kernels_bundle: str, reference_ns: float, tables):
    """{(kernel type, config json): (kind, alone ns, each table's ns)} for the kernels that are one kernel under the
    LUT's fusion rules; alone in the LUT bundle's ns (`reference_ns`, its reference kernel's median)."""
    import json

    from edge_agent.bundle.store import read_records
    from lut.build import kernel_samples
    from lut.table import standalone_kernels

    first = next(iter(tables.values()))
    rows = {}
    for sample in kernel_samples(read_records(zoo_kernels_bundle).records, reference_ns)[0]:
        kernels, alone = standalone_kernels([sample], first.absorbed, first.call_overhead_ns)
        if kernels:
            rows[sample.kernel_type, json.dumps(sample.config, sort_keys=True)] = (
                kernels[0].kind, alone[0], *(t.predict_kernel(kernels[0]).latency_ns for t in tables.values()))
    return rows


def _network_sums(rows, hw: int, names) -> None:
    import json

    from edge_agent.kernelprof.space_prior import model_kernel_configs
    from kernels import zoo

    print("\n| network | kernels (of them not one kernel alone) | alone (µs) | " +
          " | ".join("{0} (µs) | alone ÷ {0}".format(n) for n in names) + " |")
    print("|---|---|---|" + "---|---|" * len(names))
    for name in zoo.NAMES:
        found = [rows.get((t, json.dumps(c, sort_keys=True))) for t, c in model_kernel_configs(zoo.build(name, hw=hw))]
        sums = np.sum([values for _, *values in filter(None, found)], axis=0)
        print("| {} | {} ({}) | {:,.0f} | {} |".format(name, len(found), found.count(None), sums[0] / 1e3, " | ".join(
            "{:,.0f} | {:.3f}".format(v / 1e3, sums[0] / v) for v in sums[1:])))


def _calib_left_out(table, subnets, calib) -> None:
    """The calib-cnn models are unseen networks too (random generic CNNs, no kernel sample drawn from them): each
    predicted by the calibration fitted on the subnets and the other calib-cnn models, in ms and as ratios."""
    from lut.calibration import fit_calibration

    train = subnets + calib
    sums = [table.model_sum(m)[0] for m, *_ in train]
    measured = np.array([ns for _, ns, *_ in train])
    predicted, ratios = [], []
    for left_out in range(len(subnets), len(train)):
        keep = [i for i in range(len(train)) if i != left_out]
        fitted = fit_calibration([sums[i] for i in keep], measured[keep], table.call_overhead_ns)
        predicted.append(fitted.apply(sums[left_out]))
        ratios.append(predicted[-1] / fitted.apply(table.model_sum(train[left_out][3])[0]))
    rows = train[len(subnets):]
    print("\n| calib-cnn, each left out of the calibration | {} | LUT ±10% (ms) {:.1%} | LUT ±10% (ratio) {:.1%} |".format(
        len(rows), _share(predicted, [ns for _, ns, *_ in rows]), _share(ratios, [q for _, _, q, *_ in rows])))


def _score(table, train, sets, per_model: bool = False) -> None:
    from kernels.analysis import model_flops

    table.fit_overhead([m for m, *_ in train], [ns for _, ns, *_ in train])
    flops = np.array([model_flops(m) for m, *_ in train], dtype=np.float64)
    slope, intercept = np.polyfit(flops, [ns for _, ns, *_ in train], 1)
    print("| set | models | LUT ±10% (ms) | FLOPs-linear ±10% (ms) | LUT ±10% (ratio to ref) | FLOPs ±10% (ratio) |")
    print("|---|---|---|---|---|---|")
    for label, rows in sets.items():
        sums = [table.model_sum(m)[0] for m, *_ in rows]  # partitioned once: the prediction and the weights
        lut = np.array([table.calibration.apply(total) for total in sums])
        lin = np.array([intercept + slope * model_flops(m) for m, *_ in rows])
        ref_lut = np.array([table.predict_model(r)[0] for *_, r, _ in rows])
        ref_lin = np.array([intercept + slope * model_flops(r) for *_, r, _ in rows])
        measured, ratio = np.array([ns for _, ns, *_ in rows]), np.array([q for _, _, q, *_ in rows])
        print("| {} | {} | {:.1%} | {:.1%} | {:.1%} | {:.1%} |".format(
            label, len(rows), _share(lut, measured), _share(lin, measured), _share(lut / ref_lut, ratio),
            _share(lin / ref_lin, ratio)))
        if per_model:  # with the weights, since the calibration's weight term decides the large models' side
            for row, total, *errors in sorted(zip(rows, sums, measured / lut, ratio / (lut / ref_lut)),
                                              key=lambda t: t[0][-1]):
                print("    {:32s} measured/predicted: ms {:.3f}, ratio {:.3f}; {:.1f} MB of weights".format(
                    row[-1], *errors, total.weight_bytes / 1e6))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("synthetic", "device", "regressor", "zoo-kernels"))
    parser.add_argument("--runtime", choices=("ort", "mnn"), default="ort")
    parser.add_argument("--work", default="/tmp/bench-lut")
    parser.add_argument("--kernel-samples", type=int, default=60)
    parser.add_argument("--subnets", type=int, default=40)
    # 24 left the weight term's cache threshold to a handful of models; with 84 the choice settled
    # (docs/benchmarks-lut.md, the weight term)
    parser.add_argument("--calibration-models", type=int, default=64, help="calib-cnn models measured whole")
    parser.add_argument("--hw", type=int, default=96)
    parser.add_argument("--kernel-space", default="cifar-supernet",
                        help="the space whose layers the kernel profile measures first ('' for none)")
    parser.add_argument("--opt-level", choices=("disable", "basic", "extended", "all"), default="all",
                        help="onnxruntime graph optimization level of every measurement ('extended': no NCHWc layout)")
    parser.add_argument("--mnn-winograd-level", type=int, choices=range(4), default=None,
                        help="MNN's WINOGRAD_MEMORY_LEVEL session hint for every measurement (default: the agent's, "
                             "3, MNN's own)")
    # A 20-50 ms network gets one or two runs per 20 ms burst: the default protocol repeats the zoo's ratios better
    # than the quick one, for 50 s more (docs/benchmarks-noise.md)
    parser.add_argument("--zoo-protocol", default="default", help="measurement protocol of the zoo networks")
    parser.add_argument("--score-only", action="store_true", help="score the bundles already under --work")
    parser.add_argument("--without-layout", action="store_true", help="score without the layout conversions")
    parser.add_argument("--kernel-fraction", type=float, default=1.0,
                        help="score with the --kernel-space layers and this random share of the other kernels")
    parser.add_argument("--seed", type=int, default=0, help="of --kernel-fraction's draw and the regressor's folds")
    parser.add_argument("--per-model", action="store_true", help="also print each model's measured/predicted")
    parser.add_argument("--kinds", default="conv,dwconv", help="kernel kinds of `regressor`")
    parser.add_argument("--regressor", choices=("trees", "board"), default="trees",
                        help="`device`: the LUT's regressor, its own trees (lut.forest) or the board's bagged forest")
    args = parser.parse_args()
    if args.what == "synthetic":
        synthetic()
    elif args.what == "device":
        device(args)
    elif args.what == "zoo-kernels":
        zoo_kernels(args)
    else:
        regressor_error(args)


if __name__ == "__main__":
    main()
