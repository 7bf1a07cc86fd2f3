"""Parent side of the measuring child: per-item timeout, crash isolation, restart.

The child is a fresh interpreter (`python -m edge_agent.measure.child FD`) talking over a socketpair, not a
multiprocessing Process: spawn would also start multiprocessing's resource tracker, a third interpreter that costs
~13 MB on a board where the whole agent aims at 150 MB."""

import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
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
            if self._process.poll() is not None:
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
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._kill()

    def _start(self) -> None:
        parent_end, child_end = socket.socketpair()
        command = [sys.executable, "-m", "edge_agent.measure.child", str(child_end.fileno())]
        if self._cpus:
            command.append(",".join(str(cpu) for cpu in self._cpus))
        self._process = subprocess.Popen(command, pass_fds=(child_end.fileno(),), stdin=subprocess.DEVNULL)
        child_end.close()
        self._conn = Connection(os.dup(parent_end.fileno()))
        parent_end.close()

    def _died(self) -> JobResult:
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        code = self._process.returncode
        self._conn.close()
        self._process = None
        self._conn = None
        return JobResult(error="the runtime crashed: {}".format(_describe_exit(code)))

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        if self._conn is not None:
            self._conn.close()
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
