"""unlearning/batches.py: label masking, chunking, padding, seeded forget/retain pairing."""

from __future__ import annotations

from unlearning.batches import IGNORE, collate, encode_passage, encode_qa, pad_id, paired_batches
from unlearning.data import QA, Passage
from unlearning.generate import prompt_ids


def test_qa_labels_only_answer_and_eos(tiny):
    _, tok = tiny
    enc = encode_qa(tok, QA("Who wrote the notes?", "Ada wrote them."))
    p = prompt_ids(tok, "Who wrote the notes?")
    assert enc.input_ids[: len(p)] == p and enc.prompt_len == len(p)
    assert enc.labels[: len(p)] == [IGNORE] * len(p)
    assert enc.labels[len(p):] == enc.input_ids[len(p):]
    assert enc.input_ids[-1] == tok.eos_token_id
    assert tok.decode(enc.input_ids[len(p):-1]).strip() == "Ada wrote them."


def test_answer_override_for_paraphrases(tiny):
    _, tok = tiny
    a = encode_qa(tok, QA("Q?", "Ada."), answer="Marie.")
    assert tok.decode(a.input_ids[a.prompt_len:-1]).strip() == "Marie."


def test_passage_chunks_are_fully_labelled(tiny):
    _, tok = tiny
    chunks = encode_passage(tok, Passage("Marie Curie won two Nobel prizes. " * 20), max_len=16)
    assert len(chunks) > 1 and all(len(c.input_ids) <= 16 for c in chunks)
    assert all(c.labels == c.input_ids for c in chunks)


def test_collate_right_pads_with_masked_labels(tiny):
    _, tok = tiny
    items = [encode_qa(tok, QA("Q?", "A long answer here.")), encode_qa(tok, QA("Q?", "A."))]
    b = collate(items, pad_id(tok))
    n0, n1 = len(items[0].input_ids), len(items[1].input_ids)
    assert b["input_ids"].shape == (2, n0)
    assert b["attention_mask"][1].tolist() == [1] * n1 + [0] * (n0 - n1)
    assert (b["labels"][1, n1:] == IGNORE).all()


def test_paired_batches_equal_size_and_seeded(tiny):
    _, tok = tiny
    forget = [encode_qa(tok, QA(f"F{i}?", "x.")) for i in range(5)]
    retain = [encode_qa(tok, QA(f"R{i}?", "y.")) for i in range(7)]
    run = lambda seed: [(b["forget"]["input_ids"].tolist(), b["retain"]["input_ids"].tolist())  # noqa: E731
                        for b in paired_batches(forget, retain, 2, pad_id(tok), seed)]
    first = run(3)
    assert [len(f) for f, _ in first] == [2, 2, 1]
    assert all(len(f) == len(r) for f, r in first)
    assert first == run(3) and first != run(4)
