"""Graph encodings cached on disk by model sha256 (and a spec -> sha256 index, so a space model is built once).

DATASET/encodings/v<version>-<vocabulary hash>/<sha256>.npz (numpy arrays only, loaded with allow_pickle=False)."""

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np

from edge_agent.errors import InputError
from trainer.cell_encoding import cell_space, encode_cell_spec
from trainer.encoding import (
    DEFAULT_VOCABULARY,
    ENCODING_VERSION,
    GraphEncoding,
    encode_model,
    model_sha256,
    vocabulary_hash,
)


def spec_key(spec: Dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


def build_spec_model(spec: Dict[str, object]):
    from kernels.spaces import get_space, spec_from_dict

    subnet = spec_from_dict(spec)
    return get_space(subnet.space).build(subnet)


class EncodingCache:
    """A cell-level vocabulary (trainer.cell_encoding) encodes specs from their choices, in memory only (cheap), and
    refuses ONNX files."""

    def __init__(self, root: Optional[Path], vocabulary: Sequence[str] = DEFAULT_VOCABULARY):
        self.vocabulary = tuple(vocabulary)
        self.cell_space = cell_space(self.vocabulary)
        self.dir = Path(root) / "v{}-{}".format(ENCODING_VERSION, vocabulary_hash(vocabulary)) \
            if root and not self.cell_space else None
        self._memory: Dict[str, GraphEncoding] = {}
        self._spec_index: Dict[str, str] = self._read_index()

    def _read_index(self) -> Dict[str, str]:
        path = self.dir / "spec_index.json" if self.dir else None
        return json.loads(path.read_text(encoding="utf-8")) if path and path.exists() else {}

    def flush(self) -> None:
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)
            # A temp name of this process's own: two processes flushing one cache must not replace each other's file.
            tmp = self.dir / "spec_index.json.{}.tmp".format(os.getpid())
            tmp.write_text(json.dumps(self._spec_index, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.dir / "spec_index.json")

    def get(self, sha256: str) -> Optional[GraphEncoding]:
        if sha256 in self._memory:
            return self._memory[sha256]
        path = self.dir / "{}.npz".format(sha256) if self.dir else None
        if path is None or not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            encoding = GraphEncoding(data["x"], data["edge_index"], data["static"])
        self._memory[sha256] = encoding
        return encoding

    def put(self, sha256: str, encoding: GraphEncoding) -> None:
        self._memory[sha256] = encoding
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / "{}.{}.tmp.npz".format(sha256, os.getpid())
            np.savez(tmp, x=encoding.x, edge_index=encoding.edge_index, static=encoding.static)
            os.replace(tmp, self.dir / "{}.npz".format(sha256))

    def for_model(self, model, sha256: Optional[str] = None) -> GraphEncoding:
        if self.cell_space:
            raise InputError("this predictor reads {} cells (--input cell): give --space/--arch or --spec, not ONNX "
                             "models".format(self.cell_space))
        sha256 = sha256 or model_sha256(model)
        cached = self.get(sha256)
        if cached is None:
            cached = encode_model(model, self.vocabulary)
            self.put(sha256, cached)
        return cached

    def for_file(self, path: Path) -> GraphEncoding:
        import onnx

        data = Path(path).read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        cached = self.get(sha256)
        if cached is not None:
            return cached
        from google.protobuf.message import DecodeError

        try:
            model = onnx.load_from_string(data)
        except (DecodeError, ValueError, RuntimeError) as exc:
            raise InputError("{}: not an ONNX model ({})".format(path, type(exc).__name__)) from None
        return self.for_model(model, sha256)

    def for_spec(self, spec: Dict[str, object]) -> GraphEncoding:
        key = spec_key(spec)
        if self.cell_space:
            if key not in self._memory:
                self._memory[key] = encode_cell_spec(spec, self.vocabulary)
            return self._memory[key]
        sha256 = self._spec_index.get(key)
        cached = self.get(sha256) if sha256 else None
        if cached is None:
            model = build_spec_model(spec)
            sha256 = model_sha256(model)
            cached = self.for_model(model, sha256)
            self._spec_index[key] = sha256
        return cached


def _encode_spec_job(job):
    spec, vocabulary = job
    model = build_spec_model(spec)
    encoding = encode_model(model, vocabulary)
    return spec_key(spec), model_sha256(model), encoding.x, encoding.edge_index, encoding.static


def warm_specs(cache: EncodingCache, specs: Sequence[Dict[str, object]], workers: int = 1, progress=None) -> int:
    """Encode the specs not cached yet (building each model once), in `workers` processes; returns how many."""
    todo = [s for s in specs if not (spec_key(s) in cache._spec_index and cache.get(cache._spec_index[spec_key(s)]))]
    jobs = [(s, cache.vocabulary) for s in todo]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.imap_unordered(_encode_spec_job, jobs, chunksize=16)
            _store(cache, results, progress)
    else:
        _store(cache, map(_encode_spec_job, jobs), progress)
    cache.flush()
    return len(todo)


def _store(cache: EncodingCache, results, progress) -> None:
    for count, (key, sha256, x, edge_index, static) in enumerate(results, 1):
        cache.put(sha256, GraphEncoding(x, edge_index, static))
        cache._spec_index[key] = sha256
        if progress is not None and count % 500 == 0:
            progress(count)
            cache.flush()
