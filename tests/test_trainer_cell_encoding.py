"""Cell-level encoding of nb201: the cell's graph, the network's static totals, every arch its own encoding."""

import hashlib

import numpy as np
import pytest

from edge_agent.errors import InputError
from kernels.spaces import get_space
from kernels.spaces.nb201 import EDGES, all_cells, parse_arch
from trainer.cell_encoding import NB201_CELL_VOCABULARY, cell_space, encode_nb201_cell
from trainer.encoding import DEFAULT_VOCABULARY, encode_model
from trainer.encoding_cache import EncodingCache

REFERENCE = ("nor_conv_3x3",) * 6


def test_cell_graph_follows_the_cell_edges():
    enc = encode_nb201_cell(("skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3", "nor_conv_3x3", "none"))
    assert enc.x.shape[0] == 9  # input, 6 edge ops, output, global
    ops = [NB201_CELL_VOCABULARY[int(np.argmax(row[:len(NB201_CELL_VOCABULARY)]))] for row in enc.x[:8]]
    assert ops == ["input", "skip_connect", "nor_conv_1x1", "none", "avg_pool_3x3", "nor_conv_3x3", "none", "output"]
    edges = {tuple(e) for e in enc.edge_index.T.tolist() if 8 not in e}
    # edge k = EDGES[k-1] = (to, from): reads node `from` (the input, or the edges into it); edges into node 3 feed
    # the output
    assert edges == {(0, 1), (0, 2), (1, 3), (0, 4), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)}
    assert len(EDGES) == 6
    dead = NB201_CELL_VOCABULARY.index("dead")
    assert enc.x[:8, dead].tolist() == [0, 0, 1, 1, 0, 0, 1, 0]  # off every input-output path, or `none`


def test_static_totals_equal_the_onnx_encodings():
    space = get_space("nb201")
    for spec in space.sample(4, seed=5) + [space.reference_spec()]:
        onnx_static = np.expm1(encode_model(space.build(spec)).static.astype(np.float64))
        cell_static = np.expm1(encode_nb201_cell(parse_arch(spec.choices["arch"])).static.astype(np.float64))
        assert np.allclose(cell_static, onnx_static, rtol=1e-4)


def test_every_cell_has_its_own_encoding():
    encodings = [encode_nb201_cell(c) for c in all_cells()[::7]]
    keys = {hashlib.sha256(e.x.tobytes() + e.edge_index.tobytes()).hexdigest() for e in encodings}
    assert len(keys) == len(encodings)


def test_cell_mode_is_a_vocabulary_and_refuses_onnx_models():
    assert cell_space(NB201_CELL_VOCABULARY) == "nb201" and cell_space(DEFAULT_VOCABULARY) == ""
    cache = EncodingCache(None, NB201_CELL_VOCABULARY)
    space = get_space("nb201")
    enc = cache.for_spec(space.reference_spec().to_dict())
    assert np.array_equal(enc.x, encode_nb201_cell(REFERENCE).x)
    with pytest.raises(InputError, match="not ONNX"):
        cache.for_model(space.build(space.reference_spec()))
