"""`edge-agent profile --kernels`: the kernel sampling loop with a progress bar and a summary."""

from typing import Dict, List, Optional, Sequence

import click

from edge_agent.errors import EXIT_INVALID, InputError

SPACE_MODELS = 100  # subnets whose layers --kernel-space reads: past ~100 few new layer shapes appear


def parse_kernel_types(value: Optional[str]) -> Sequence[str]:
    """The named types, or every profiled type when none are named."""
    from edge_agent.kernelprof.space import KERNEL_TYPES

    if value is None:
        return KERNEL_TYPES
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = [n for n in names if n not in KERNEL_TYPES]
    if unknown or not names:
        raise InputError("--kernel-types: unknown {}; choose from {}".format(", ".join(unknown) or "(none given)",
                                                                              ",".join(KERNEL_TYPES)))
    return names


def space_layers(kernel_space: Optional[str], seed: int):
    """The space's own layer configs per kernel type (empty without --kernel-space)."""
    if not kernel_space:
        return {}
    from edge_agent.kernelprof.space_prior import space_kernel_configs
    from kernels.errors import KernelsError

    try:
        return space_kernel_configs(kernel_space, SPACE_MODELS, seed)
    except KernelsError as error:
        raise InputError("--kernel-space: {}".format(error)) from error


def model_layers(models_dir: Optional[str]) -> Dict[str, List[Dict[str, object]]]:
    """The distinct kernels of the folder's ONNX models, per kernel type (empty without --kernel-models)."""
    if not models_dir:
        return {}
    import glob
    import os

    import onnx

    from edge_agent.kernelprof.space_prior import kernel_configs_by_type
    from edge_agent.onnx_io import load_model
    from kernels.errors import KernelsError

    paths = sorted(glob.glob(os.path.join(models_dir, "*.onnx"))) if os.path.isdir(models_dir) else []
    if not paths:
        raise InputError("--kernel-models {}: no .onnx files there".format(models_dir))
    found = []
    for path in paths:
        try:  # one model at a time, so that an error names its file
            found.append(kernel_configs_by_type([onnx.load_from_string(load_model(path).content)]))
        except KernelsError as error:
            raise InputError("--kernel-models: {}: {}".format(path, error)) from error
    return merged_layers(*found)


def merged_layers(*found: Dict[str, List[Dict[str, object]]]) -> Dict[str, List[Dict[str, object]]]:
    """Per kernel type, the configs of each source in turn, each config once."""
    import json

    merged: Dict[str, Dict[str, Dict[str, object]]] = {}
    for layers in found:
        for kernel_type, configs in layers.items():
            for config in configs:
                merged.setdefault(kernel_type, {}).setdefault(json.dumps(config, sort_keys=True), config)
    return {kernel_type: list(configs.values()) for kernel_type, configs in merged.items()}


def run_kernel_profile(session, kernel_types: Optional[str], per_type: int, seed: int, budget_min: Optional[float],
                       seeded: Optional[Dict[str, List[Dict[str, object]]]] = None) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from edge_agent.kernelprof.run import SamplingPlan, profile_kernels
    from edge_agent.profile.run import describe

    plan = SamplingPlan(kernel_types=parse_kernel_types(kernel_types), per_type=per_type, seed=seed,
                        seeded=seeded or {})
    columns = [TextColumn("kernels"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("kernels", total=plan.total() + 1)

        def on_record(record, done, total):
            bar.update(task, completed=done, total=total)
            bar.console.print(describe(record), highlight=False, markup=False)

        outcome = profile_kernels(session, plan, budget_min * 60 if budget_min else None, on_record)
    for kernel_type, rounds in outcome.rounds.items():
        if rounds:
            click.echo("{}: {} kernels, cross-validated accuracy (within {:.0%}) {:.1%}".format(
                kernel_type, rounds[-1].measured, plan.threshold, rounds[-1].accuracy))
    click.echo("measured {} kernel(s), {} invalid or failed, {} already in the bundle{}".format(
        len(outcome.measured), outcome.invalid, outcome.reused, "; stopped by the budget" if outcome.out_of_budget
        else ""))
    if outcome.invalid or outcome.out_of_budget:
        click.echo("re-run the same command to continue", err=True)
    return EXIT_INVALID if outcome.invalid else 0
