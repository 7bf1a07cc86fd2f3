"""The public NB201 tables' consistency, two ways.

Groups: archs whose cells hold the same multiset of ops run the same operators at the same shapes (every edge
computed), so on a sequential runtime they should measure alike; how often they do bounds what a predictor that sees
only the op multiset can score. Grouped by all six edges' ops (the network NB201 defines, nb201 space v2) and by the
ops of the live edges only (dead and `none` edges dropped, space v1) — the better grouping tells which network a
device's table measured. Not a bound for a predictor that sees the cell's wiring, which can beat it.

Twins: when node 2 does not read node 1 (edge 2←1 is `none`), swapping nodes 1 and 2 gives the same network, so any
difference between the two archs' latencies is measurement noise. The pooled twin spread σ (log latency) gives the
Spearman ρ an oracle reaches when it knows every arch's noise-free latency and is scored against the noisy table: the
ceiling of any predictor on that device.

    .venv/bin/python benchmarks/bench_trainer_ceiling.py
"""

import collections
import csv
import json

import numpy as np
from bench_trainer_nb201 import DATA

from kernels.spaces.nb201 import parse_arch
from trainer.cell_encoding import live_edges

NOISE_DRAWS = 5


def read_rows():
    with open(DATA, newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["output_connected"] == "1"]


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


def twin_key(cell):
    """The cell and its node-1/node-2 swap (the same network when edge 2←1 is `none`) share this key."""
    if cell[2] != "none":
        return cell
    return min(cell, (cell[1], cell[0], cell[2], cell[3], cell[5], cell[4]))


def spearman_ceiling(rows, device, seed=0):
    """(σ of log latency between twins, twin groups, ρ ceiling). The ceiling simulates the oracle: the table shrunk
    to the noise-free spread (variance less σ²) is its prediction, that prediction plus noise drawn from the twins'
    own residuals (heavy tails kept: a Gaussian of the same σ overstates what a few outliers do to ranks) the
    measurement."""
    from scipy.stats import spearmanr

    twins = collections.defaultdict(list)
    logs = []
    for row in rows:
        if row[device]:
            logs.append(np.log(float(row[device])))
            twins[twin_key(parse_arch(row["arch_str"]))].append(logs[-1])
    # A residual from a group mean of n has variance σ²(n - 1)/n: rescaled, every residual is one draw of the noise.
    residuals = np.concatenate([(np.asarray(g) - np.mean(g)) * np.sqrt(len(g) / (len(g) - 1.0))
                                for g in twins.values() if len(g) > 1])
    sigma2 = float(np.mean(residuals ** 2))
    logs = np.asarray(logs)
    truth = logs.mean() + np.sqrt(max(1.0 - sigma2 / logs.var(), 0.0)) * (logs - logs.mean())
    rng = np.random.default_rng(seed)
    rhos = [spearmanr(truth, truth + rng.choice(residuals, len(truth)))[0] for _ in range(NOISE_DRAWS)]
    return float(np.sqrt(sigma2)), sum(len(g) > 1 for g in twins.values()), float(np.mean(rhos))


def main():
    rows = read_rows()
    devices = [c for c in rows[0] if c.endswith("_ms")]
    report = {}
    print("| device | ±10 % of group, all edges | ρ, all edges | ±10 % of group, live edges | ρ, live edges "
          "| twin noise σ (log) | ρ ceiling |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for device in devices:
        every = _within_group(rows, device, lambda cell: tuple(sorted(cell)))
        live = _within_group(rows, device, lambda cell: tuple(sorted(cell[k] for k in live_edges(cell))))
        sigma, pairs, ceiling = spearman_ceiling(rows, device)
        report[device[:-3]] = {"all_edges": every, "live_edges": live, "twin_sigma_log": sigma, "twin_groups": pairs,
                               "spearman_ceiling": ceiling}
        print("| {} | {:.1%} | {:.3f} | {:.1%} | {:.3f} | {:.3f} | {:.3f} |".format(
            device[:-3], every[0], every[1], live[0], live[1], sigma, ceiling))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
