"""Errors a user can act on, and the exit codes the CLI maps them to (pyperf style: stable, documented)."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_NOT_READY = 2
EXIT_INVALID = 3  # measured, but the record stayed invalid after its retries
EXIT_INTERRUPTED = 130


class AgentError(Exception):
    """A failure explained in one line; the CLI prints it without a traceback and exits non-zero."""

    exit_code = EXIT_ERROR


class InputError(AgentError):
    """Bad user input: a missing file, not ONNX, dynamic shapes, an unknown option value."""


class RuntimeUnsupported(AgentError):
    """The runtime cannot load or run the model (for example an op it lacks)."""


class BundleError(AgentError):
    """A result bundle is locked, corrupt, of an unknown schema, or cannot be written."""
