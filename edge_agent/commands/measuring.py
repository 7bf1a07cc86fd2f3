"""What `bench` and `profile` share: measurement options, run settings, the manifest, an open session."""

import contextlib
import functools
import os
import sys
import uuid
from typing import Optional, Tuple

import click

from edge_agent import __version__
from edge_agent.bundle.schema import Manifest, ModelRef, ProtocolConfig, QuantizeSettings, RunSettings
from edge_agent.bundle.store import Bundle
from edge_agent.commands.common import runtime_option, sysroot_option, threads_option
from edge_agent.errors import InputError
from edge_agent.measure.presets import PRESETS, protocol_from_options
from edge_agent.measure.runner import Item, Session, utc_now
from edge_agent.onnx_io import ModelInfo
from edge_agent.runtimes.mnn import DEFAULT_WINOGRAD_MEMORY_LEVEL

_OPTIONS = [
    runtime_option,
    threads_option,
    click.option("--opt-level", type=click.Choice(["disable", "basic", "extended", "all"]), default="all",
                 show_default=True, help="onnxruntime graph optimization level (part of the device definition)."),
    click.option("--precision", type=click.Choice(["high", "normal", "low"]), default="high", show_default=True,
                 help="MNN precision; high = fp32."),
    click.option("--quantize", type=click.Choice(["int8"]), default=None,
                 help="Measure the INT8 model made here from each fp32 one (onnxruntime static quantization: QDQ, "
                      "per-channel weights); default: the model as given."),
    click.option("--quantize-activations", type=click.Choice(["uint8", "int8"]), default="uint8", show_default=True,
                 help="With --quantize: the activations' type (weights are int8): uint8 is what onnxruntime's x86 "
                      "kernels cover most fully."),
    click.option("--calibration-samples", type=click.IntRange(1, 1000), default=8, show_default=True,
                 help="With --quantize: random inputs the activation ranges are calibrated on."),
    click.option("--calibration-seed", type=int, default=0, show_default=True,
                 help="With --quantize: seed of the calibration inputs (sample i uses seed + i)."),
    # Set always, so every record names the level it ran at: MNN's own default (RuntimeHint::winogradMemoryUsed, 3
    # in MNN 3.x) could change with a version, and the level moves whole models by up to 2x (docs/protocol.md)
    click.option("--mnn-winograd-level", type=click.IntRange(0, 3), default=DEFAULT_WINOGRAD_MEMORY_LEVEL,
                 show_default=True, help="MNN's WINOGRAD_MEMORY_LEVEL session hint (0 = no Winograd ... 3)."),
    click.option("--cpus", default=None, help="Pin the measuring process to these CPUs, e.g. 2,3."),
    click.option("--input-seed", type=int, default=0, show_default=True, help="Seed of the random input tensors."),
    click.option("--protocol", "preset", type=click.Choice(sorted(PRESETS)), default="default", show_default=True,
                 help="Measurement protocol preset (README: Measurement protocol)."),
    click.option("--warmup-time", type=float, default=None, help="Override: minimum warm-up seconds per item."),
    click.option("--min-time", type=float, default=None, help="Override: minimum measured seconds per item."),
    click.option("--windows", type=click.IntRange(1, 100), default=None, help="Override: number of windows."),
    click.option("--cv-threshold", type=float, default=None, help="Override: robust CV above which an item is invalid."),
    click.option("--session-per-window", is_flag=True, default=False,
                 help="Open a fresh runtime session for every window, for runtimes that plan kernels per session "
                      "(MNN at Winograd level 3): draws that disagree make the item invalid."),
    click.option("--retries", type=click.IntRange(0, 10), default=None, help="Override: retries of an invalid item."),
    click.option("--timeout", type=float, default=None, help="Override: seconds before a hung item is killed."),
    click.option("--cooldown-mc", type=int, default=None,
                 help="Before each item, wait until the hottest zone is below this (m°C); default: 15 °C "
                      "below the board's throttle point when it is known."),
    click.option("--cooldown-timeout", type=float, default=None,
                 help="Override: seconds to wait for cooling before measuring anyway (and marking it invalid)."),
    sysroot_option,
]


def measurement_options(command):
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def parse_cpus(value: Optional[str]) -> Optional[Tuple[int, ...]]:
    if not value:
        return None
    try:
        cpus = tuple(sorted({int(part) for part in value.split(",") if part.strip()}))
    except ValueError:
        raise InputError("bad --cpus {!r}: expected a comma-separated list of CPU numbers".format(value)) from None
    available = os.sched_getaffinity(0)
    if not cpus or not set(cpus) <= available:
        raise InputError("--cpus {} is not a subset of the CPUs available here: {}".format(value, sorted(available)))
    return cpus


def run_settings(options: dict) -> RunSettings:
    from edge_agent.runtimes import installed_version

    runtime = options["runtime"]
    version = installed_version(runtime)
    if version is None:
        raise InputError("runtime {!r} is not installed; `pip install 'edge-latency[agent]'`".format(runtime))
    cpus = parse_cpus(options.get("cpus"))
    return RunSettings(
        runtime=runtime,
        runtime_version=version,  # from package metadata: the parent need not load the runtime
        threads=options["threads"],
        affinity=list(cpus) if cpus else sorted(os.sched_getaffinity(0)),
        ort_graph_optimization_level=options["opt_level"] if runtime == "ort" else None,
        mnn_precision=options["precision"] if runtime == "mnn" else None,
        mnn_winograd_memory_level=options.get("mnn_winograd_level") if runtime == "mnn" else None,
        input_seed=options["input_seed"],
        quantization=_quantization(options),
    )


def _quantization(options: dict) -> Optional[QuantizeSettings]:
    if not options.get("quantize"):
        return None
    if options["runtime"] != "ort":
        # QDQ models convert to MNN as fp32 convolutions between casts, and MNN's own quantizer is not safe to call
        # in-process (README: INT8 models)
        raise InputError("--quantize int8 needs --runtime ort: this agent makes INT8 models for onnxruntime only")
    from edge_agent.quant.ort_static import default_settings

    return default_settings(options["calibration_samples"], options["calibration_seed"],
                            options["quantize_activations"])


def protocol_config(options: dict) -> ProtocolConfig:
    overrides = {
        "warmup_min_time_ns": _ns(options.get("warmup_time")),
        "min_time_ns": _ns(options.get("min_time")),
        "windows": options.get("windows"),
        "cv_threshold": options.get("cv_threshold"),
        "session_per_window": options.get("session_per_window") or None,  # unset: the preset's
        "max_retries": options.get("retries"),
        "timeout_s": options.get("timeout"),
        "cooldown_target_mc": options.get("cooldown_mc"),
        "cooldown_timeout_s": options.get("cooldown_timeout"),
    }
    return protocol_from_options(options["preset"], overrides)


def _ns(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else int(seconds * 1e9)


def make_manifest(settings: RunSettings, protocol: ProtocolConfig, sysroot: str) -> Manifest:
    from edge_agent.device.fingerprint import collect_fingerprint
    from edge_agent.device.sysroot import SysRoot

    return Manifest(
        agent_version=__version__, bundle_id=uuid.uuid4().hex, created_utc=utc_now(),
        fingerprint=collect_fingerprint(SysRoot(sysroot)).model_dump(mode="json"),
        settings=settings, protocol=protocol, command=list(sys.argv))


@contextlib.contextmanager
def measuring_session(out: str, options: dict):
    from edge_agent.measure.worker import Worker

    settings = run_settings(options)
    protocol = protocol_config(options)
    make = functools.partial(make_manifest, settings, protocol, options["sysroot"])
    with Bundle.open(out, make) as bundle, Worker(parse_cpus(options.get("cpus"))) as worker:
        yield Session(bundle=bundle, worker=worker, settings=settings, protocol=protocol, sysroot=options["sysroot"])


def stored_item(bundle: Bundle, info: ModelInfo, item_id: str, kind: str, name: Optional[str] = None,
                spec: Optional[dict] = None) -> Item:
    relative = bundle.store_model(info.content, info.sha256)
    ref = ModelRef(item_id=item_id, model_sha256=info.sha256, model_path=relative, name=name)
    return Item(ref=ref, onnx_path=os.path.join(bundle.path, relative), input_shapes=info.input_shapes, kind=kind,
                spec=spec)
