"""Errors raised by kernels/. They derive from ValueError: kernels/ cannot import edge_agent.errors, so the
CLI maps KernelsError to its own one-line error output."""


class KernelsError(ValueError):
    """Bad input to a builder or a space, explained in one line."""


class SpaceError(KernelsError):
    """An unknown space, a malformed subnet spec, or a spec that names no valid network (an unreachable cell)."""
