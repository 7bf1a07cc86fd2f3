import math

import pytest

from edge_agent.stats import interleaved_ratio, summarize, window_ratios


def test_summary_of_known_samples():
    summary = summarize([[100, 200, 300], [400, 500]])
    assert summary.runs == 5
    assert summary.median_ns == 300
    assert summary.window_medians_ns == [200, 450]
    assert summary.iqr_ns == 200
    assert summary.cv == pytest.approx(158.11388 / 300, rel=1e-5)


def test_interleaved_ratio_cancels_drift():
    # The machine slows down by 2x in the second window; the ratio must not notice.
    item = [[200, 200, 200], [400, 400, 400]]
    reference = [[100, 100, 100], [200, 200, 200]]
    assert window_ratios(item, reference) == [2.0, 2.0]
    assert interleaved_ratio(item, reference) == 2.0
    assert summarize(item).median_ns == 300  # the absolute median moved with the drift


def test_empty_and_mismatched_inputs_raise():
    with pytest.raises(ValueError):
        summarize([[]])
    with pytest.raises(ValueError):
        interleaved_ratio([[1]], [[1], [2]])


def test_robust_cv_ignores_a_single_spike():
    samples = [[1000] * 50 + [100000]]
    summary = summarize(samples)
    assert summary.robust_cv == 0
    assert summary.cv > 1
    assert not math.isnan(summary.robust_cv)
