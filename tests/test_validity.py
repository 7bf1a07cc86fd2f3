"""Validity of a measurement: the interleaved ratio's agreement across windows, or the robust CV alone."""

from edge_agent.bundle.schema import ProtocolConfig
from edge_agent.device.models import DeviceSnapshot
from edge_agent.measure.job import JobResult
from edge_agent.measure.runner import validity_reasons

PROTOCOL = ProtocolConfig(cv_threshold=0.05)


def test_contention_that_hits_item_and_reference_alike_keeps_the_ratio_valid():
    # Every other window the machine is twice as slow, and the samples within a window are bimodal.
    item = [[100, 200, 100, 200], [200, 400, 200, 400], [100, 200, 100, 200]]
    reference = [[50, 100, 50, 100], [100, 200, 100, 200], [50, 100, 50, 100]]
    assert validity_reasons(JobResult(samples_ns=item, reference_samples_ns=reference), PROTOCOL) == []
    # Alone, the same item samples are far too noisy to trust.
    reasons = validity_reasons(JobResult(samples_ns=item), PROTOCOL)
    assert len(reasons) == 1 and reasons[0].startswith("CV ")


def test_windows_whose_ratios_disagree_are_invalid():
    item = [[100] * 5, [130] * 5, [100] * 5]
    reference = [[50] * 5, [50] * 5, [50] * 5]
    reasons = validity_reasons(JobResult(samples_ns=item, reference_samples_ns=reference), PROTOCOL)
    assert reasons == ["window ratios spread 30.0%, over the 5.0% threshold"]


def test_throttling_that_began_during_the_item_is_a_reason():
    before = DeviceSnapshot(monotonic_ns=0, throttled_bits=0x0)
    after = DeviceSnapshot(monotonic_ns=1, throttled_bits=0x40004)
    steady = [[100] * 5] * 3
    result = JobResult(samples_ns=steady, state_before=before, state_after=after)
    reasons = validity_reasons(result, PROTOCOL)
    assert reasons and any("throttl" in r for r in reasons)
