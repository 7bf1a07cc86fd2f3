"""`trainer report`: one self-contained HTML page a lab can share. For each device of a dataset, its fingerprint and
state during measurement, the noise ceiling, the fusion rules and the kernels measured (trainer.report_devices); for
each predictor given, its metrics, a predicted-vs-measured scatter, an error CDF and the worst-predicted models on
the devices it was trained on (items it did not train on, as `trainer evaluate` scores them)."""

import datetime
import os
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Sequence

import click

from trainer.commands_data import dataset_option
from trainer.report_html import (Raw, contents, figure, join, number, page, paragraph, section, table, tag)

WORST = 10  # worst-predicted models listed per predictor and device
MEASURES = (("absolute", "vs. absolute median"), ("ratio", "vs. drift-free (ratio × reference)"))


@click.command()
@dataset_option
@click.option("--predictor", "predictor_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Predictor directory written by `trainer fit` to score in the report (repeatable).")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write.")
def report(dataset_dir, predictor_dirs, out_file):
    """Write one self-contained HTML page: devices, their state, noise ceiling, fusion rules, kernels, predictors."""
    from trainer.dataset import Dataset

    dataset = Dataset(dataset_dir)
    path = write_report(dataset, list(predictor_dirs), out_file)
    click.echo("report: {} ({} device(s), {} predictor(s))".format(path, len(dataset.devices()),
                                                                  len(predictor_dirs)))


def write_report(dataset, predictor_dirs: Sequence[Path], out_file: Path) -> Path:
    """Written whole or not at all: a reader never opens half a page."""
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_name(out_file.name + ".tmp")
    tmp.write_text(build_report(dataset, predictor_dirs), encoding="utf-8")
    os.replace(tmp, out_file)
    return out_file


def build_report(dataset, predictor_dirs: Sequence[Path]) -> str:
    from edge_agent import __version__
    from trainer.report_devices import device_section

    rows = dataset.rows()
    devices = dataset.devices()
    device_anchors = {device: "device-{}".format(i) for i, device in enumerate(devices)}
    predictor_anchors = ["predictor-{}".format(i) for i in range(len(predictor_dirs))]
    links = [("devices", "Devices")] + [(device_anchors[d], d) for d in devices]
    links += [(anchor, "Predictor {}".format(Path(p).name)) for anchor, p in zip(predictor_anchors, predictor_dirs)]
    links.append(("sources", "What the dataset holds"))
    intro = [paragraph("Dataset {}, written {} UTC by edge-latency {}.".format(
        dataset.root.resolve(), datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        __version__)), contents(links)]
    sections = [overview_section(dataset, device_anchors)]
    sections += [device_section(dataset, d, [r for r in rows if r["device"] == d], device_anchors[d])
                 for d in devices]
    sections += [predictor_section(dataset, Path(p), anchor) for p, anchor in zip(predictor_dirs, predictor_anchors)]
    sections.append(sources_section(dataset))
    return page("Latency report: {}".format(dataset.root.resolve().name), intro, sections)


def overview_section(dataset, anchors: Dict[str, str]) -> Raw:
    from trainer.summary import device_summaries

    rows = [(tag("a", s.device, href="#" + anchors[s.device]), s.runtime or "", str(s.threads or ""),
             s.opt_level or "", str(s.rows), str(s.valid), str(s.rows - s.valid), number(s.reference_ms))
            for s in device_summaries(dataset)]
    headers = ("device", "runtime", "threads", "level", "rows", "valid", "not valid", "reference ms")
    if not rows:
        return section("devices", "Devices", [paragraph("The dataset holds no measurements yet.", "warn")])
    return section("devices", "Devices", [table(headers, rows, numeric=range(4, 8))])


def predictor_section(dataset, predictor_dir: Path, anchor: str) -> Raw:
    """The predictor scored on each of its training devices in the dataset (on every device when none is)."""
    from edge_agent.errors import AgentError
    from trainer.predictors.store import read_config

    title = "Predictor {}".format(predictor_dir.name)
    try:
        config = read_config(predictor_dir)
    except AgentError as error:
        return section(anchor, title, [paragraph(str(error), "warn")])
    training = config.get("training", {})
    known = dataset.devices()
    devices = [d for d in training.get("devices", []) if d in known] or known
    about = paragraph("{}: kind {}, trained on {} ({} items). Scored on the items it did not train on, without "
                      "shots; the reference model is never scored.".format(
                          predictor_dir, config.get("kind"), ", ".join(training.get("devices", [])) or "?",
                          len(training.get("item_ids", []))))
    parts: List[str] = [about]
    for device in devices:
        parts += device_scores(dataset, predictor_dir, device)
    return section(anchor, title, parts)


def device_scores(dataset, predictor_dir: Path, device: str) -> List[Raw]:
    from edge_agent.errors import AgentError

    heading = tag("h3", "On {}".format(device))
    try:
        results = {measured: _evaluate(dataset, predictor_dir, device, measured) for measured, _ in MEASURES}
    except AgentError as error:
        return [heading, paragraph("Not scored: {}".format(error), "warn")]
    drift_free = results["ratio"]
    if not drift_free.metrics.get("n"):
        return [heading, paragraph("Not scored: no item of this device is left to score.", "warn")]
    parts = [heading, metrics_table(results), plots(drift_free), worst_table(drift_free)]
    return parts + kernel_sources(dataset, predictor_dir, device)


def _evaluate(dataset, predictor_dir: Path, device: str, measured: str):
    """A fresh predictor each time: scoring a new device adapts the one it is given."""
    from trainer.evaluation import evaluate
    from trainer.predictors.store import load_predictor

    predictor, config = load_predictor(predictor_dir)
    return evaluate(predictor, config, dataset, device, 0, 0, measured)


def metrics_table(results: Dict[str, Any]) -> Raw:
    from trainer.evaluation import metric_rows

    columns = [dict(metric_rows(results[measured].metrics)) for measured, _ in MEASURES]
    rows = [(name,) + tuple(column[name] for column in columns) for name in columns[0]]
    first = results[MEASURES[0][0]]
    caption = "{}, reference {:.4g} ms".format(first.mode, first.reference_ms)
    return table(("metric",) + tuple(label for _, label in MEASURES), rows, caption=caption, numeric=(1, 2))


def plots(result) -> Raw:
    from trainer.plots import error_cdf_svg, scatter_svg

    measured, predicted = result.measured_ms, result.predicted_ms
    return tag("div", join([
        figure(scatter_svg(measured, predicted, "predicted vs. measured"),
               "Predicted vs. drift-free measured latency; dashed lines at ±10 %."),
        figure(error_cdf_svg(measured, predicted), "Share of models within each relative error.")]),
        class_="figures")


def worst_table(result) -> Raw:
    import numpy as np

    errors = (result.predicted_ms - result.measured_ms) / result.measured_ms
    order = np.argsort(-np.abs(errors))[:WORST]
    rows = [(tag("span", result.ids[i], class_="mono"), "{:.4g}".format(result.measured_ms[i]),
             "{:.4g}".format(result.predicted_ms[i]), "{:+.1%}".format(errors[i])) for i in order]
    return table(("model", "measured ms", "predicted ms", "error"), rows, numeric=(1, 2, 3),
                 caption="The {} worst-predicted models (drift-free measurement)".format(len(rows)))


def kernel_sources(dataset, predictor_dir: Path, device: str) -> List[Raw]:
    """For a kernel lookup table: where each kernel of the device's models gets its latency, by kernel kind."""
    from trainer.encoding_cache import EncodingCache
    from trainer.examples import encode_examples, load_examples
    from trainer.predictors.store import load_predictor

    predictor, _ = load_predictor(predictor_dir)
    if not hasattr(predictor, "predict_kernels"):
        return []
    examples = load_examples(dataset, [device])
    encodings = encode_examples(examples, dataset, EncodingCache(dataset.encodings_dir, predictor.vocabulary))
    counts: Counter = Counter((p.kernel.kind, p.source) for e in encodings for p in predictor.predict_kernels(e))
    kinds = sorted({kind for kind, _ in counts})
    sources = ("exact", "regressor", "fallback")
    rows = []
    for kind in kinds + ["all"]:
        mine = {s: sum(n for (k, src), n in counts.items() if src == s and kind in (k, "all")) for s in sources}
        total = sum(mine.values())
        rows.append((kind, str(total)) + tuple("{:.0%}".format(mine[s] / total) if total else "-" for s in sources))
    return [table(("kernel kind", "kernels") + sources, rows, numeric=(1, 2, 3, 4), caption=(
        "Kernel coverage of the device's {} models: measured exactly, interpolated by the kind's regressor, or "
        "estimated from FLOPs and bytes".format(len(examples))))]


def sources_section(dataset) -> Raw:
    rows = [(s.kind, s.name, s.device, str(s.rows), tag("span", s.content_hash[:12], class_="mono"))
            for s in dataset.sources()]
    return section("sources", "What the dataset holds", [
        table(("kind", "name", "devices", "rows", "content hash"), rows, numeric=(3,)) if rows else
        paragraph("Nothing was ingested yet.", "note")])
