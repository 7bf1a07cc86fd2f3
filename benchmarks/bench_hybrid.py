"""Issue 22's benchmark: the hybrid predictor beside FLOPs-linear, `additive`, the kernel LUT (calibrated), the GCN
and `nodecost`, all scored on the same bundles, measured in one window by benchmarks/hybrid_measure.py:

1. the training device (onnxruntime, 1 thread), trained on every other cifar-supernet subnet: the other subnets and
   the zoo networks, none of which it saw;
2. devices it never trained on (MNN 1 thread, onnxruntime 2 threads, onnxruntime `basic`) from their kernel profile
   and reference (0 shots) and with 10 measured models (the same random 10 for every predictor); then, trained on
   the three onnxruntime devices at once, MNN;
3. the prediction intervals' coverage (nominal 90 %) and width;
4. with --search: `trainer search`'s picks with the hybrid at 0 shots on MNN, measured there.

Every ±10 % figure stands beside the noise ceiling of its bundles: the share of items whose repeat pass (measured right
after the first) lands within ±10 % of it. Scores are against the drift-free measurement (interleaved ratio × the
device's reference latency), as the labels are.

  .venv/bin/python benchmarks/hybrid_measure.py --work runs/hybrid          (the measurements, about an hour)
  .venv/bin/python benchmarks/bench_hybrid.py --work runs/hybrid [--kinds hybrid,lut] [--search]
"""

import argparse
import os
from dataclasses import replace
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_noise_ceiling import _first_pass  # noqa: E402
from hybrid_measure import DEVICES  # noqa: E402

from trainer.dataset import Dataset  # noqa: E402
from trainer.evaluation import evaluate, random_shots  # noqa: E402
from trainer.examples import load_examples  # noqa: E402
from trainer.fitting import fit  # noqa: E402
from trainer.ingest import ingest  # noqa: E402
from trainer.metrics import score  # noqa: E402
from trainer.predictors.store import CONFIG, load_predictor  # noqa: E402

KINDS = ("flops", "additive", "lut", "gcn", "nodecost", "hybrid")
SETS = ("subnets", "zoo")
TRAIN_DEVICE = "ort-1t"
COVERAGE = 0.9


def build_dataset(work: Path) -> Dataset:
    """Every measured device's kernels, subnets and zoo (first passes) in one dataset; re-running adds nothing."""
    dataset = Dataset(work / "dataset", create=True)
    for device in DEVICES:
        for bundle in ("kernels", "subnets", "zoo"):
            if (work / device / bundle / "manifest.json").exists():
                ingest(work / device / bundle, dataset, device=device)
    return dataset


def item_sets(dataset: Dataset, device: str) -> Dict[str, List[str]]:
    """Item ids of the device's subnets and zoo networks (the reference left out)."""
    examples = [e for e in load_examples(dataset, [device]) if not e.is_reference]
    return {"subnets": sorted(e.item_id for e in examples if e.spec_json),
            "zoo": sorted(e.item_id for e in examples if not e.spec_json)}


def noise_ceiling(work: Path, device: str, which: str) -> Optional[float]:
    """Share of items whose repeat pass's ratio lands within ±10 % of the first's."""
    first, second = (work / device / (which + suffix) for suffix in ("", "-repeat"))
    if not (first / "manifest.json").exists() or not (second / "manifest.json").exists():
        return None
    a, b = _first_pass(str(first))[0], _first_pass(str(second))[0]
    common = [sha for sha in a if sha in b]
    return float(np.mean([abs(b[sha][1] / a[sha][1] - 1) <= 0.1 for sha in common])) if common else None


def fitted(kind: str, dataset: Dataset, devices: Sequence[str], items: Sequence[str], out: Path):
    """`kind`, or `kind:option` for a boolean hyper-parameter set (hybrid:structure)."""
    name, _, option = kind.partition(":")
    if not (out / CONFIG).exists():  # fitted once per kind and training set, then loaded fresh for each scoring
        fit(dataset, devices, name, len(items), seed=0, hyper={option: True} if option else None, out_dir=out,
            items=items)
    return load_predictor(out)


def reference_id(dataset: Dataset, device: str) -> str:
    return next(e.item_id for e in load_examples(dataset, [device]) if e.is_reference)


def shot_ids(dataset: Dataset, device: str, shots: int) -> List[str]:
    """The items trainer.evaluation's random shot selection picks with seed 0 on a device it never trained on."""
    pool = [e.item_id for e in load_examples(dataset, [device]) if not e.is_reference]
    return [pool[i] for i in random_shots(len(pool), shots, 0)]


def scored(kind: str, dataset: Dataset, train_devices: Sequence[str], train_items: Sequence[str], device: str,
           shots: int, tmp: Path):
    """trainer.evaluation.Evaluation of the kind on `device`. The LUT belongs to one device: on a new one it is that
    device's own LUT, calibrated on the same shots and the reference the others adapt to."""
    if kind == "lut" and device not in train_devices:
        items = shot_ids(dataset, device, shots) + [reference_id(dataset, device)] if shots else []
        predictor, config = fitted(kind, dataset, [device], items, tmp / "{}-{}-{}".format(kind, device, shots))
        evaluation = evaluate(predictor, config, dataset, device, 0, measured="ratio", coverage=COVERAGE)
        return evaluation if shots else _relative_to_reference(evaluation, predictor, dataset, device)
    predictor, config = fitted(kind, dataset, train_devices, train_items, tmp / "{}-{}".format(
        kind.replace(":", "-"), "+".join(train_devices)))
    return evaluate(predictor, config, dataset, device, shots, seed=0, measured="ratio", shot_selection="random",
                    coverage=COVERAGE)


def _relative_to_reference(evaluation, predictor, dataset: Dataset, device: str):
    """The uncalibrated LUT at 0 shots, as a ratio to its prediction of the reference times the measured reference:
    the one measurement the other predictors get at 0 shots."""
    from trainer.encoding_cache import EncodingCache
    from trainer.examples import encode_examples

    reference = [e for e in load_examples(dataset, [device]) if e.is_reference][:1]
    encoding = encode_examples(reference, dataset, EncodingCache(dataset.encodings_dir, predictor.vocabulary))
    factor = evaluation.reference_ms / float(predictor.predict(encoding)[0])
    return replace(evaluation, predicted_ms=evaluation.predicted_ms * factor,
                   metrics=score(evaluation.measured_ms, evaluation.predicted_ms * factor), interval=None)


def by_set(evaluation, sets: Dict[str, List[str]]) -> Dict[str, Dict[str, float]]:
    """Metrics per set of items, with the share inside the prediction interval where it is bounded."""
    out = {}
    for name in SETS:
        keep = [i for i, item in enumerate(evaluation.ids) if item in set(sets[name])]
        if len(keep) >= 2:
            out[name] = score(evaluation.measured_ms[keep], evaluation.predicted_ms[keep])
            if evaluation.high_ms is not None:
                out[name].update(interval_cell(evaluation.measured_ms[keep], evaluation.predicted_ms[keep],
                                               np.asarray(evaluation.low_ms, dtype=float)[keep],
                                               np.asarray(evaluation.high_ms, dtype=float)[keep]))
    return out


def interval_cell(measured, predicted, low, high) -> Dict[str, float]:
    """How many intervals were unbounded and, among the bounded ones, the share inside and the mean relative width."""
    measured, predicted, low, high = (np.asarray(a, dtype=float) for a in (measured, predicted, low, high))
    bounded = np.isfinite(high)
    cell = {"unbounded": int(np.sum(~bounded))}
    if bounded.any():
        cell.update(coverage=float(((low <= measured) & (measured <= high))[bounded].mean()),
                    width=float(np.mean((high - low)[bounded] / predicted[bounded])))
    return cell


def _coverage_text(name: str, m: Dict[str, float]) -> str:
    """A set's share inside its interval and the mean width, among bounded intervals; how many were unbounded."""
    bounded = "{} {:.0%} (width {:.0%})".format(name, m["coverage"], m["width"]) if "coverage" in m else name
    return bounded + (", {} unbounded".format(m["unbounded"]) if m.get("unbounded") else "")


def scenario(label: str, kinds: Sequence[str], dataset: Dataset, work: Path, train_devices: Sequence[str],
             train_items: Sequence[str], device: str, shots: int, tmp: Path) -> None:
    sets = item_sets(dataset, device)
    cells, intervals = {}, []
    for kind in kinds:
        if kind in ("lut", "flops", "additive", "gcn") and len(train_devices) > 1 and device not in train_devices:
            continue  # single-device kinds: no multi-device training
        try:
            evaluation = scored(kind, dataset, train_devices, train_items, device, shots, tmp)
        except Exception as exc:  # one kind's failure must not cost the others' figures; it is printed
            print("  {} on {}: {}: {}".format(kind, device, type(exc).__name__, exc), flush=True)
            continue
        cells[kind] = by_set(evaluation, sets)
        if evaluation.interval:
            intervals.append("{} {}".format(kind, "; ".join(_coverage_text(name, m)
                                                          for name, m in cells[kind].items())))
    for name in SETS:
        ceiling = noise_ceiling(work, device, name)
        row = ["{} ({}, K={})".format(label, name, shots), "—" if ceiling is None else "{:.0%}".format(ceiling)]
        for kind in kinds:
            m = cells.get(kind, {}).get(name)
            row.append("—" if m is None else "{:.0%} ({:.3f})".format(m["within_10"], m["spearman"]))
        print("| " + " | ".join(row) + " |", flush=True)
    if intervals:
        print("  coverage at nominal {:.0%}: {}".format(COVERAGE, "; ".join(intervals)), flush=True)


def zoo_left_out(kinds: Sequence[str], dataset: Dataset, work: Path, train_items: Sequence[str], tmp: Path) -> None:
    """The training device's zoo networks, each predicted by a predictor trained on the subnets and the other zoo
    networks: networks unlike the subnets, with some like them in training."""
    zoo = item_sets(dataset, TRAIN_DEVICE)["zoo"]
    row = ["training device {} (zoo, each left out)".format(TRAIN_DEVICE)]
    ceiling = noise_ceiling(work, TRAIN_DEVICE, "zoo")
    row.append("—" if ceiling is None else "{:.0%}".format(ceiling))
    intervals: List[str] = []
    for kind in kinds:
        if kind == "gcn":  # 21 GCN fits of minutes each: left out of this row
            row.append("—")
            continue
        measured, predicted, low, high = [], [], [], []
        for held in zoo:
            items = list(train_items) + [z for z in zoo if z != held]
            predictor, config = fitted(kind, dataset, [TRAIN_DEVICE], items,
                                       tmp / "loo-{}-{}".format(kind.replace(":", "-"), held))
            evaluation = evaluate(predictor, config, dataset, TRAIN_DEVICE, 0, measured="ratio", coverage=COVERAGE)
            index = evaluation.ids.index(held)
            measured.append(evaluation.measured_ms[index])
            predicted.append(evaluation.predicted_ms[index])
            if evaluation.high_ms is not None:
                low.append(evaluation.low_ms[index])
                high.append(evaluation.high_ms[index])
        m = score(np.asarray(measured), np.asarray(predicted))
        row.append("{:.0%} ({:.3f})".format(m["within_10"], m["spearman"]))
        if high:
            intervals.append("{} {}".format(kind, _coverage_text("zoo", interval_cell(measured, predicted, low,
                                                                                       high))))
    print("| " + " | ".join(row) + " |", flush=True)
    if intervals:
        print("  coverage at nominal {:.0%}: {}".format(COVERAGE, "; ".join(intervals)), flush=True)


def search_check(dataset: Dataset, work: Path, train_items: Sequence[str], tmp: Path, device: str = "mnn-1t") -> None:
    """Search with the hybrid (trained on onnxruntime 1 thread, 0 shots on `device`) under the device's median subnet
    latency, then measure the picks there: how many meet the budget, and within +10 %."""
    import json

    from trainer.searching import search

    predictor, config = fitted("hybrid", dataset, [TRAIN_DEVICE], train_items, tmp / "search-hybrid")
    predictor.bind_device(dataset, device)
    examples = load_examples(dataset, [device])
    reference_ms = examples[0].reference_ms
    budget = float(np.median([e.ratio * reference_ms for e in examples if e.spec_json and not e.is_reference]))
    found = search(predictor, reference_ms, "cifar-supernet", budget, 1000, 1, 10).found
    specs = tmp / "search-specs.json"
    specs.write_text(json.dumps([f.spec for f in found]), encoding="utf-8")
    out = work / device / "search"
    subprocess.run([sys.executable, "-m", "edge_agent", "profile", "--space", "cifar-supernet", "--specs", str(specs),
                    "--protocol", "quick", "--out", str(out), *DEVICES[device]], stdout=subprocess.DEVNULL, check=False)
    passes, reference_sha = _first_pass(str(out))
    measured = [ratio * reference_ms for sha, (_, ratio) in passes.items() if sha != reference_sha]
    print("search on {} at {:.3f} ms (its median subnet): {} picks measured, {:.0%} within the budget, {:.0%} within "
          "+10 %".format(device, budget, len(measured), np.mean(np.asarray(measured) <= budget),
                         np.mean(np.asarray(measured) <= 1.1 * budget)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/hybrid", type=Path)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--targets", default=None, help="comma-separated devices to predict (default: all measured)")
    parser.add_argument("--search", action="store_true")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    dataset = build_dataset(args.work)
    measured = [d for d in DEVICES if d in dataset.devices()]
    targets = args.targets.split(",") if args.targets else measured[1:]
    train_items = item_sets(dataset, TRAIN_DEVICE)["subnets"][::2] + [reference_id(dataset, TRAIN_DEVICE)]
    print("| set | noise ceiling | " + " | ".join(kinds) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in kinds) + " |")
    with tempfile.TemporaryDirectory() as tmp:
        scenario("training device " + TRAIN_DEVICE, kinds, dataset, args.work, [TRAIN_DEVICE], train_items,
                 TRAIN_DEVICE, 0, Path(tmp))
        zoo_left_out(kinds, dataset, args.work, train_items, Path(tmp))
        for device in [d for d in measured[1:] if d in targets]:
            for shots in (0, 10):
                scenario("{} -> {}".format(TRAIN_DEVICE, device), kinds, dataset, args.work, [TRAIN_DEVICE],
                         train_items, device, shots, Path(tmp))
        ort = [d for d in measured if d.startswith("ort")]
        if "mnn-1t" in targets and len(ort) > 1:
            for shots in (0, 10):
                scenario("{} -> mnn-1t".format("+".join(ort)), kinds, dataset, args.work, ort, train_items, "mnn-1t",
                         shots, Path(tmp))
        if args.search and "mnn-1t" in measured:
            search_check(dataset, args.work, train_items, Path(tmp))


if __name__ == "__main__":
    main()
