"""MNN prints a CPU-feature line on stdout from C code at import; it says nothing we do not record elsewhere
and would corrupt machine-readable output, so it goes nowhere."""

import contextlib
import ctypes
import os
import sys


def flush_c_stdio() -> None:
    """C code buffers stdout when it is not a terminal; flush it before fds are swapped back."""
    ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def stdout_silenced():
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        flush_c_stdio()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def import_mnn():
    with stdout_silenced():
        import MNN  # noqa: F401  (imported for its side effect inside the redirect)
        import _tools  # noqa: F401
    return sys.modules["MNN"]
