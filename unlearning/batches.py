"""Examples → token ids with labels, and paired forget/retain batches.

Conventions (METHODS.md §Data conventions): a QA example is its prompt (the question in the
model's chat format) followed by the answer and one end-of-sequence token; only the answer
and EOS carry labels, the prompt and padding are -100. A passage is chunked to at most
`max_len` tokens and every token carries a label.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .data import QA, Dataset, Passage
from .generate import answer_ids, prompt_ids
from .limits import MAX_TOKENS

IGNORE = -100


@dataclass
class Encoded:
    """One training/eval sequence: token ids and labels of the same length."""

    input_ids: list[int]
    labels: list[int]
    prompt_len: int  # tokens before the first labelled one (0 for passages)


def encode_qa(tokenizer, qa: QA, answer: str | None = None, max_len: int = MAX_TOKENS) -> Encoded:
    """Prompt ids + answer ids + EOS; `answer` overrides qa.answer (paraphrases, perturbations)."""
    p = prompt_ids(tokenizer, qa.question)
    a = answer_ids(tokenizer, qa.answer if answer is None else answer)
    p = p[-(max_len - min(len(a), max_len // 2)) :]  # keep the end of an over-long prompt
    a = a[: max_len - len(p)]
    return Encoded(p + a, [IGNORE] * len(p) + a, len(p))


def encode_passage(tokenizer, passage: Passage, max_len: int = MAX_TOKENS) -> list[Encoded]:
    """A passage's tokens in chunks of at most max_len, each fully labelled."""
    ids = tokenizer(passage.text, add_special_tokens=False)["input_ids"]
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id] + ids
    ids = ids + [tokenizer.eos_token_id]
    return [Encoded(ids[i : i + max_len], ids[i : i + max_len], 0) for i in range(0, len(ids), max_len)]


def encode_dataset(tokenizer, ds: Dataset, max_len: int = MAX_TOKENS) -> list[Encoded]:
    out: list[Encoded] = []
    for ex in ds.examples:
        if isinstance(ex, QA):
            out.append(encode_qa(tokenizer, ex, max_len=max_len))
        else:
            out.extend(encode_passage(tokenizer, ex, max_len))
    return out


def collate(items: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest item: input_ids, attention_mask, labels, each (B, T)."""
    T = max(len(it.input_ids) for it in items)
    ids = torch.full((len(items), T), pad_id, dtype=torch.long)
    labels = torch.full((len(items), T), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), T), dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it.input_ids)
        ids[i, :n] = torch.tensor(it.input_ids)
        labels[i, :n] = torch.tensor(it.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def paired_batches(
    forget: list[Encoded], retain: list[Encoded], batch_size: int, pad: int, seed: int, epochs: int = 1
) -> Iterator[dict[str, dict[str, torch.Tensor]]]:
    """{"forget": batch, "retain": batch} of equal size; each forget example is paired with a
    retain example drawn at random (seeded), as METHODS.md asks."""
    rng = random.Random(seed)
    for _ in range(epochs):
        order = list(range(len(forget)))
        rng.shuffle(order)
        for i in range(0, len(order), batch_size):
            f = [forget[j] for j in order[i : i + batch_size]]
            r = [retain[rng.randrange(len(retain))] for _ in f]
            yield {"forget": collate(f, pad), "retain": collate(r, pad)}


def batches(items: list[Encoded], batch_size: int, pad: int) -> Iterator[dict[str, torch.Tensor]]:
    """Fixed-order batches for evaluation."""
    for i in range(0, len(items), batch_size):
        yield collate(items[i : i + batch_size], pad)
