"""The steering table of the README: projections of answers generated at several control-vector scales.

Run in the folder where the README's three commands wrote ``pv/`` and ``cv.gguf``::

    python benches/steering_effect.py [--store pv] [--control-vector cv.gguf]

(a) the steered model's answer states at block 20 (above the steered band 6..15) and (b) the unsteered
model's states of the generated texts at block 24, each projected on the unit cheerful-minus-grumpy
direction of the store at that block, averaged over three prompts.
"""

from __future__ import annotations

import argparse

import numpy as np

from latentatlas.datasets import persona_prompts
from latentatlas.lm.backends import GGUFBackend
from latentatlas.personas.attributes import PersonaAttributeTable
from latentatlas.personas.steering import attribute_groups, mean_difference_directions, read_control_vector
from latentatlas.personas.store import PersonaVectorStore

PROMPTS = ["How was your day?", "Describe the weather today.", "What do you think of Mondays?"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", default="pv")
    ap.add_argument("--control-vector", default="cv.gguf")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    args = ap.parse_args()
    be = GGUFBackend()
    cv = read_control_vector(args.control_vector)
    store = PersonaVectorStore("SmolLM2-135M-Instruct.Q4_1", args.store, "prompt_mean")
    p = persona_prompts()
    pos, neg = attribute_groups(PersonaAttributeTable(p), "temperament", "cheerful", "grumpy", [x["id"] for x in p])
    probe = mean_difference_directions(store, "persona_prompts", pos, neg, layers=[20, 24])
    u20, u24 = (probe[i] / np.linalg.norm(probe[i]) for i in (20, 24))
    chats = [[{"role": "user", "content": q}] for q in PROMPTS]
    print("| scale | (a) steered states, block 20 | (b) texts re-read unsteered, block 24 | first answer |")
    for scale in (-1.0, -0.5, 0.0, 0.5, 1.0):
        hs = be.generate_hidden(chats, args.max_new_tokens, control_vector=cv, scale=scale)
        a = np.mean([h.states[20][h.answer_mask].mean(0) @ u20 for h in hs])
        b = np.mean([be.hidden_states(c, h.answer).pooled("answer_mean")[24] @ u24 for c, h in zip(chats, hs)])
        print(f"| {scale:+g} | {a:.1f} | {b:.1f} | {hs[0].answer} |")


if __name__ == "__main__":
    main()
