"""The language models whose latents latentatlas maps, run offline.

- :mod:`.minilm` — all-MiniLM-L6-v2 sentence embeddings through onnxruntime (extra ``[text]``);
  serves the sparse-autoencoder area.
- :mod:`.llama` — a LLaMA-family decoder forward pass in NumPy (KV cache, batched decoding).
- :mod:`.gguf` — GGUF files read and dequantised into :mod:`.llama` weights (extra ``[llm]``).
- :mod:`.chat` — the GGUF file's own BPE tokenizer and chat template (extra ``[llm]``).
- :mod:`.control_vector` — llama.cpp control-vector GGUF files (steering directions): write, read,
  and a residual-stream hook that applies them with llama.cpp's layer numbering.
- :mod:`.backends` — chat backends (GGUF in NumPy, or transformers) that return per-layer
  hidden states and pool them over prompt or answer tokens; serves the personas area.

Nothing here knows about personas or sparse autoencoders. Importing this package imports no
optional dependency; each module asks :mod:`latentatlas._optional` when a feature is used.
"""

from __future__ import annotations
