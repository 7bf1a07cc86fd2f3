"""`edge-agent profile --space`: subnets generated on the board, measured against the space's reference."""

import pytest
from conftest import run_cli

from edge_agent.bundle.store import read_records
from edge_agent.stats import interleaved_ratio

FAST = ["--protocol", "quick", "--warmup-time", "0.05", "--min-time", "0.15", "--cv-threshold", "10"]


@pytest.mark.parametrize("space, runtime", [("cifar-supernet", "ort"), ("nb201", "mnn")])
def test_space_profile_records_specs_and_ratios(tmp_path, space, runtime):
    from kernels.spaces import get_space

    out = str(tmp_path / "bundle")
    args = ["edge_agent", "profile", "--out", out, "--space", space, "--subnets", "3", "--seed", "7",
            "--runtime", runtime] + FAST
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    records = read_records(out).records
    reference_id = get_space(space).reference_spec().id
    subnets = [r for r in records if r.item_kind == "subnet"]
    references = [r for r in records if r.item_kind == "reference"]
    assert len({r.item_id for r in subnets}) == 3 and len(references) == 2
    assert all(r.item_id == reference_id for r in references)
    for record in subnets:
        assert record.reference.item_id == reference_id
        assert record.spec["space"] == space and get_space(space).spec_from_dict(record.spec).id == record.item_id
        assert record.model.model_path is None  # specs travel, not weights
        assert interleaved_ratio(record.samples_ns, record.reference_samples_ns) > 0
    again = run_cli(*args)
    assert "0 item(s)" in again.stdout and "3 already done" in again.stdout
    assert len(read_records(out).records) == len(records)


def test_unknown_space_is_a_one_line_error(tmp_path):
    result = run_cli("edge_agent", "profile", "--out", str(tmp_path / "b"), "--space", "imagenet-everything")
    assert result.returncode == 1 and result.stderr.startswith("error: unknown space 'imagenet-everything'")
