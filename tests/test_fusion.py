"""Fusion detection on the real runtimes: conv+bn+relu runs as one kernel on onnxruntime EXTENDED/ALL and on MNN,
as three with onnxruntime's optimizations disabled; the squeeze-excite gate fuses on onnxruntime only; rule tables
round-trip through the bundle."""

import json

import pytest
from conftest import run_cli

from edge_agent.bundle.schema import ProtocolConfig, RunSettings
from edge_agent.fusion.cases import CASES_BY_NAME, build_case
from edge_agent.fusion.detect import detect_fusion, timing_test
from edge_agent.fusion.rules import load_tables

SHORT = ProtocolConfig(warmup_min_runs=3, warmup_min_time_ns=20_000_000, min_runs=6, min_time_ns=60_000_000,
                       windows=3, timeout_s=120.0)


def _settings(runtime, level=None):
    from edge_agent.runtimes import get_runtime

    return RunSettings(runtime=runtime, runtime_version=get_runtime(runtime).version(), threads=1,
                       ort_graph_optimization_level=level if runtime == "ort" else None,
                       mnn_precision="high" if runtime == "mnn" else None)


@pytest.mark.parametrize("runtime,level,fused", [
    ("ort", "extended", True), ("ort", "all", True), ("mnn", None, True), ("ort", "disable", False)])
def test_conv_bn_relu(runtime, level, fused):
    cases = [CASES_BY_NAME["conv+bn+relu"], CASES_BY_NAME["conv+relu|multi"]]
    table = detect_fusion(_settings(runtime, level), SHORT, cases)
    chain, multi = table.rules
    assert chain.classes == ["conv", "bn", "relu"]
    assert chain.evidence_fused is fused and chain.fused is fused
    assert len(chain.evidence_kernels) == (1 if fused else 3)
    assert chain.timing_fused is not None and len(chain.parts_median_ns) == 3 and chain.whole_median_ns > 0
    assert chain.disagreement == (chain.timing_fused != chain.evidence_fused)
    # a conv whose output is also needed elsewhere cannot absorb its relu
    assert multi.evidence_fused is False and multi.fused is False
    assert (("conv", "relu") in table.absorbed()) is fused
    # layouts: blocked convs on onnxruntime ALL (NCHWc) and MNN (NC4HW4), each with its conversions timed
    blocks = runtime == "mnn" or level == "all"
    assert table.layout.is_blocked("conv", 32) is blocks
    assert [c.channels for c in table.layout.costs] == ([16, 16, 32, 32, 64] if blocks else [])
    assert all(c.chain_median_ns > 0 and 0 < c.single_ratio < 1.5 for c in table.layout.costs)


@pytest.mark.parametrize("runtime,level,fused", [("ort", "extended", True), ("ort", "basic", False),
                                                 ("mnn", None, False)])
def test_the_squeeze_excite_gate(runtime, level, fused):
    """onnxruntime runs Conv+HardSigmoid as one FusedConv from EXTENDED up; MNN's converter splits HardSigmoid
    into a multiply, an add and a ReLU6 after the conv."""
    table = detect_fusion(_settings(runtime, level), SHORT, [CASES_BY_NAME["conv+hsigmoid"]])
    gate = table.rules[0]
    assert gate.classes == ["conv", "hsigmoid"] and gate.evidence_fused is fused and gate.fused is fused
    assert len(gate.evidence_kernels) == (1 if fused else 2 if runtime == "ort" else 4)
    assert (("conv", "hsigmoid") in table.absorbed()) is fused


def test_basic_level_folds_bn_only():
    cases = [CASES_BY_NAME["conv+bn"], CASES_BY_NAME["conv+relu"], CASES_BY_NAME["conv+bn+relu"]]
    table = detect_fusion(_settings("ort", "basic"), SHORT, cases)
    by_case = {rule.case: rule for rule in table.rules}
    assert by_case["conv+bn"].evidence_fused is True
    assert by_case["conv+relu"].evidence_fused is False
    assert by_case["conv+bn+relu"].evidence_kernels == ["Conv", "Relu"]
    assert by_case["conv+bn+relu"].evidence_fused is False


def test_timing_test_arithmetic():
    # parts 0.6 + 0.6 of the whole, no overhead: saving 0.2 < 0.5 * 0.6 -> separate
    assert not timing_test([0.6, 0.6], 0.0).fused
    # conv 1.0 + relu 0.3 of the whole: the relu vanished -> fused
    assert timing_test([1.0, 0.3], 0.0).fused
    # the same pair, but each separate call paid an overhead of 0.25 that the whole paid once
    verdict = timing_test([0.6 + 0.25, 0.6 + 0.25], 0.25)
    assert verdict.savings_ratio == pytest.approx((1.2 - 0.75) / 0.6)


def test_case_split_keeps_every_node():
    models = build_case(CASES_BY_NAME["se"])
    assert len(models.parts) == len(models.whole.graph.node) == 6
    assert models.classes[0] == "global_avgpool" and models.classes[-1] == "mul"
    assert all(len(part.graph.node) == 1 for part in models.parts)


def test_cli_json_and_bundle(tmp_path):
    bundle = tmp_path / "bundle"
    result = run_cli("edge_agent", "detect-fusion", "--case", "conv+relu", "--case", "add+relu", "--json",
                     "--protocol", "quick", "--warmup-time", "0.02", "--min-time", "0.06", "--opt-level", "extended",
                     "--out", str(bundle))
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [rule["case"] for rule in printed["rules"]] == ["conv+relu", "add+relu"]
    assert printed["rules"][0]["fused"] is True and printed["settings"]["ort_graph_optimization_level"] == "extended"
    tables = load_tables(str(bundle))
    assert len(tables) == 1 and tables[0].rules[0].evidence_kernels == ["FusedConv"]
    assert tables[0].layout.model_dump() == printed["layout"] and printed["layout"]["source"] == "ort-optimized-graph"


def test_cli_unknown_case_is_one_line_error():
    result = run_cli("edge_agent", "detect-fusion", "--case", "conv+nothing")
    assert result.returncode != 0 and "unknown fusion case" in result.stderr and "Traceback" not in result.stderr
