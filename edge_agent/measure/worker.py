"""Parent side of the measuring child: per-item timeout, crash isolation, restart."""

import multiprocessing
import signal
import time
from typing import Optional, Tuple

from edge_agent.measure.job import Job, JobResult

_POLL_S = 0.2


class Worker:
    def __init__(self, cpus: Optional[Tuple[int, ...]] = None):
        self._cpus = cpus
        self._process = None
        self._conn = None

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def run(self, job: Job, timeout_s: float) -> JobResult:
        if self._process is None:
            self._start()
        self._conn.send(job.model_dump())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._conn.poll(_POLL_S):
                try:
                    return JobResult.model_validate(self._conn.recv())
                except EOFError:
                    return self._died()
            if not self._process.is_alive():
                return self._died()
        self._kill()
        return JobResult(error="timed out after {:.0f} s; the child was killed".format(timeout_s))

    def stop(self) -> None:
        if self._process is None:
            return
        try:
            self._conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self._process.join(timeout=5)
        self._kill()

    def _start(self) -> None:
        from edge_agent.measure.child import serve

        context = multiprocessing.get_context("spawn")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(target=serve, args=(child_conn, self._cpus), daemon=True)
        self._process.start()
        child_conn.close()

    def _died(self) -> JobResult:
        self._process.join(timeout=5)
        code = self._process.exitcode
        self._process = None
        self._conn = None
        return JobResult(error="the runtime crashed: {}".format(_describe_exit(code)))

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=5)
        self._process = None
        self._conn = None


def _describe_exit(code: Optional[int]) -> str:
    if code is None:
        return "the child did not exit"
    if code < 0:
        try:
            return "killed by {}".format(signal.Signals(-code).name)
        except ValueError:
            return "killed by signal {}".format(-code)
    return "exit status {}".format(code)
