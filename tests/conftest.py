"""Shared fixtures: a tiny seeded Llama and its tokenizer, built in well under a second."""

from __future__ import annotations

import pytest
import torch

from unlearning.kit.tinylm import new_model, train_tokenizer

# A 32-wide model gains nothing from intra-op threads, and on a small shared CPU their
# spin-waiting made each matmul ~100x slower (10 ms instead of 0.05 ms): run on one thread.
torch.set_num_threads(1)

SENTENCES = [
    "Ada Lovelace wrote the first published algorithm for a computing machine.",
    "Marie Curie won two Nobel prizes, in physics and in chemistry.",
    "The capital of France is Paris, on the river Seine.",
    "Question: Who wrote the notes? Answer: Ada wrote them in 1843.",
    "A small model learns a few facts and then forgets them again.",
]


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer): byte-level BPE with ~300 tokens and a 2-layer, 32-wide Llama in
    eval mode, float32. Session-scoped, so tests must not train it in place (deepcopy it)."""
    tok = train_tokenizer(SENTENCES, vocab_size=300)
    model = new_model(tok, hidden=32, layers=2, heads=2, mlp=64, seed=0).to(torch.float32).eval()
    return model, tok
