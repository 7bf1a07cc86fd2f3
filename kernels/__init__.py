"""Torch-free ONNX model builders, graph analysis and model spaces.

Imports only onnx and numpy, so it runs on a board (Python 3.8+); edge_agent, lut and trainer build on it.
"""
