"""The default main job's wall time and the bundle it leaves (issue 3).

  python benchmarks/bench_profile.py [--subnets 100] [--space cifar-supernet] [--runtime ort] [-- extra profile args]

Runs `edge-agent profile` exactly as the README does, times it, packs the bundle, and reports records, validity,
reference drift, and the packed size scaled to 1,000 subnets.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from edge_agent.bundle.store import read_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subnets", type=int, default=100)
    parser.add_argument("--space", default="cifar-supernet")
    parser.add_argument("--runtime", default="ort")
    parser.add_argument("extra", nargs="*", help="extra `edge-agent profile` arguments")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        out = os.path.join(workdir, "bundle")
        command = [sys.executable, "-m", "edge_agent", "profile", "--out", out, "--space", args.space,
                   "--subnets", str(args.subnets), "--runtime", args.runtime] + args.extra
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        wall_s = time.perf_counter() - start
        print(result.stdout.strip())
        subprocess.run([sys.executable, "-m", "edge_agent", "pack", out], check=True, capture_output=True)
        packed = os.path.getsize(out + ".tar.gz")
        records = read_records(out).records
    subnets = [r for r in records if r.item_kind == "subnet"]
    valid = {r.item_id for r in subnets if r.status == "ok"}
    print("| figure | value |\n| --- | --- |")
    print("| wall time, {} subnets + reference ({}) | {:.1f} min |".format(args.subnets, args.runtime, wall_s / 60))
    print("| subnets valid / measured | {} / {} ({} attempts) |".format(
        len(valid), len({r.item_id for r in subnets}), len(subnets)))
    print("| packed bundle | {:.2f} MB ({:.1f} MB per 1,000 subnets) |".format(
        packed / 1e6, packed / 1e6 / max(1, args.subnets) * 1000))


if __name__ == "__main__":
    main()
