"""`edge-agent profile` — a model space (or a folder of ONNX files) through the bench protocol, resumable."""

import click

from edge_agent.commands.measuring import measurement_options, measuring_session, parse_cpus
from edge_agent.errors import EXIT_INVALID, InputError


@click.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Bundle directory (created or resumed).")
@click.option("--space", default="cifar-supernet", show_default=True, help="Model space (`edge-agent spaces`).")
@click.option("--subnets", type=click.IntRange(1, 100000), default=100, show_default=True,
              help="Subnets to sample from the space (the reference is measured besides).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--specs", "specs_path", type=click.Path(dir_okay=False), default=None,
              help="Measure the subnets of --space listed in this JSON file (from `trainer calibration-set`) "
                   "instead of sampling --subnets.")
@click.option("--models", "models_dir", type=click.Path(file_okay=False), default=None,
              help="Profile the ONNX files in this folder instead of a space.")
@click.option("--reference", "reference_path", type=click.Path(dir_okay=False), default=None,
              help="With --models: the reference model interleaved with each.")
@click.option("--budget", type=click.FloatRange(min=0.1), default=None,
              help="Stop cleanly after this many minutes (re-run to continue).")
@click.option("--kernels", is_flag=True, help="Profile single kernels (adaptive sampling) for a kernel LUT instead.")
@click.option("--kernel-types", default=None,
              help="With --kernels: the kernel types to sample, comma-separated (default: every profiled type).")
@click.option("--kernel-samples", type=click.IntRange(0, 100000), default=60, show_default=True,
              help="With --kernels: measurements per kernel type at most (x4 for conv, x2 for dwconv); 0: only the "
                   "layers of --kernel-space and --kernel-models.")
@click.option("--kernel-space", default=None,
              help="With --kernels: also measure every distinct layer of 100 subnets of this space, first.")
@click.option("--kernel-models", type=click.Path(file_okay=False), default=None,
              help="With --kernels: also measure every distinct kernel of the ONNX models in this folder, first.")
@click.option("--fusion-rules/--no-fusion-rules", default=True, show_default=True,
              help="With --kernels: when the bundle has no fusion rule table for these settings, detect one first "
                   "(as `detect-fusion` does; its minutes are not counted in --budget); a kernel LUT needs it.")
@measurement_options
def profile(out, space, subnets, seed, specs_path, models_dir, reference_path, budget, kernels, kernel_types,
            kernel_samples, kernel_space, kernel_models, fusion_rules, **options):
    """Measure many models, each interleaved with the reference; re-running resumes."""
    from edge_agent.profile.plan import folder_plan, space_plan, specs_plan

    if kernels:
        from edge_agent.commands.fusion import record_missing_rules
        from edge_agent.kernelprof.command import merged_layers, model_layers, run_kernel_profile, space_layers

        seeded = merged_layers(space_layers(kernel_space, seed), model_layers(kernel_models))
        if not kernel_samples and not seeded:
            raise InputError("--kernel-samples 0 measures only the layers of --kernel-space or --kernel-models; "
                             "give one")
        with measuring_session(out, options) as session:
            if fusion_rules:
                record_missing_rules(session, parse_cpus(options.get("cpus")))
            return run_kernel_profile(session, kernel_types, kernel_samples, seed, budget, seeded)

    if models_dir and not reference_path:
        raise InputError("--models needs --reference FILE (the model every item is interleaved with)")
    if reference_path and not models_dir:
        raise InputError("--reference goes with --models; a space brings its own reference model")
    if specs_path and models_dir:
        raise InputError("--specs lists subnets of --space; it does not go with --models")
    with measuring_session(out, options) as session:
        if models_dir:
            plan = folder_plan(session.bundle, models_dir, reference_path)
        elif specs_path:
            plan = specs_plan(session.bundle, space, specs_path)
        else:
            plan = space_plan(session.bundle, space, subnets, seed)
        outcome = _run_with_progress(session, plan, budget)
    return _summarize(outcome, out)


def _run_with_progress(session, plan, budget):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from edge_agent.profile.run import describe, run_profile

    console = Console(stderr=True)
    columns = [TextColumn("profile"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("profile", total=len(plan.items))

        def on_item(record, done, total):
            bar.update(task, completed=done, total=total)
            bar.console.print(describe(record), highlight=False, markup=False)

        return run_profile(session, plan, budget * 60 if budget else None, on_item)


def _summarize(outcome, out) -> int:
    drift = outcome.drift()
    click.echo("measured {} item(s), {} invalid or failed, {} already done, {} left by the budget".format(
        len(outcome.measured), outcome.invalid, outcome.skipped, outcome.pending))
    if drift is not None:
        click.echo("reference drift over the session: {:+.2%}".format(drift))
    click.echo("bundle: {}".format(out))
    if outcome.invalid or outcome.pending:
        click.echo("re-run the same command to measure what is missing or invalid", err=True)
    return EXIT_INVALID if outcome.invalid else 0
