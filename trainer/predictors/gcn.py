"""BRP-NAS-style graph convolutional predictor (Dudziak et al., NeurIPS 2020): GCN layers over the ONNX graph with a
global node joined to every node; the global node's embedding (with the static features) is read out.

Training runs torch-geometric's message passing. Prediction runs the same network as matrix products over the
normalised adjacency (BRP-NAS's own formulation), several times faster on these small graphs than gathering and
scattering per edge: dense and padded per batch for graphs of up to DENSE_MAX_NODES nodes (cell-level encodings), one
sparse block-diagonal matrix for larger ones (ONNX-level: 66 to 246 nodes for NB201), where the dense product's N^2
cost outgrows the transform's (timings in docs/benchmarks-trainer.md). tests/test_gcn_dense.py holds every path
equal."""

from typing import Optional, Sequence, Tuple

import numpy as np

from trainer.encoding import STATIC_FEATURES, GraphEncoding, feature_count
from trainer.predictors import register
from trainer.predictors.base import FitHistory, ProgressFn
from trainer.predictors.heads import TorchHeadsPredictor
from trainer.predictors.torch_fit import initial_bias, train_module

DENSE_MAX_NODES = 32


def collate(encodings: Sequence[GraphEncoding]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Many graphs as one disconnected graph: (x, edge_index, global-node index per graph, static)."""
    sizes = np.fromiter((e.x.shape[0] for e in encodings), dtype=np.int64, count=len(encodings))
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    x = np.concatenate([e.x for e in encodings])
    edges = np.concatenate([e.edge_index + off for e, off in zip(encodings, offsets)], axis=1)
    static = np.stack([e.static for e in encodings])
    return x, edges, offsets + sizes - 1, static


def dense_batch(encodings: Sequence[GraphEncoding]):
    """forward_eval()'s arguments with the graphs padded to the batch's largest (N nodes): x [B, N, F] and the
    normalised adjacency [B, N, N] as batched products; padded nodes have no edges, so they never reach a real node.

    The adjacency is GCNConv's gcn_norm made dense: self-loops replace any present (weight 1), repeated edges add up,
    Â[t, s] = d_t^-1/2 · A[t, s] · d_s^-1/2 with d the in-degree of the target (messages flow source -> target)."""
    import torch

    sizes = np.fromiter((e.x.shape[0] for e in encodings), dtype=np.int64, count=len(encodings))
    n_max = int(sizes.max())
    graph = np.repeat(np.arange(len(sizes)), sizes)
    node = np.arange(len(graph)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    x = torch.zeros(len(sizes), n_max, encodings[0].x.shape[1])
    x[graph, node] = torch.from_numpy(np.concatenate([e.x for e in encodings]))
    counts = np.fromiter((e.edge_index.shape[1] for e in encodings), dtype=np.int64, count=len(encodings))
    source, target = np.concatenate([e.edge_index for e in encodings], axis=1)
    edge_graph = np.repeat(np.arange(len(sizes)), counts)
    keep = source != target
    adj = torch.zeros(len(sizes), n_max, n_max)
    adj.index_put_(tuple(torch.from_numpy(a[keep]) for a in (edge_graph, target, source)),
                   torch.ones(int(keep.sum())), accumulate=True)
    adj[graph, node, node] = 1.0
    scale = adj.sum(dim=2).pow_(-0.5)
    scale.masked_fill_(torch.isinf(scale), 0.0)
    adj.mul_(scale.unsqueeze(2)).mul_(scale.unsqueeze(1))
    glob_rows = adj[torch.arange(len(sizes)), torch.from_numpy(sizes - 1)].unsqueeze(1)
    static = torch.from_numpy(np.stack([e.static for e in encodings]))
    return x, lambda h: torch.bmm(adj, h), lambda h: torch.bmm(glob_rows, h).squeeze(1), static


def sparse_batch(encodings: Sequence[GraphEncoding]):
    """forward_eval()'s arguments with the graphs as one disconnected graph: x [nodes, F] and gcn_norm's normalised
    adjacency as one sparse block-diagonal matrix."""
    import torch
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    x, edges, glob, static = (torch.from_numpy(a) for a in collate(encodings))
    (source, target), weight = gcn_norm(edges, None, x.shape[0], add_self_loops=True)
    adj = torch.sparse_coo_tensor(torch.stack([target, source]), weight, (x.shape[0], x.shape[0]),
                                  check_invariants=False).coalesce()
    glob_rows = torch.index_select(adj, 0, glob)
    return x, lambda h: torch.sparse.mm(adj, h), lambda h: torch.sparse.mm(glob_rows, h), static


def _net(in_dim: int, static_dim: int, layers: int, hidden: int, dropout: float, heads: int):
    import torch
    from torch_geometric.nn import GCNConv
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    class GCNNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for name, size in (("x_mean", in_dim), ("x_std", in_dim), ("s_mean", static_dim), ("s_std", static_dim)):
                self.register_buffer(name, torch.zeros(size) if "mean" in name else torch.ones(size))
            # The symmetric normalisation is the same for every layer: computed once per batch in forward().
            self.convs = torch.nn.ModuleList(GCNConv(in_dim if i == 0 else hidden, hidden, normalize=False)
                                             for i in range(layers))
            self.head = torch.nn.Sequential(torch.nn.Linear(hidden + static_dim, hidden), torch.nn.ReLU(),
                                            torch.nn.Linear(hidden, heads))

        def forward(self, x, edge_index, glob, static):
            h = (x - self.x_mean) / self.x_std
            edge_index, weight = gcn_norm(edge_index, None, x.shape[0], add_self_loops=True)
            for conv in self.convs:
                h = torch.nn.functional.dropout(torch.relu(conv(h, edge_index, weight)), dropout, self.training)
            s = (static - self.s_mean) / self.s_std
            return self.head(torch.cat([h[glob], s], dim=1))

        def forward_eval(self, x, aggregate, read_out, static):
            """forward() in eval mode with the adjacency applied by aggregate(h) (every node's row) and read_out(h)
            (the global nodes' rows), from dense_batch() or sparse_batch(). Only the global node is read out, so the
            last layer aggregates its row first and transforms it after: (Â_g h) W = Â_g (h W)."""
            h = (x - self.x_mean) / self.x_std
            for conv in self.convs[:-1]:
                h = aggregate(conv.lin(h)).add_(conv.bias).relu_()  # in place: ~10 % faster
            last = self.convs[-1]
            h = torch.relu(last.lin(read_out(h)) + last.bias)
            s = (static - self.s_mean) / self.s_std
            return self.head(torch.cat([h, s], dim=1))

    return GCNNet()
@register("gcn")
class GCNPredictor(TorchHeadsPredictor):
    defaults = {"layers": 4, "hidden": 600, "dropout": 0.05, "lr": 5e-4, "weight_decay": 5e-4, "epochs": 250,
                "patience": 25, "batch_size": 64, "predict_batch_size": 512}

    def build(self) -> None:
        self.net = _net(feature_count(self.vocabulary), len(STATIC_FEATURES), int(self.hyper["layers"]),
                        int(self.hyper["hidden"]), float(self.hyper["dropout"]), self.n_heads)
        self.net.eval()

    def _forward(self, encodings: Sequence[GraphEncoding]):
        import torch

        x, edges, glob, static = collate(encodings)
        return self.net(torch.from_numpy(x), torch.from_numpy(edges), torch.from_numpy(glob), torch.from_numpy(static))

    def fit(self, train, train_y, val, val_y, seed, progress: Optional[ProgressFn] = None) -> FitHistory:
        import torch

        torch.manual_seed(seed)
        self.build()  # seeded initial weights: the same fit for the same seed
        x, _, _, static = collate(train)
        with torch.no_grad():
            for name, data in (("x", x), ("s", static)):
                getattr(self.net, name + "_mean").copy_(torch.from_numpy(data.mean(0)))
                getattr(self.net, name + "_std").copy_(torch.from_numpy(np.maximum(data.std(0), 1e-3)))
            self.net.head[-1].bias.copy_(torch.from_numpy(initial_bias(train_y)))
        check = val if len(val) else train
        return train_module(self.net, lambda index: self._forward([train[i] for i in index]), len(train), train_y,
                            lambda: self.log_heads(check), val_y if len(val) else train_y, self.hyper, seed,
                            progress)

    def log_heads(self, encodings: Sequence[GraphEncoding]) -> np.ndarray:
        """Batches of similar size (sorted by node count), so little of a dense batch is padding."""
        import torch

        self.net.eval()
        size = int(self.hyper["predict_batch_size"])
        nodes = np.fromiter((e.x.shape[0] for e in encodings), np.int64, len(encodings))
        order = np.argsort(nodes, kind="stable")
        out = np.zeros((len(encodings), self.n_heads), np.float32)
        with torch.no_grad():
            for i in range(0, len(order), size):
                index = order[i:i + size]
                batch = dense_batch if nodes[index[-1]] <= DENSE_MAX_NODES else sparse_batch
                out[index] = self.net.forward_eval(*batch([encodings[j] for j in index])).numpy()
        return out
