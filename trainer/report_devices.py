"""The per-device part of `trainer report`: what the device is (fingerprint), how it behaved while measuring (clock,
temperature, throttling, validity), how far its own repeated measurements agree (the noise ceiling), the fusion rules
it runs and the kernels measured on it. Only what the dataset stores is shown; what it lacks is said."""

import json
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from trainer.dataset import MODEL_KINDS, Dataset
from trainer.report_html import Raw, bullets, join, number, pairs, paragraph, section, span, table, tag

AGREEMENT = 0.10  # the noise ceiling's tolerance, as the metrics' within_10
TABLE_RUNTIME = "table"  # the runtime of rows imported from a public table (trainer.tables)


def device_section(dataset: Dataset, device: str, rows: Sequence[Dict[str, Any]], anchor: str) -> Raw:
    from edge_agent.fusion.rules import load_tables
    from trainer.device_state import load_summaries

    if rows and all(r["runtime"] == TABLE_RUNTIME for r in rows):
        return section(anchor, device, [paragraph(
            "Imported from a public table: no fingerprint, device state or fusion rules were measured, and each "
            "architecture has one latency, so there is no noise ceiling either.", "note")] + kernel_part(rows))
    summaries = load_summaries(dataset, device)
    rule_tables = load_tables(str(dataset.device_dir(device)))
    parts = [fingerprint_part(summaries, rule_tables), state_part(summaries), noise_part(rows),
             fusion_part(rule_tables)] + kernel_part(rows)
    return section(anchor, device, parts)


def fingerprint_part(summaries: Sequence[Dict[str, Any]], rule_tables: Sequence[Any]) -> Raw:
    """The latest bundle's fingerprint, else the one a fusion rule table was measured with."""
    found = [("bundle " + str(s.get("bundle")), s.get("fingerprint")) for s in reversed(summaries)]
    found += [("fusion rule table of " + t.created_utc, t.fingerprint) for t in rule_tables]
    found = [(origin, fp) for origin, fp in found if fp]
    if not found:
        return _part("Fingerprint", [paragraph(
            "Not stored: this device's bundles were ingested before the dataset kept fingerprints (ingesting them "
            "again adds it).", "note")])
    origin, fingerprint = found[0]
    notes = [paragraph("From the {} (clocks, temperatures and free memory as they were when it began).".format(
        origin), "note")]
    return _part("Fingerprint", notes + [pairs(rows, caption) for caption, rows in fingerprint_groups(fingerprint)])


def fingerprint_groups(fingerprint: Dict[str, Any]) -> List[Tuple[str, List[Tuple[str, str]]]]:
    """`edge-agent info`'s name/value groups, plain text; a fingerprint this version cannot read (a hand-written
    one) as its top-level fields."""
    from pydantic import ValidationError
    from rich.text import Text

    from edge_agent.commands.info import fingerprint_pairs
    from edge_agent.device.fingerprint_models import Fingerprint

    try:
        groups = fingerprint_pairs(Fingerprint.model_validate(fingerprint))
    except ValidationError:
        return [("Device", [(k, str(v)) for k, v in sorted(fingerprint.items()) if not isinstance(v, (dict, list))])]
    return [(title, [(name, Text.from_markup(value).plain) for name, value in rows]) for title, rows in groups]


def state_part(summaries: Sequence[Dict[str, Any]]) -> Raw:
    if not summaries:
        return _part("State during measurement", [paragraph(
            "Not stored: the device's bundles were ingested before the dataset kept the per-item device snapshots "
            "(ingesting them again adds them).", "note")])
    headers = ("bundle", "measured (UTC)", "records", "valid", "not valid", "CPU MHz", "Pi ARM MHz", "°C",
               "throttle point °C", "throttling", "load 1 min")
    rows = [_state_row(s) for s in summaries]
    content = [table(headers, rows, numeric=(2, 3, 4, 5, 6, 7, 8, 10))]
    for summary in summaries:
        reasons = summary.get("validity", {}).get("reasons") or []
        if reasons:
            content.append(paragraph("Why items of {} were not valid (# stands for numbers):".format(
                summary.get("bundle"))))
            content.append(bullets("{} × {}".format(count, reason) for reason, count in reasons))
    return _part("State during measurement", content)


def _state_row(summary: Dict[str, Any]) -> Tuple[str, ...]:
    state, validity = summary.get("state", {}), summary.get("validity", {})
    if not state.get("throttled_read"):
        throttling = "not read (no Raspberry Pi firmware)"
    else:
        throttling = ", ".join(state.get("throttled_flags") or []) or "none"
    return (str(summary.get("bundle")), str(summary.get("created_utc", ""))[:19].replace("T", " "),
            str(validity.get("records", "")), str(validity.get("valid", "")),
            str(validity.get("invalid", 0) + validity.get("failed", 0)), span(state.get("cpu_mhz")),
            span(state.get("arm_mhz")), span(state.get("temp_c"), "{:.1f}"),
            number(state.get("throttle_temp_c"), "{:.1f}"), throttling, span(state.get("load_avg_1m"), "{:.2f}"))


def noise_ceiling(rows: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Over the whole-model items measured more than once (two bundles, two passes): the share whose every repeat
    lands within ±10 % of the first measurement, in ms and as the drift-free ratio; None without repeats. The
    reference is left out, as from scoring: its ratio is 1 by definition."""
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for row in rows:
        if row["valid"] and row["item_kind"] in MODEL_KINDS and row["item_kind"] != "reference" and row["latency_ms"]:
            groups.setdefault(str(row["item_id"]), []).append(row)
    repeated = [g for g in groups.values() if len(g) > 1]
    if not repeated:
        return None

    def share(key: str) -> Optional[float]:
        agree = [all(abs(r[key] / g[0][key] - 1) <= AGREEMENT + 1e-12 for r in g[1:])
                 for g in repeated if all(r[key] for r in g)]
        return sum(agree) / len(agree) if agree else None

    return {"items": len(repeated), "of": len(groups), "ms": share("latency_ms"), "ratio": share("ratio")}


def noise_part(rows: Sequence[Dict[str, Any]]) -> Raw:
    ceiling = noise_ceiling(rows)
    if ceiling is None:
        return _part("Noise ceiling", [paragraph(
            "No repeats: no item was measured twice on this device, so how far a second measurement lands from the "
            "first is unknown. Profile the same items again into a second bundle and ingest it to see it.", "note")])
    rows_out = [("items measured more than once", "{} of {}".format(ceiling["items"], ceiling["of"])),
                ("repeat within ±10 %, absolute median", number(ceiling["ms"], "{:.1%}")),
                ("repeat within ±10 %, drift-free ratio", number(ceiling["ratio"], "{:.1%}"))]
    return _part("Noise ceiling", [pairs(rows_out), paragraph(
        "A predictor scored against these measurements cannot be expected to place more models within ±10 % than "
        "the measurement places its own repeats.", "note")])


def fusion_part(rule_tables: Sequence[Any]) -> Raw:
    from edge_agent.commands.fusion import RULE_HEADERS, rule_notes, rule_rows, settings_line

    if not rule_tables:
        return _part("Fusion rules", [paragraph(
            "None stored: no bundle of this device had a fusion rule table (`edge-agent profile --kernels` records "
            "one; a kernel lookup table needs it).", "note")])
    content = []
    for rules in rule_tables:
        content.append(table(RULE_HEADERS, rule_rows(rules), caption="{} (α = {:g}, measured {})".format(
            settings_line(rules), rules.alpha, rules.created_utc[:19].replace("T", " ")), numeric=range(4, 8)))
        content.append(bullets(line for note in rule_notes(rules) for line in note.splitlines()))
    return _part("Fusion rules", content)


def kernel_part(rows: Sequence[Dict[str, Any]]) -> List[Raw]:
    """Kernel records by kernel type: how many, how many valid, how many distinct configurations."""
    from edge_agent.bundle.schema import KIND_KERNEL
    from edge_agent.kernelprof.space import OVERHEAD_SPEC

    kernels = [r for r in rows if r["item_kind"] == KIND_KERNEL and r["spec_json"]]
    if not kernels:
        return [_part("Kernel coverage", [paragraph("No kernel records: this device has no kernel lookup table "
                                                    "(`edge-agent profile --kernels` measures them).", "note")])]
    records: Counter = Counter()
    valid: Counter = Counter()
    configs: Dict[str, set] = {}
    for row in kernels:
        spec = json.loads(row["spec_json"])
        kind = "call overhead" if spec == OVERHEAD_SPEC else spec.get("kernel_type", "?")
        records[kind] += 1
        valid[kind] += bool(row["valid"])
        if row["valid"]:
            configs.setdefault(kind, set()).add(json.dumps(spec.get("config"), sort_keys=True))
    body = [(kind, str(records[kind]), str(valid[kind]), str(len(configs.get(kind, ())))) for kind in sorted(records)]
    return [_part("Kernel coverage", [table(("kernel type", "records", "valid", "distinct valid configs"), body,
                                            numeric=(1, 2, 3)),
                                      paragraph("How many of the models' kernels the lookup table holds exactly is "
                                                "in each lut predictor's section.", "note")])]


def _part(title: str, content: Sequence[str]) -> Raw:
    return join([tag("h3", title)] + list(content))
