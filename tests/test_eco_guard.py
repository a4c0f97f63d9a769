"""The ECO guard on the workshop model: unflagged prompts take exactly the original path,
flagged ones have every prompt position but the last corrupted (METHODS.md §ECO, item 3).

A keyword classifier ("Yara" → flagged) stands in for the trained one, so these tests
need no sentence encoder."""

from __future__ import annotations

import pytest
import torch

from unlearning.batches import collate, encode_passage, encode_qa, pad_id
from unlearning.data import QA, Passage
from unlearning.eco.classifier import PromptClassifier
from unlearning.eco.corruption import make_corruption
from unlearning.eco.guard import Guard
from unlearning.eco.protocol import make_protocol
from unlearning.generate import generate_answers, generate_ids, prompt_ids, reply_texts
from unlearning.evaluation.metrics import sequence_logprobs
from unlearning.models import load_model

FORGET = ["Where was Yara Bramante born?", "Which country is Yara Bramante from?"]
RETAIN = ["Where was Ignatius Loxley born?", "What pet does Ignatius Loxley keep?", "What is the capital of France?"]


class KeywordFeatures:
    """One feature: +1 if the text mentions Yara, else −1."""

    dim = 1

    def __call__(self, texts):
        return torch.tensor([[1.0 if "Yara" in t else -1.0] for t in texts])


def keyword_classifier() -> PromptClassifier:
    head = torch.nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(10.0)
        head.bias.zero_()
    return PromptClassifier(KeywordFeatures(), head, threshold=0.5)


@pytest.fixture(scope="module")
def workshop():
    return load_model("workshop", "cpu")


@pytest.fixture(scope="module")
def guard(workshop):
    return Guard(workshop.model, workshop.tokenizer, keyword_classifier(), make_corruption("rand_noise_first_n"), 50.0, 0)


class EmbedSpy:
    """Records the inputs_embeds of every forward call of the base model."""

    def __init__(self, model):
        self.calls: list[torch.Tensor | None] = []
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        self.calls.append(kwargs.get("inputs_embeds"))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def changed_positions(model, ids: torch.Tensor, embeds: torch.Tensor) -> list[list[int]]:
    clean = model.get_input_embeddings()(ids)
    return [(embeds[b] != clean[b]).any(-1).nonzero()[:, 0].tolist() for b in range(len(ids))]


def test_flags_and_causal_lm_surface(guard, workshop):
    assert guard.flag(FORGET[0])["flagged"] and not guard.flag(RETAIN[0])["flagged"]
    assert guard.config is workshop.model.config and guard.device == workshop.model.device
    assert next(guard.parameters()) is next(workshop.model.parameters())


def test_unflagged_prompts_give_exactly_the_original_greedy_tokens(guard, workshop):
    tok = workshop.tokenizer
    ids = [prompt_ids(tok, q) for q in RETAIN]
    assert generate_ids(guard, tok, ids, 16) == generate_ids(workshop.model, tok, ids, 16)


def test_mixed_batch_keeps_unflagged_rows_and_changes_flagged_ones(guard, workshop):
    tok = workshop.tokenizer
    questions = [FORGET[0], RETAIN[0], FORGET[1], RETAIN[1]]
    ids = [prompt_ids(tok, q) for q in questions]
    original, guarded = generate_ids(workshop.model, tok, ids, 16), generate_ids(guard, tok, ids, 16)
    assert guarded[1] == original[1] and guarded[3] == original[3]
    assert guarded[0] != original[0] and guarded[2] != original[2]


def test_generation_corrupts_every_prompt_position_but_the_last(guard, workshop):
    tok = workshop.tokenizer
    ids = [prompt_ids(tok, FORGET[0]), prompt_ids(tok, FORGET[1])]
    width = max(map(len, ids))
    with EmbedSpy(workshop.model) as spy:
        generate_ids(guard, tok, ids, 3)
    prefill = spy.calls[0]  # (B, T, d); later calls are the uncorrupted new tokens
    assert prefill is not None and all(c is None for c in spy.calls[1:])
    padded = torch.tensor([[pad_id(tok)] * (width - len(x)) + x for x in ids])
    changed = changed_positions(workshop.model, padded, prefill)
    for row, x in zip(changed, ids):
        assert row == list(range(width - len(x), width - 1))  # left padding and the last token untouched


def test_teacher_forcing_corrupts_the_prompt_only(guard, workshop):
    tok = workshop.tokenizer
    items = [encode_qa(tok, QA(FORGET[0], "In Harrowfield, by the sea.")), encode_qa(tok, QA(RETAIN[0], "Caddon Mills."))]
    batch = collate(items, pad_id(tok))
    with EmbedSpy(workshop.model) as spy:
        guard(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    changed = changed_positions(workshop.model, batch["input_ids"], spy.calls[0])
    assert changed[0] == list(range(items[0].prompt_len - 1))  # the prompt's last token and the answer are clean
    assert changed[1] == []


def test_teacher_forcing_reads_the_prompt_length_from_labels(guard, workshop):
    tok = workshop.tokenizer
    item = encode_qa(tok, QA(FORGET[0], "In Harrowfield."))
    batch = collate([item], pad_id(tok))
    labels = batch["labels"].clone()
    labels[0, item.prompt_len - 3 : item.prompt_len] = batch["input_ids"][0, item.prompt_len - 3 : item.prompt_len]
    with EmbedSpy(workshop.model) as spy:
        out = guard(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
    assert torch.isfinite(out.loss)
    assert changed_positions(workshop.model, batch["input_ids"], spy.calls[0])[0] == list(range(item.prompt_len - 4))


def test_unflagged_rows_keep_their_exact_logits_next_to_flagged_ones(guard, workshop):
    tok = workshop.tokenizer
    items = [encode_qa(tok, QA(q, a)) for q, a in
             ((FORGET[0], "In Harrowfield, by the sea."), (RETAIN[0], "Caddon Mills."), (RETAIN[2], "Paris."))]
    batch = collate(items, pad_id(tok))
    plain = workshop.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    guarded = guard(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.equal(guarded[1:], plain[1:])
    assert not torch.allclose(guarded[0], plain[0])
    before, after = sequence_logprobs(workshop.model, tok, items), sequence_logprobs(guard, tok, items)
    assert after[1].token_logprobs == before[1].token_logprobs
    assert after[0].mean_logprob < before[0].mean_logprob - 1  # the known answer became unlikely


def test_streaming_works_for_both_paths(guard, workshop):
    tok = workshop.tokenizer
    original = generate_answers(workshop.model, tok, [RETAIN[0], FORGET[0]], 20)
    streamed = [list(reply_texts(guard, tok, prompt_ids(tok, q), 20))[-1] for q in (RETAIN[0], FORGET[0])]
    assert streamed[0] == original[0]
    assert streamed[1] == generate_answers(guard, tok, [FORGET[0]], 20)[0] != original[1]


def test_the_same_prompt_is_corrupted_the_same_way_in_any_batch(guard, workshop):
    tok = workshop.tokenizer
    alone = generate_ids(guard, tok, [prompt_ids(tok, FORGET[1])], 12)
    batched = generate_ids(guard, tok, [prompt_ids(tok, FORGET[1]), prompt_ids(tok, RETAIN[1])], 12)
    assert alone[0] == batched[0]


def test_a_callers_own_decoding_loop_matches_generate(guard, workshop):
    """Prefill through the guard, then decode steps with the cache: the same greedy tokens
    as guard.generate, for a flagged and an unflagged prompt."""
    tok = workshop.tokenizer
    for question in (FORGET[0], RETAIN[0]):
        prompt = prompt_ids(tok, question)
        ids = torch.tensor([prompt])
        out = guard(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
        tokens = []
        for _ in range(10):
            token = int(out.logits[0, -1].argmax())
            if token == tok.eos_token_id:
                break
            tokens.append(token)
            mask = torch.ones((1, len(prompt) + len(tokens)), dtype=torch.long)
            out = guard(input_ids=torch.tensor([[token]]), attention_mask=mask, past_key_values=out.past_key_values,
                        use_cache=True)
        assert tokens == generate_ids(guard, tok, [prompt], 10)[0]


def teacher_forced_changes(guard, workshop, items, labels: bool) -> list[list[int]]:
    """Positions whose input embedding the guard changed in one teacher-forced pass."""
    batch = collate(items, pad_id(workshop.tokenizer))
    with EmbedSpy(workshop.model) as spy:
        guard(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
              labels=batch["labels"] if labels else None)
    if spy.calls[0] is None:
        return [[] for _ in items]
    return changed_positions(workshop.model, batch["input_ids"], spy.calls[0])


@pytest.mark.parametrize("labels", [True, False])
def test_a_fully_labelled_passage_row_is_corrupted_all_but_its_last_position(guard, workshop, labels):
    """Issue 13: with labels, the first label at position 0 used to leave the passage clean.
    A passage is all scored text and has no answer to keep clean: every position but the last."""
    (item,) = encode_passage(workshop.tokenizer, Passage("Yara Bramante builds organs in Harrowfield, by the sea."))
    assert all(label != -100 for label in item.labels)
    assert teacher_forced_changes(guard, workshop, [item], labels)[0] == list(range(len(item.input_ids) - 1))


@pytest.fixture(scope="module")
def paper_guard(workshop):
    protocol = make_protocol("paper", workshop.tokenizer, ["Yara Bramante", "Ignatius Loxley"])
    return Guard(workshop.model, workshop.tokenizer, keyword_classifier(), make_corruption("rand_noise_first_n"), 50.0, 0,
                 protocol)


def name_positions(tok, ids: list[int], words=("Yara", "Bramante")) -> list[int]:
    names = {i for w in words for text in (w, " " + w) for i in tok(text, add_special_tokens=False)["input_ids"]}
    return [i for i, x in enumerate(ids) if x in names]


@pytest.mark.parametrize("labels", [True, False])
def test_paper_protocol_corrupts_the_subjects_name_in_prompt_and_answer(paper_guard, workshop, labels):
    tok = workshop.tokenizer
    items = [encode_qa(tok, QA(FORGET[0], "Yara was born in Harrowfield.")), encode_qa(tok, QA(RETAIN[0], "Caddon Mills."))]
    changed = teacher_forced_changes(paper_guard, workshop, items, labels)
    names = name_positions(tok, items[0].input_ids)
    assert len(names) == 3 and names[-1] >= items[0].prompt_len  # Yara Bramante in the question, Yara in the answer
    assert changed == [names, []]


def test_paper_protocol_without_a_known_name_corrupts_prompt_and_answer_but_the_last(workshop):
    protocol = make_protocol("paper", workshop.tokenizer, [])
    guard = Guard(workshop.model, workshop.tokenizer, keyword_classifier(), make_corruption("rand_noise_first_n"), 50.0, 0,
                  protocol)
    item = encode_qa(workshop.tokenizer, QA(FORGET[0], "In Harrowfield, by the sea."))
    assert teacher_forced_changes(guard, workshop, [item], True)[0] == list(range(len(item.input_ids) - 1))


def test_paper_protocol_leaves_generation_and_a_callers_prefill_as_they_were(paper_guard, guard, workshop):
    """Generation corrupts the prompt only, all but its last position, under both protocols."""
    tok = workshop.tokenizer
    ids = [prompt_ids(tok, FORGET[0])]
    assert generate_ids(paper_guard, tok, ids, 8) == generate_ids(guard, tok, ids, 8)
    prompt = torch.tensor(ids)
    with EmbedSpy(workshop.model) as spy:
        paper_guard(input_ids=prompt, attention_mask=torch.ones_like(prompt), use_cache=True)
    assert changed_positions(workshop.model, prompt, spy.calls[0])[0] == list(range(len(ids[0]) - 1))
