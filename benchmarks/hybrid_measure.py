"""The measurements behind benchmarks/bench_hybrid.py: on each "device" (a runtime × threads × optimization level of
this machine), its kernel profile, 40 cifar-supernet subnets, the kernels.zoo networks at 96×96, and a second pass of
the subnets and the zoo right after the first (the noise ceiling of exactly the bundles that are scored). Every
whole-model bundle interleaves the cifar-supernet reference, so all of a device's labels are ratios to one model.

  .venv/bin/python benchmarks/hybrid_measure.py --work runs/hybrid [--devices ort-1t,mnn-1t] [--kernel-samples 30]

Re-running resumes (every step is an `edge-agent profile` that resumes its bundle). The bundles' commands are the
ones below; each device's minutes are printed as it finishes.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_lut import _cli, _write_zoo  # noqa: E402  (edge-agent run for its minutes; the zoo written atomically)

# name -> the agent options that define the device (runtime, threads, optimization level or Winograd level)
DEVICES = {
    "ort-1t": ["--runtime", "ort", "--threads", "1", "--opt-level", "all"],
    "mnn-1t": ["--runtime", "mnn", "--threads", "1", "--mnn-winograd-level", "1"],
    "ort-2t": ["--runtime", "ort", "--threads", "2", "--opt-level", "all"],
    "ort-basic": ["--runtime", "ort", "--threads", "1", "--opt-level", "basic"],
}
ZOO_HW = 96
SUBNET_SEED = 0


def write_models(work: str) -> str:
    """The zoo networks and the cifar-supernet reference as ONNX files; returns the reference's path."""
    from edge_agent.bundle.files import atomic_write
    from kernels.spaces import get_space

    _write_zoo(os.path.join(work, "zoo-models"), ZOO_HW)
    space = get_space("cifar-supernet")
    reference = os.path.join(work, "reference.onnx")
    atomic_write(reference, space.build(space.reference_spec()).SerializeToString(), overwrite=True)
    return reference


def measure(work: str, name: str, kernel_samples: int, subnets: int, reference: str) -> None:
    options = DEVICES[name]
    out = os.path.join(work, name)
    minutes = {
        "kernels": _cli("profile", "--kernels", "--kernel-space", "cifar-supernet", "--kernel-samples",
                          str(kernel_samples), "--protocol", "quick", "--out", os.path.join(out, "kernels"), *options),
    }
    for suffix in ("", "-repeat"):
        minutes["subnets" + suffix] = _cli("profile", "--subnets", str(subnets), "--seed", str(SUBNET_SEED),
                                             "--protocol", "quick", "--out", os.path.join(out, "subnets" + suffix),
                                             *options)
        minutes["zoo" + suffix] = _cli("profile", "--models", os.path.join(work, "zoo-models"), "--reference",
                                         reference, "--out", os.path.join(out, "zoo" + suffix), *options)
    print("{}: {}".format(name, ", ".join("{} {:.1f} min".format(k, v) for k, v in minutes.items())), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="runs/hybrid")
    parser.add_argument("--devices", default=",".join(DEVICES))
    parser.add_argument("--kernel-samples", type=int, default=30)
    parser.add_argument("--subnets", type=int, default=40)
    args = parser.parse_args()
    names = args.devices.split(",")
    unknown = sorted(set(names) - set(DEVICES))
    if unknown:
        raise SystemExit("unknown device(s) {}; known: {}".format(", ".join(unknown), ", ".join(DEVICES)))
    reference = write_models(args.work)
    for name in names:
        measure(args.work, name, args.kernel_samples, args.subnets, reference)


if __name__ == "__main__":
    main()
