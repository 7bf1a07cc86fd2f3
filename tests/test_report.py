"""`trainer report`: one self-contained HTML page. It parses, embeds a plot for every scored predictor and device,
shows what the dataset stores of each device (fingerprint, state, noise ceiling, fusion rules, kernels) and says
what it does not store; and a real headless browser loads it without console errors and draws the plots (skipped
where no Chromium is installed)."""

import html.parser
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from conftest import FIXTURES, store_space_models

from edge_agent.bundle.schema import Manifest, MeasurementRecord, ModelRef, ProtocolConfig, RunSettings
from edge_agent.device.models import DeviceSnapshot
from edge_agent.fusion.rules import FusionRule, RuleTable, save_table
from edge_agent.kernelprof.space import OVERHEAD_SPEC, draw, sample_prior, spec_id
from kernels.spaces import get_space
from kernels.spaces.nb201 import parse_arch, spec_to_arch
from trainer.dataset import Dataset
from trainer.fitting import fit
from trainer.ingest import ingest
from trainer.report import write_report

SETTINGS = RunSettings(runtime="ort", runtime_version="1.32.0", threads=1, ort_graph_optimization_level="all")
COST = {"none": 0.1, "skip_connect": 0.0, "avg_pool_3x3": 0.6, "nor_conv_1x1": 1.0, "nor_conv_3x3": 3.0}
HOT = DeviceSnapshot(monotonic_ns=1, cpu_cur_freq_khz=[1500000] * 4, arm_clock_hz=1_200_000_000, max_temp_mc=78500,
                     throttled_bits=0x20002, load_avg_1m=0.4, throttle_temp_mc=80000)
COOL = HOT.model_copy(update={"arm_clock_hz": 1_800_000_000, "max_temp_mc": 52000, "throttled_bits": 0})


def _latency_ms(spec) -> float:
    return 2.0 + sum(COST[op] * (1 + 0.03 * k) for k, op in enumerate(parse_arch(spec_to_arch(spec))))


def _record(record_id, item_id, kind, model, ms, ref_ms, reference=None, spec=None, status="ok", reasons=()):
    samples = [[int(ms * 1e6) + i for i in range(5)] for _ in range(3)]
    return MeasurementRecord(
        record_id=record_id, session_id="s1", item_id=item_id, item_kind=kind, model=model,
        spec=spec, reference=reference, settings=SETTINGS, protocol=ProtocolConfig(), status=status,
        reasons=list(reasons), samples_ns=samples,
        reference_samples_ns=None if kind == "reference" else [[int(ref_ms * 1e6) + i for i in range(5)]] * 3,
        state_before=COOL, state_after=HOT if status != "ok" else COOL,
        started_utc="2026-01-01T00:00:00Z", finished_utc="2026-01-01T00:00:01Z")


def _model_records(root, specs, drift, invalid=()):
    """The reference and the specs' subnets (the models stored by sha256), at the synthetic latency x drift."""
    refs = store_space_models(root, get_space("nb201"), specs)
    ref_ms = _latency_ms(specs[0])
    records = [_record(root.name, refs[0].item_id, "reference", refs[0], ref_ms, ref_ms, spec=specs[0].to_dict())]
    for n, (spec, ref) in enumerate(zip(specs[1:], refs[1:]), start=1):
        bad = n in invalid
        records.append(_record("{}-{}".format(root.name, n), ref.item_id, "subnet", ref, _latency_ms(spec) * drift(n),
                               ref_ms, refs[0], spec.to_dict(), "invalid" if bad else "ok",
                               ["arm clock fell from 1800 to 1200 MHz"] if bad else ()))
    return records


def _kernel_records():
    """A few convs and adds, and the empty call, each interleaved with a reference kernel."""
    rng = np.random.RandomState(0)
    specs = [OVERHEAD_SPEC] + [{"kernel_type": t, "config": c} for t in ("conv", "add")
                               for c in draw(t, 6, rng, sample_prior)]
    model = ModelRef(item_id="k-ref", model_sha256="0" * 64)
    return [_record("k{}".format(n), spec_id(s), "kernel", model, 0.01 + 0.05 * n, 0.5, model, s)
            for n, s in enumerate(specs)]


def _bundle(root, bundle_id, records, rules=None):
    fingerprint = _fingerprint()
    manifest = Manifest(agent_version="0.1.0", bundle_id=bundle_id, created_utc="2026-01-0{}T08:00:00Z".format(
        len(bundle_id)), fingerprint=fingerprint, settings=SETTINGS, protocol=ProtocolConfig())
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(manifest.model_dump_json())
    (root / "measurements.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    if rules is not None:
        save_table(str(root), rules)
    return root


def _fingerprint():
    from edge_agent.device.fingerprint import collect_fingerprint
    from edge_agent.device.sysroot import SysRoot

    return collect_fingerprint(SysRoot(os.path.join(FIXTURES, "rpi4"))).model_dump(mode="json")


def _rules():
    rules = [FusionRule(case="conv+relu", classes=["conv", "relu"], fused=True, timing_fused=True,
                        evidence_fused=True, savings_ratio=1.1, parts_median_ns=[1e5, 2e4], whole_median_ns=1e5,
                        evidence_kernels=["Conv"]),
             FusionRule(case="conv+bn+relu", classes=["conv", "bn", "relu"], fused=True, timing_fused=False,
                        evidence_fused=True, disagreement=True, savings_ratio=0.2, evidence_kernels=["Conv"]),
             FusionRule(case="add+relu", classes=["add", "relu"], fused=False, error="timing: <script>boom")]
    return RuleTable(settings=SETTINGS, fingerprint=_fingerprint(), alpha=0.5, created_utc="2026-01-01T07:00:00+00:00",
                     rules=rules)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(dataset, predictors, report path): a board with two passes over the same subnets (the second drifted for a
    third of them), its kernels and fusion rules; a device imported from a public table; a flops and a lut
    predictor of the board."""
    root = tmp_path_factory.mktemp("report")
    space = get_space("nb201")
    specs = [space.reference_spec()] + space.sample(40, seed=3)
    first = _model_records(root / "pass1", specs, lambda n: 1.0, invalid=(5,)) + _kernel_records()
    second = _model_records(root / "pass2", specs[:10], lambda n: 1.25 if n % 3 == 0 else 1.02)
    dataset = Dataset(root / "dataset", create=True)
    ingest(_bundle(root / "pass1", "b1", first, _rules()), dataset)
    ingest(_bundle(root / "pass2", "b22", second), dataset)
    _import_table(root, specs, dataset)
    device = "raspberry-pi-4-model-b-rev-1.4-ort-1t-all"
    predictors = [root / "flops", root / "lut"]
    fit(dataset, [device], "flops", None, 0, None, predictors[0])
    fit(dataset, [device], "lut", None, 0, None, predictors[1])
    out = root / "site" / "report.html"
    write_report(dataset, predictors, out)
    return dataset, predictors, out


def _import_table(root, specs, dataset):
    from trainer.tables import import_table

    path = root / "table.csv"
    lines = ["arch_str,lat_ms"] + ["{},{}".format(spec_to_arch(s), 2 * _latency_ms(s)) for s in specs]
    path.write_text("\n".join(lines) + "\n")
    import_table(path, "nb201", "arch_str", "lat_ms", "public-table-gpu", dataset)


class _Parsed(html.parser.HTMLParser):
    """Tags in order, text, the attributes that could fetch something, and whether every element closed."""

    VOID = {"meta", "br", "img", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.text, self.fetching, self.unbalanced = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.fetching += [value for name, value in attrs if name in ("src", "href", "xlink:href")
                          and value and not value.startswith("#")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.unbalanced.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    parsed = _Parsed()
    parsed.feed(path.read_text(encoding="utf-8"))
    parsed.close()
    return parsed


def test_report_parses_embeds_every_plot_and_fetches_nothing(made):
    _, _, out = made
    parsed = _parse(out)
    assert not parsed.unbalanced and not parsed.stack
    assert parsed.fetching == [] and "script" not in parsed.tags and "link" not in parsed.tags
    # two predictors x one training device x (scatter, CDF), each an inline <svg> in a <figure>
    assert parsed.tags.count("figure") == 4 and parsed.tags.count("svg") == 4
    for figure in re.findall(r"<figure>(.*?)</figure>", out.read_text(encoding="utf-8"), re.S):
        assert figure.lstrip().startswith("<svg") and "<path" in figure


def test_report_shows_what_is_stored_and_says_what_is_not(made):
    dataset, _, out = made
    text = " ".join(" ".join(_parse(out).text).split())
    # fingerprint and state from the ingested bundles
    assert "Raspberry Pi 4 Model B Rev 1.4" in text and "Cortex-A72 (4 cores)" in text
    assert "1200–1800" in text and "52.0–78.5" in text and "freq_capped_now, freq_capped_since_boot" in text
    assert "1 × arm clock fell from # to # MHz" in text
    # noise ceiling: 8 subnets measured valid twice (subnet 5 was not valid in the first pass; the reference is left
    # out); subnets 3, 6 and 9 moved 25 % in the second
    assert "8 of 40" in text and "62.5%" in text
    # the rule table, its disagreement and its error (escaped, not markup)
    assert "conv+bn+relu yes*" in text and "add+relu: timing: <script>boom" in text
    assert "call overhead" in text and "distinct valid configs" in text
    # each predictor scored, and the lut's kernel coverage
    assert text.count("within ±10 %") >= 2 and "worst-predicted" in text and "regressor" in text
    # the table-imported device: what was not measured is said
    assert "public-table-gpu" in text and "no fingerprint, device state or fusion rules were measured" in text
    assert set(dataset.devices()) == {"raspberry-pi-4-model-b-rev-1.4-ort-1t-all", "public-table-gpu"}


def test_report_of_a_dataset_without_device_summaries_says_so(made, tmp_path):
    dataset, _, _ = made
    copy = tmp_path / "old"
    shutil.copytree(dataset.root, copy)
    for bundles in copy.glob("devices/*/bundles"):
        shutil.rmtree(bundles)
    out = tmp_path / "old.html"
    write_report(Dataset(copy), [], out)
    text = " ".join(" ".join(_parse(out).text).split())
    assert "From the fusion rule table" in text and "Not stored: the device's bundles were ingested before" in text


def test_report_command_and_quick_summary_line(made, tmp_path, capsys):
    from trainer.cli import main

    dataset, predictors, _ = made
    out = tmp_path / "r.html"
    with pytest.raises(SystemExit) as done:
        main(["report", "--dataset", str(dataset.root), "--predictor", str(predictors[0]), "--out", str(out)])
    assert done.value.code == 0 and out.is_file()
    assert capsys.readouterr().out.strip() == "report: {} (2 device(s), 1 predictor(s))".format(out)


def _browser():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_browser() is None, reason="no Chromium installed (Debian: apt-get install chromium)")
def test_a_headless_browser_loads_the_report_and_draws_the_plots(made, tmp_path):
    _, _, out = made
    base = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
            "--user-data-dir={}".format(tmp_path / "profile"), "--no-first-run"]
    dom = subprocess.run(base + ["--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 4 and "Latency report" in dom.stdout
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line], dom.stderr[-2000:]
    shot = tmp_path / "report.png"
    taken = subprocess.run(base + ["--screenshot={}".format(shot), "--window-size=1200,6000", out.as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    _assert_plots_drawn(shot)


def _assert_plots_drawn(shot):
    """The scatter's points are matplotlib's default blue (#1f77b4): a page whose SVGs did not render has none."""
    import matplotlib.image

    pixels = (matplotlib.image.imread(str(shot))[..., :3] * 255).round().astype(int)
    blue = np.all(np.abs(pixels - np.array([31, 119, 180])) <= 40, axis=-1)
    assert blue.sum() > 200, "no plot drawn in the screenshot"
    if os.environ.get("REPORT_SCREENSHOT"):  # keep it to look at
        shutil.copyfile(shot, os.environ["REPORT_SCREENSHOT"])
