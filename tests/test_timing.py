"""The timing loop alternates item and reference in bursts, each opened by untimed runs, and keeps every timed run."""

from edge_agent.bundle.schema import ProtocolConfig
from edge_agent.measure.presets import PRESETS
from edge_agent.measure.timing import measure

BURSTS = ProtocolConfig(warmup_min_runs=2, warmup_min_time_ns=0, min_runs=12, min_time_ns=0, windows=2,
                        burst_min_runs=3, burst_min_time_ns=0, burst_warmup_runs=1)


def _calls(protocol):
    log = []
    timings = measure(lambda: log.append("item"), lambda: log.append("ref"), protocol)
    return log, timings


def _runs(log):
    """The log as (name, length) runs of consecutive calls."""
    runs = []
    for name in log:
        if runs and runs[-1][0] == name:
            runs[-1][1] += 1
        else:
            runs.append([name, 1])
    return [tuple(run) for run in runs]


def test_item_and_reference_alternate_in_bursts_after_the_strict_warm_up():
    log, timings = _calls(BURSTS)
    runs = _runs(log)
    assert runs[:4] == [("item", 1), ("ref", 1), ("item", 1), ("ref", 1)]  # the initial warm-up alternates
    assert set(runs[4:]) == {("item", 4), ("ref", 4)}  # 1 untimed + 3 timed per burst
    assert [len(window) for window in timings.samples_ns] == [6, 6]
    assert [len(window) for window in timings.reference_samples_ns] == [6, 6]
    # every timed run is kept: all calls but the warm-up's and the bursts' untimed ones
    bursts = len(runs) - 4
    assert sum(map(len, timings.samples_ns)) + sum(map(len, timings.reference_samples_ns)) == len(log) - 4 - bursts


def test_the_default_config_still_describes_strict_alternation_and_the_presets_burst():
    log, timings = _calls(BURSTS.model_copy(update={"burst_min_runs": 1, "burst_warmup_runs": 0}))
    assert set(_runs(log)) == {("item", 1), ("ref", 1)}
    assert ProtocolConfig().burst_min_runs == 1 and ProtocolConfig().burst_warmup_runs == 0
    for name, preset in PRESETS.items():
        assert preset.burst_warmup_runs >= 1 and preset.burst_min_time_ns > 0, name


def test_without_a_reference_the_item_runs_back_to_back_with_nothing_untimed():
    log = []
    timings = measure(lambda: log.append("item"), None, BURSTS)
    assert timings.reference_samples_ns is None
    assert sum(map(len, timings.samples_ns)) == len(log) - timings.warmup_runs


def test_a_session_per_window_reopens_the_item_for_every_later_window():
    protocol = BURSTS.model_copy(update={"windows": 3, "session_per_window": True})
    log, opened = [], []

    def reopen():
        name = "item{}".format(len(opened) + 1)
        opened.append(name)
        return (lambda: log.append(name)), 1000 + len(opened)

    timings = measure(lambda: log.append("item0"), lambda: log.append("ref"), protocol, reopen)
    assert opened == ["item1", "item2"] and timings.window_load_ns == [1001, 1002]
    items = [name for name in log if name != "ref"]
    assert items == sorted(items)  # each session runs only in its own window, none after the next one opened
    assert all("item{}".format(i) in items for i in range(3)) and len(timings.samples_ns) == 3
    assert measure(lambda: None, None, BURSTS, reopen).window_load_ns is None and len(opened) == 2  # flag off
