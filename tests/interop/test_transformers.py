"""``TransformersBackend`` (torch + transformers, which read the GGUF file themselves) on the packaged
SmolLM2 gives the hidden states of the NumPy ``GGUFBackend``, steered or not.

Both dequantise the same Q4_1 tensors to float32. The two forward passes differ only in the order of
float32 additions (torch's GEMM blocking vs NumPy's BLAS): over 30 blocks that drift stays below
1e-3 of the states' scale (|h| up to ~100 at the last blocks), hence ``atol = 1e-3 · max|h|``.
"""

from __future__ import annotations

import numpy as np
import pytest

from latentatlas.lm.backends import GGUFBackend, TransformersBackend
from latentatlas.lm.gguf import default_gguf_path

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def backends():
    path = default_gguf_path()
    tb = TransformersBackend(str(path.parent), gguf_file=path.name, model_name="smollm2", local_files_only=True)
    return GGUFBackend(path, threads=2), tb


def _close(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-3 * float(np.abs(b).max()))


def test_hidden_states_match_gguf_backend(backends):
    gg, tb = backends
    ours, theirs = gg.hidden_states(CHAT, "Paris."), tb.hidden_states(CHAT, "Paris.")
    np.testing.assert_array_equal(ours.token_ids, theirs.token_ids)
    _close(theirs.states, ours.states)


def test_control_vector_steers_both_the_same_way(backends, tmp_path):
    gg, tb = backends
    rng = np.random.default_rng(0)
    d = rng.standard_normal((gg.num_layers, gg.hidden_size)).astype(np.float32)
    d[0] = 0.0
    d[:4] = d[12:] = 0.0  # steer blocks 4..11
    clean = tb.hidden_states(CHAT, "Paris.").states
    ours = gg.hidden_states(CHAT, "Paris.", control_vector=d, scale=2.0).states
    theirs = tb.hidden_states(CHAT, "Paris.", control_vector=d, scale=2.0).states
    assert not np.allclose(theirs, clean, atol=1e-2)  # the vector really moved the states
    _close(theirs, ours)
    assert gg.generate(CHAT, 8, control_vector=d, scale=2.0) == tb.generate(CHAT, 8, control_vector=d, scale=2.0)
