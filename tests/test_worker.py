"""The measuring child is isolated: a crash or a hang becomes a failed result and the next item still runs."""

import os
import signal
import threading
import time

from edge_agent.bundle.schema import ProtocolConfig, RunSettings
from edge_agent.measure.job import Job, ModelToRun
from edge_agent.measure.worker import Worker

SETTINGS = RunSettings(runtime="ort", runtime_version="test", threads=1, ort_graph_optimization_level="all")
QUICK = ProtocolConfig(warmup_min_runs=2, warmup_min_time_ns=10_000_000, min_runs=6, min_time_ns=60_000_000)
ENDLESS = QUICK.model_copy(update={"min_time_ns": 60_000_000_000, "max_runs": 10 ** 12})


def job(path, protocol=QUICK):
    return Job(model=ModelToRun(onnx_path=path, input_shapes={"x": [1, 3, 32, 32]}), settings=SETTINGS,
               protocol=protocol)


def _kill_child_when_busy(worker, sig):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        process = worker._process
        if process is not None and process.pid and process.poll() is None:
            time.sleep(1.0)  # let it get into the timing loop
            os.kill(process.pid, sig)
            return
        time.sleep(0.05)


def test_a_segfaulting_child_becomes_a_failed_result_and_the_next_job_runs(tiny_models):
    with Worker() as worker:
        killer = threading.Thread(target=_kill_child_when_busy, args=(worker, signal.SIGSEGV))
        killer.start()
        crashed = worker.run(job(tiny_models[0], ENDLESS), timeout_s=60)
        killer.join()
        assert crashed.error == "the runtime crashed: killed by SIGSEGV"
        after = worker.run(job(tiny_models[1]), timeout_s=60)
        assert after.error is None and sum(len(w) for w in after.samples_ns) >= 6


def test_a_hung_child_is_killed_at_the_timeout(tiny_models):
    with Worker() as worker:
        started = time.monotonic()
        hung = worker.run(job(tiny_models[0], ENDLESS), timeout_s=3)
        assert hung.error.startswith("timed out after 3 s")
        assert time.monotonic() - started < 30
        assert worker.run(job(tiny_models[1]), timeout_s=60).error is None


def test_runtime_errors_come_back_as_text(tmp_path):
    missing = str(tmp_path / "missing.onnx")
    with Worker() as worker:
        result = worker.run(job(missing), timeout_s=60)
    assert result.error and "onnxruntime cannot load" in result.error
