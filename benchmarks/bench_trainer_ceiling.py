"""The public NB201 tables' consistency: archs whose cells hold the same multiset of ops run the same operators at the
same shapes (every edge computed), so on a sequential runtime they should measure alike; how often they do bounds
what any predictor can score against the table. Grouped two ways: by all six edges' ops (the network NB201 defines,
nb201 space v2) and by the ops of the live edges only (dead and `none` edges dropped, space v1) — the better grouping
tells which network a device's table measured.

    .venv/bin/python benchmarks/bench_trainer_ceiling.py
"""

import collections
import csv
import json

import numpy as np
from bench_trainer_nb201 import DATA

from kernels.spaces.nb201 import parse_arch
from trainer.cell_encoding import live_edges


def _within_group(rows, device, key):
    """Share of archs within ±10 % of their group's median, and Spearman ρ between the group median and latency."""
    from scipy.stats import spearmanr

    groups = collections.defaultdict(list)
    for row in rows:
        if row[device]:
            groups[key(parse_arch(row["arch_str"]))].append(float(row[device]))
    medians, values = [], []
    for group in groups.values():
        medians += [float(np.median(group))] * len(group)
        values += group
    medians, values = np.asarray(medians), np.asarray(values)
    return float(np.mean(np.abs(values - medians) <= 0.1 * medians)), float(spearmanr(medians, values)[0])


def main():
    with open(DATA, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["output_connected"] == "1"]
    devices = [c for c in rows[0] if c.endswith("_ms")]
    report = {}
    print("| device | ±10 % of group, all edges | ρ, all edges | ±10 % of group, live edges | ρ, live edges |")
    print("| --- | --- | --- | --- | --- |")
    for device in devices:
        every = _within_group(rows, device, lambda cell: tuple(sorted(cell)))
        live = _within_group(rows, device, lambda cell: tuple(sorted(cell[k] for k in live_edges(cell))))
        report[device[:-3]] = {"all_edges": every, "live_edges": live}
        print("| {} | {:.1%} | {:.3f} | {:.1%} | {:.3f} |".format(device[:-3], every[0], every[1], live[0], live[1]))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
