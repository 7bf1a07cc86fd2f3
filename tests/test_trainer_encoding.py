"""Graph encoding from ONNX: space models and a hand-built graph."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kernels.analysis import analyze
from kernels.spaces import get_space
from trainer.encoding import (
    DEFAULT_VOCABULARY,
    NUMERIC_FEATURES,
    encode_model,
    feature_count,
)
from trainer.encoding_cache import EncodingCache

OTHER = len(DEFAULT_VOCABULARY)
GLOBAL = OTHER + 1
NUMERIC = OTHER + 2


def _hand_built() -> onnx.ModelProto:
    """Conv 3x3 stride 2 (8 -> 16 ch, 2 groups) -> Relu -> Softsign (not in the vocabulary) -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 4, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal((10, 16)).astype(np.float32), "fc_w")]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Softsign", ["r"], ["s"]),
        helper.make_node("GlobalAveragePool", ["s"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc_w"], ["y"], transB=1),
    ]
    graph = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def test_hand_built_graph_features_and_edges():
    enc = encode_model(_hand_built())
    assert enc.x.shape == (7, feature_count(DEFAULT_VOCABULARY))
    assert np.all(enc.x[:, :NUMERIC].sum(1) == 1)  # exactly one op-type slot per node
    assert enc.x[0, DEFAULT_VOCABULARY.index("Conv")] == 1
    assert enc.x[2, OTHER] == 1  # Softsign is not in the vocabulary
    assert enc.x[6, GLOBAL] == 1
    conv = dict(zip(NUMERIC_FEATURES, np.expm1(enc.x[0, NUMERIC:])))
    assert round(conv["kernel_h"]) == 3 and round(conv["stride_w"]) == 2 and round(conv["groups"]) == 1  # groups-1
    assert round(conv["cin"]) == 8 and round(conv["cout"]) == 16 and round(conv["in_h"]) == 32
    expected_flops = 2 * 16 * 16 * 16 * 4 * 9
    assert abs(conv["flops"] - expected_flops) / expected_flops < 1e-4
    edges = set(map(tuple, enc.edge_index.T.tolist()))
    assert {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)} <= edges
    assert (1, 0) not in edges  # directed: data flows one way
    assert all((i, 6) in edges and (6, i) in edges for i in range(6))  # the global node joins every node
    assert len(edges) == 5 + 12
    assert round(float(np.expm1(enc.static[4]))) == 1  # batch
    assert round(float(np.expm1(enc.static[3]))) == 8 * 32 * 32  # input elements


def test_space_models_encode_consistently():
    space = get_space("nb201")
    reference = space.build(space.reference_spec())
    small = space.build(space.sample(1, seed=3)[0])
    big_enc, small_enc = encode_model(reference), encode_model(small)
    assert big_enc.x.shape[0] == len(analyze(reference)) + 1
    assert big_enc.total_flops > small_enc.total_flops > 0
    assert abs(big_enc.total_flops - sum(i.flops for i in analyze(reference))) / big_enc.total_flops < 1e-4
    n = big_enc.x.shape[0]
    assert big_enc.edge_index.max() == n - 1 and big_enc.edge_index.min() == 0


def test_cache_round_trip_by_model_hash(tmp_path):
    model = _hand_built()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    cache = EncodingCache(tmp_path / "enc")
    first = cache.for_file(path)
    again = EncodingCache(tmp_path / "enc").for_file(path)  # a fresh cache reads it back from disk
    assert np.array_equal(first.x, again.x) and np.array_equal(first.edge_index, again.edge_index)
    assert len(list((tmp_path / "enc").rglob("*.npz"))) == 1
