"""The measuring child process: loads runtimes, times models, answers over a pipe.

It stays alive across items so the reference session is loaded once; a segfault or hang kills only the child,
and the parent (edge_agent.measure.worker) records the failure and starts a fresh one."""

import os
import time
from typing import Dict, Optional, Tuple

from edge_agent.errors import AgentError
from edge_agent.measure.job import Job, JobResult, ModelToRun, session_options
from edge_agent.measure.timing import measure, time_once


def serve(conn, cpus: Optional[Tuple[int, ...]]) -> None:
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    reference_cache: Dict[str, tuple] = {}
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        conn.send(run_job(Job.model_validate(message), reference_cache).model_dump())


def run_job(job: Job, reference_cache: Dict[str, tuple]) -> JobResult:
    from edge_agent.device.snapshot import take_snapshot
    from edge_agent.device.sysroot import SysRoot

    try:
        session, load_ns, first_ns = _open(job.model, job)
        reference = None
        if job.reference is not None:
            key = job.reference.model_dump_json() + job.settings.model_dump_json()
            if key not in reference_cache:
                reference_cache.clear()
                reference_cache[key] = _open(job.reference, job)
            reference = reference_cache[key]
        sysroot = SysRoot(job.sysroot)
        before = take_snapshot(sysroot)
        timings = measure(session.run, reference[0].run if reference else None, job.protocol,
                          lambda: _reopen(job))
        after = take_snapshot(sysroot)
    except AgentError as exc:
        return JobResult(error=str(exc))
    except Exception as exc:  # the runtimes raise their own types (e.g. onnxruntime Fail) for bad models
        return JobResult(error="{}: {}".format(type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else ""))
    return JobResult(
        load_ns=load_ns, first_inference_ns=first_ns, samples_ns=timings.samples_ns,
        reference_load_ns=reference[1] if reference else None,
        reference_first_inference_ns=reference[2] if reference else None,
        reference_samples_ns=timings.reference_samples_ns, warmup_runs=timings.warmup_runs,
        window_load_ns=timings.window_load_ns,
        state_before=before, state_after=after)


def _open(model: ModelToRun, job: Job):
    from edge_agent.runtimes import get_runtime

    runtime = get_runtime(job.settings.runtime)
    start = time.perf_counter_ns()
    session = runtime.open_session(model.onnx_path, model.input_shapes, job.settings.threads, job.settings.input_seed,
                                   **session_options(job.settings, job.mnn_cache_dir))
    load_ns = time.perf_counter_ns() - start
    return session, load_ns, time_once(session.run)


def _reopen(job: Job):
    session, load_ns, _ = _open(job.model, job)
    return session.run, load_ns


def main(argv) -> None:
    """Entry point of the child interpreter: `python -m edge_agent.measure.child FD [CPU,CPU...]`."""
    from multiprocessing.connection import Connection

    cpus = tuple(int(cpu) for cpu in argv[1].split(",")) if len(argv) > 1 else None
    serve(Connection(int(argv[0])), cpus)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
