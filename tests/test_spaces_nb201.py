"""nb201: arch strings, reachability, every edge computed, the reference network's FLOPs counted by hand, sampling."""

import collections
import csv
import os

import pytest

from kernels.analysis import model_flops
from kernels.errors import SpaceError
from kernels.spaces import get_space, spec_from_dict
from kernels.spaces.nb201 import all_cells, arch_to_spec, format_arch, parse_arch, spec_to_arch

CSV = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nb201", "nb201_latency.csv")
REFERENCE_ARCH = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                  "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
DEAD_END = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"


def test_string_round_trip_for_every_cell():
    for cell in all_cells():
        arch = format_arch(cell)
        assert parse_arch(arch) == cell
    assert spec_to_arch(arch_to_spec(REFERENCE_ARCH)) == REFERENCE_ARCH


def test_reference_and_unreachable_count_match_the_public_table():
    space = get_space("nb201")
    assert space.reference_spec().choices["arch"] == REFERENCE_ARCH
    assert 15625 - space.num_choices() == 341  # the README of the shared table counts 341 disconnected cells
    if not os.path.exists(CSV):
        pytest.skip("shared NB201 table not present")
    with open(CSV, newline="") as handle:
        rows = {int(r["nb201_index"]): r for r in csv.DictReader(handle)}
    assert rows[1462]["arch_str"] == REFERENCE_ARCH
    dead = [r["arch_str"] for r in rows.values() if r["output_connected"] == "0"]
    for arch in dead[:50]:
        with pytest.raises(SpaceError):
            arch_to_spec(arch)


def test_unreachable_cell_is_refused_with_a_clear_error():
    with pytest.raises(SpaceError, match="not reachable"):
        arch_to_spec(DEAD_END)
    with pytest.raises(ValueError):
        space = get_space("nb201")
        space.spec_from_dict({"space": "nb201", "space_version": space.version, "choices": {"arch": DEAD_END}})
    with pytest.raises(SpaceError, match="op~"):
        arch_to_spec(REFERENCE_ARCH.replace("nor_conv_3x3~1", "conv_7x7~1"))


def _hand_count_reference() -> int:
    """Independent count of the all-3x3 network's FLOPs (multiply-add = 2; folded BN leaves a conv bias)."""
    def conv(cin, cout, k, h, bias=True):
        return 2 * cout * h * h * cin * k * k + (cout * h * h if bias else 0)

    total = conv(3, 16, 3, 32)
    for stage, (c, h) in enumerate(((16, 32), (32, 16), (64, 8))):
        if stage:
            cin, hin = c // 2, h * 2
            total += cin * hin * hin + conv(cin, c, 3, h) + c * h * h + conv(c, c, 3, h)  # relu, conv, relu, conv
            total += cin * h * h * 4 + conv(cin, c, 1, h, bias=False) + c * h * h  # avgpool 2x2, 1x1, add
        per_cell = 6 * c * h * h + 6 * conv(c, c, 3, h) + 3 * c * h * h  # a relu and a conv per edge, 3 adds
        total += 5 * per_cell
    total += 2 * 64 * 64 + 64 * 64 + 64 * 64  # BN, ReLU, global average pool over 8x8
    return total + 2 * 64 * 10 + 10


def test_reference_flops_match_hand_count():
    space = get_space("nb201")
    assert model_flops(space.build(space.reference_spec())) == _hand_count_reference()


def test_sampling_is_uniform_deterministic_and_valid():
    space = get_space("nb201")
    first, again, other = space.sample(40, seed=7), space.sample(40, seed=7), space.sample(40, seed=8)
    assert [s.id for s in first] == [s.id for s in again] != [s.id for s in other]
    assert len({s.id for s in first}) == 40
    assert space.reference_spec().id not in {s.id for s in first}
    assert all(spec_from_dict(s.to_dict()) == s for s in first)
    ops = [op for s in first for op in parse_arch(s.choices["arch"])]
    assert all(ops.count(op) > 20 for op in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"))
    with pytest.raises(SpaceError):
        space.sample(20000, seed=0)


def _op_counts(arch: str) -> collections.Counter:
    model = get_space("nb201").build(arch_to_spec(arch))
    return collections.Counter(node.op_type for node in model.graph.node)


def test_every_edge_is_computed_as_nb201_defines():
    """15 cells; per cell: a Mul by zero per `none`, a ReLU+Conv per conv edge, a pool per avg_pool, 3 adds."""
    base = _op_counts("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert base["Mul"] == 15 * 5 and base["Add"] == _op_counts(REFERENCE_ARCH)["Add"]
    dead_branch = _op_counts("|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert dead_branch["Mul"] == 15 * 2 and dead_branch["AveragePool"] - base["AveragePool"] == 15
    assert dead_branch["Relu"] - base["Relu"] == 15 * 2 and dead_branch["Conv"] - base["Conv"] == 15 * 2


def test_archs_that_version_1_merged_build_different_networks():
    """v1 dropped `none` edges and edges off the input-output paths: these three were one network there."""
    archs = ["|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
             "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|",
             "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|none~2|"]
    space = get_space("nb201")
    models = [space.build(arch_to_spec(a)).graph.SerializeToString() for a in archs]
    assert len(set(models)) == 3
    flops = [model_flops(space.build(arch_to_spec(a))) for a in archs]
    assert flops[0] < flops[1] < flops[2]
