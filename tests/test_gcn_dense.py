"""The GCN's prediction paths (trainer.predictors.gcn: forward_eval over dense_batch or sparse_batch, and log_heads,
which picks one per sorted batch) give the numbers of the torch-geometric message passing it is trained with, on
ONNX-level and cell-level graphs and padded mixed batches."""

import numpy as np
import pytest
import torch

from kernels.spaces import get_space
from kernels.spaces.nb201 import all_cells
from trainer.cell_encoding import NB201_CELL_VOCABULARY, encode_nb201_cell
from trainer.encoding import (
    DEFAULT_VOCABULARY,
    GraphEncoding,
    encode_model,
    feature_count,
)
from trainer.predictors.gcn import GCNPredictor, dense_batch, sparse_batch


def _predictor(vocabulary, hidden: int, batch: int) -> GCNPredictor:
    """Random weights and normalisation, two heads: outputs that differ per graph, so a wrong path shows."""
    torch.manual_seed(3)
    predictor = GCNPredictor({"hidden": hidden, "layers": 3, "heads": 2, "predict_batch_size": batch},
                             vocabulary=vocabulary)
    with torch.no_grad():
        for name, value in predictor.net.state_dict().items():
            if "mean" in name:
                value.normal_()
            elif "std" in name:
                value.uniform_(0.5, 2.0)
            elif "bias" in name:
                value.normal_(0.0, 0.1)
    return predictor


def _message_passing(predictor: GCNPredictor, encodings) -> np.ndarray:
    predictor.net.eval()
    with torch.no_grad():
        return predictor._forward(encodings).numpy()


def _odd_graph(width: int, nodes: int, seed: int) -> GraphEncoding:
    """Random edges with a repeated edge and a self-loop (gcn_norm's corner cases), global node last."""
    rng = np.random.default_rng(seed)
    edges = rng.integers(0, nodes - 1, size=(2, 2 * nodes))
    edges = np.concatenate([edges, edges[:, :1], [[1], [1]]], axis=1)
    glob = np.stack([np.arange(nodes - 1), np.full(nodes - 1, nodes - 1)])
    edge_index = np.concatenate([edges, glob, glob[::-1]], axis=1).astype(np.int64)
    return GraphEncoding(rng.random((nodes, width), dtype=np.float32), edge_index,
                         rng.random(6, dtype=np.float32))


def _assert_same(predictor: GCNPredictor, encodings) -> None:
    reference = _message_passing(predictor, encodings)
    assert np.ptp(reference[:, 0]) > 1e-3  # the graphs give different outputs: a mixed-up order would fail
    with torch.no_grad():
        outputs = {batch.__name__: predictor.net.forward_eval(*batch(encodings)).numpy()
                   for batch in (dense_batch, sparse_batch)}
    outputs["log_heads"] = predictor.log_heads(encodings)
    for name, output in outputs.items():
        assert output.shape == reference.shape == (len(encodings), 2)
        np.testing.assert_allclose(np.exp(output), np.exp(reference), rtol=1e-5, atol=0, err_msg=name)


@pytest.fixture(scope="module")
def onnx_encodings():
    specs = {"nb201": 3, "cifar-supernet": 2}
    return [encode_model(get_space(name).build(spec)) for name, n in specs.items()
            for spec in get_space(name).sample(n, seed=5)]


@pytest.mark.parametrize("batch", [512, 2])
def test_onnx_level_graphs_of_different_sizes(onnx_encodings, batch):
    assert len({e.x.shape[0] for e in onnx_encodings}) > 1
    _assert_same(_predictor(DEFAULT_VOCABULARY, 48, batch), onnx_encodings)


@pytest.mark.parametrize("batch", [512, 3])
def test_cell_level_graphs(batch):
    cells = [encode_nb201_cell(cell) for cell in all_cells()[::1500]]
    _assert_same(_predictor(NB201_CELL_VOCABULARY, 64, batch), cells)


def test_padded_batch_with_repeated_edges_and_self_loops():
    width = feature_count(NB201_CELL_VOCABULARY)
    cells = [encode_nb201_cell(cell) for cell in all_cells()[:4]]
    mixed = [_odd_graph(width, nodes, seed) for seed, nodes in enumerate((5, 30, 12))] + cells
    _assert_same(_predictor(NB201_CELL_VOCABULARY, 32, 512), mixed)


def test_no_encodings_give_no_rows():
    assert _predictor(DEFAULT_VOCABULARY, 16, 512).log_heads([]).shape == (0, 2)
