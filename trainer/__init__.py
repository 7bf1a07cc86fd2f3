"""Workstation side: ingest measurement bundles and public tables, encode ONNX graphs, fit and evaluate predictors.

Heavy dependencies (torch, torch_geometric, pyarrow, matplotlib) are imported inside the modules that need them,
so `trainer --help` stays fast."""
