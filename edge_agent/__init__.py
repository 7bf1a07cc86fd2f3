"""On-board latency profiler. Keep this import light: no runtimes, no torch."""

__version__ = "0.1.0"
