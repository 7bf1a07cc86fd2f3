"""Kernel profiling on the board: kernel config spaces, a prior from real models' layers (prior.json), and the
adaptive sampling loop (nn-Meter): measure, fit, find badly predicted configs, sample near them, repeat."""
