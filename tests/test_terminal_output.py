"""What the commands print fits an 80-column terminal or a CI log: no line is wider, and a long device name stays
whole on one line instead of being folded into a column of fragments."""

import io

import numpy as np
from conftest import FIXTURES
from rich.console import Console

from trainer.evaluation import Evaluation
from trainer.metrics import score
from trainer.summary import DeviceSummary

WIDTH = 80
LONG = "nvidia-jetson-xavier-nx-developer-kit-mnn-6t-high-winograd1"  # 59 characters, as real names go
SHORT = "x86-64-amd-epyc-2c-ort-1t-all"


def _render(draw) -> str:
    console = Console(width=WIDTH, record=True, color_system=None, file=io.StringIO())
    draw(console)
    return console.export_text()


def _assert_fits(text: str, *names: str) -> None:
    lines = text.splitlines()
    assert lines and all(len(line) <= WIDTH for line in lines), "\n".join(l for l in lines if len(l) > WIDTH)
    for name in names:
        assert any(name in line for line in lines), "{} is not on one line:\n{}".format(name, text)


def test_evaluate_table_fits_80_columns_with_the_device_name_whole():
    from trainer.terminal import evaluation_summary, print_evaluation

    measured = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = measured * np.array([1.02, 0.9, 1.2, 1.01])
    result = Evaluation(LONG, "training device (unseen items)", 0, 12.3, ["a", "b", "c", "d"], measured, predicted,
                        score(measured, predicted))
    text = _render(lambda console: print_evaluation(result, console))
    _assert_fits(text, LONG, "within ±10 %", "Kendall τ")
    assert evaluation_summary(result) == LONG + ": 75.0% of 4 item(s) within ±10 % (MAPE 8.2 %, Spearman 1.000)"


def test_devices_table_fits_80_columns_with_every_device_name_whole():
    from trainer.terminal import print_devices

    summaries = [DeviceSummary(LONG, "mnn", 6, "high-winograd1", 1234, 1200, 7.891),
                 DeviceSummary(SHORT, "ort", 1, "all", 101, 101, 12.5),
                 DeviceSummary("public-table-gpu", "table", None, None, 15625, 15625, None)]
    text = _render(lambda console: print_devices(summaries, console))
    _assert_fits(text, LONG, SHORT, "public-table-gpu", "3 device(s), 16960 row(s), 16926 valid")
    figures = text.splitlines()[text.splitlines().index(LONG) + 1]
    assert figures.split() == ["mnn", "6", "high-winograd1", "1234", "1200", "34", "7.891"]


def test_fusion_rules_and_cores_tables_fit_80_columns():
    from edge_agent.commands.fusion import RULE_HEADERS, rule_rows
    from edge_agent.commands.info import fingerprint_tables
    from edge_agent.device.fingerprint import collect_fingerprint
    from edge_agent.device.sysroot import SysRoot
    from edge_agent.fusion.rules import FusionRule, RuleTable
    from edge_agent.report import narrow_table

    rules = RuleTable(settings={"runtime": "ort", "runtime_version": "1.32.0", "threads": 1}, alpha=0.5,
                      created_utc="2026-01-01T00:00:00Z",
                      rules=[FusionRule(case="conv+relu|multi", classes=["conv", "relu"], fused=True,
                                        timing_fused=False, evidence_fused=True, disagreement=True,
                                        savings_ratio=-1991.23, parts_median_ns=[123456.0, 7890.0],
                                        whole_median_ns=130000.0, evidence_kernels=["FusedConv", "Relu"])])
    text = _render(lambda console: console.print(narrow_table(RULE_HEADERS, rule_rows(rules), numeric=range(4, 8))))
    _assert_fits(text, "conv+relu|multi", "yes*", "-1991.23")
    fingerprint = collect_fingerprint(SysRoot("{}/xavier_nx".format(FIXTURES)))
    text = _render(lambda console: [console.print(t) for t in fingerprint_tables(fingerprint)])
    _assert_fits(text, "schedutil", "hw max")
