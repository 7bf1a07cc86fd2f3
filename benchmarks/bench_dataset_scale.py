"""Benchmark (issue 25): a dataset that scales. A synthetic fleet of 100 devices, one packed bundle per device, whose
rows reuse a few thousand NB201 cells (specs: the cell-level encoding needs no ONNX graph), at 10^4 and 10^5
measurement rows (10^6 with --million). For each size, every step runs as its own `trainer` process, timed (wall and
CPU seconds), with its peak resident memory (os.wait4's rusage of that process alone):

  ingest     `trainer ingest FLEET/ --dataset D`: every archive into a new dataset
  re-ingest  the same command again (idempotent: nothing added)
  append     one more device's archive (1,000 rows at every size) into the full dataset: what an append costs
  devices    `trainer devices --dataset D --json`
  fit-one    `trainer fit` of one device (an MLP on the cell encoding, 5 epochs: the data path is measured, not the
             model)
  fit-all    `trainer fit` of all 100 devices at once (one head per device)

and prints a table and each step's growth exponent between sizes, of its CPU time (log(t2/t1) / log(n2/n1): 1
is linear).

    nice -n 10 .venv/bin/python benchmarks/bench_dataset_scale.py [--rows 10000 --rows 100000] [--million]
        [--work DIR] [--json OUT]
"""

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

DEVICES = 100
GRAPHS = 2000
APPENDED_ROWS = 1000  # the appended device's, the same at every size
TRAINER = [sys.executable, "-m", "trainer"]


def _cells(count: int) -> List[Tuple[dict, float]]:
    """(spec, relative cost) of the reference cell then count - 1 sampled ones; the cost grows with the cell's
    3x3 convolutions, so that a fit has something to learn."""
    from kernels.spaces import get_space
    from kernels.spaces.nb201 import parse_arch, spec_to_arch

    space = get_space("nb201")
    specs = [space.reference_spec()] + space.sample(count - 1, seed=25)
    out = []
    for spec in specs:
        ops = parse_arch(spec_to_arch(spec))
        cost = 1.0 + sum((1 + 0.05 * k) * {"nor_conv_3x3": 3.0, "nor_conv_1x1": 1.0}.get(op, 0.2)
                         for k, op in enumerate(ops))
        out.append((spec.to_dict(), cost))
    return out


def _templates(device_key: str):
    """(manifest json, a record as a dict) of one synthetic board, built through the bundle schema once."""
    from edge_agent.bundle.schema import Manifest, MeasurementRecord, ModelRef, ProtocolConfig, RunSettings

    settings = RunSettings(runtime="ort", runtime_version="1.32.0", threads=1, ort_graph_optimization_level="all")
    manifest = Manifest(agent_version="0.1.0", bundle_id="scale-" + device_key, created_utc="2026-12-04T00:00:00Z",
                        fingerprint={"device_key": device_key}, settings=settings, protocol=ProtocolConfig())
    model = ModelRef(item_id="x", model_sha256="0" * 64)
    record = MeasurementRecord(record_id="x", session_id="s", item_id="x", model=model, settings=settings,
                               protocol=ProtocolConfig(), status="ok", samples_ns=[[1]],
                               started_utc="2026-12-04T00:00:00Z", finished_utc="2026-12-04T00:00:01Z")
    return manifest.model_dump_json(), record.model_dump(mode="json")


def _samples(ns: float, salt: int) -> List[List[int]]:
    return [[int(ns * (1 + 0.002 * ((salt + i * 7 + w) % 5))) for i in range(5)] for w in range(3)]


def _write_board(root: Path, index: int, rows: int, cells: List[Tuple[dict, float]]) -> Path:
    """One device's packed bundle: a reference record, then rows - 1 subnet records cycling over the cells from an
    offset of the device's own (more rows than cells: repeated measurements)."""
    from edge_agent.bundle.pack import pack_bundle

    key = "lab|board-{:03d}".format(index)
    manifest, template = _templates(key)
    bundle = root / "board-{:03d}".format(index) / "results"
    bundle.mkdir(parents=True)
    (bundle / "manifest.json").write_text(manifest, encoding="utf-8")
    speed = 1e6 * (0.5 + (index % 10) / 10)  # ns of a cost-1 cell on this device
    refs = []
    with open(bundle / "measurements.jsonl", "w", encoding="utf-8") as out:
        for n in range(rows):
            spec, cost = cells[0] if n == 0 else cells[1 + (index * 37 + n) % (len(cells) - 1)]
            item_id = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
            model = {"item_id": item_id, "model_sha256": hashlib.sha256(item_id.encode()).hexdigest(),
                     "model_path": None, "name": None}
            record = dict(template, record_id="{}-r{}".format(key, n), session_id="s", item_id=item_id,
                          item_kind="reference" if n == 0 else "subnet", model=model, spec=spec,
                          samples_ns=_samples(speed * cost, n))
            if n == 0:
                refs = [dict(model)]
            else:
                record.update(reference=refs[0], reference_samples_ns=_samples(speed * cells[0][1], n + 1))
            out.write(json.dumps(record) + "\n")
    archive, _ = pack_bundle(str(bundle))
    shutil.rmtree(bundle)
    return Path(archive)


def make_fleet(root: Path, rows_per_device: int, first: int = 0, devices: int = DEVICES,
               graphs: int = GRAPHS) -> None:
    """Packed bundles of boards first .. first + devices - 1, each ROOT/board-NNN/results.tar.gz, as a fleet's
    playbook fetches them (tests/test_dataset_partitions.py makes its fleets here too)."""
    cells = _cells(graphs)
    for index in range(first, first + devices):
        _write_board(root, index, rows_per_device, cells)


def timed(args: List[str], log: Path) -> Dict[str, float]:
    """Wall and CPU seconds and peak RSS (MiB) of one `trainer` process, reaped with os.wait4 so that the figures
    are that process's own; its output goes to `log`."""
    with open(log, "w", encoding="utf-8") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(TRAINER + args, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit("trainer {} failed ({}): see {}".format(" ".join(args), proc.returncode, log))
    # CPU seconds beside wall ones: on a shared machine the wall time also measures the neighbours.
    return {"s": round(seconds, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "maxrss_mib": round(usage.ru_maxrss / 1024, 1)}


def run_size(work: Path, rows: int) -> Dict[str, object]:
    """Every step on a fresh dataset of `rows` rows; the fleet's archives are generated first (not timed)."""
    shutil.rmtree(work, ignore_errors=True)
    fleet, extra, data = work / "fleet", work / "extra", work / "dataset"
    start = time.perf_counter()
    make_fleet(fleet, rows // DEVICES)
    make_fleet(extra, APPENDED_ROWS, first=DEVICES, devices=1)
    generated = time.perf_counter() - start
    devices = ["lab|board-{:03d}-ort-1t-all".format(i) for i in range(DEVICES)]
    fit = ["fit", "--dataset", str(data), "--kind", "mlp", "--cell-space", "nb201", "--epochs", "5", "--hidden", "32"]
    steps = {
        "ingest": ["ingest", str(fleet), "--dataset", str(data)],
        "re-ingest": ["ingest", str(fleet), "--dataset", str(data)],
        "append": ["ingest", str(extra), "--dataset", str(data)],
        "devices": ["devices", "--dataset", str(data), "--json"],
        "fit-one": fit + ["--device", devices[0], "--out", str(work / "pred-one")],
        "fit-all": fit + [w for d in devices for w in ("--device", d)] + ["--out", str(work / "pred-all")],
    }
    out: Dict[str, object] = {"rows": rows, "generate_s": round(generated, 1)}
    for name, step in steps.items():
        out[name] = timed(step, work / "{}.log".format(name))
    listed = json.loads((work / "devices.log").read_text(encoding="utf-8"))
    out["rows_listed"] = sum(d["rows"] for d in listed)
    out["dataset_mib"] = round(sum(f.stat().st_size for f in data.rglob("*.parquet")) / 2 ** 20, 1)
    return out


def report(results: Dict[int, Dict[str, object]]) -> None:
    """A markdown table: per step, wall seconds, CPU seconds and peak MiB at each size, and the CPU time's growth
    exponent from each size to the next (log(t2 / t1) / log(n2 / n1): 1 is linear, 0 flat)."""
    sizes = sorted(results)
    steps = [k for k, v in results[sizes[0]].items() if isinstance(v, dict)]
    head = ["step"] + ["{:,} rows: wall s, CPU s, MiB".format(n) for n in sizes] + [
        "exponent {:,}->{:,}".format(a, b) for a, b in zip(sizes, sizes[1:])]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for step in steps:
        cells = ["{s:.2f}, {cpu_s:.2f}, {maxrss_mib:.0f}".format(**results[n][step]) for n in sizes]
        cells += ["{:.2f}".format(math.log(results[b][step]["cpu_s"] / results[a][step]["cpu_s"]) / math.log(b / a))
                  for a, b in zip(sizes, sizes[1:])]
        print("| " + " | ".join([step] + cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append", help="dataset sizes (default 10000 and 100000)")
    parser.add_argument("--million", action="store_true", help="add the 10^6-row step (long: see the doc)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-dataset-scale"))
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    sizes = sorted(set(args.rows or [10_000, 100_000]) | ({1_000_000} if args.million else set()))
    results = {}
    for rows in sizes:
        results[rows] = run_size(args.work / str(rows), rows)
        print(json.dumps(results[rows]), flush=True)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
