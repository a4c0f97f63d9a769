"""Chat replies batched across sessions (service/batcher.py, generate.batched_greedy,
lora.mixed_adapters): each row of a shared batch decodes what it decodes alone, in its own
view — the base, a LoRA view with two adapters on (FILA's trained adapter and its offset),
an ECO guard that flags the prompt — and a failed or abandoned request leaves the others whole."""

from __future__ import annotations

import threading

import pytest
import torch

from unlearning.base import RowView, original
from unlearning.eco.corruption import make_corruption
from unlearning.eco.guard import Guard
from unlearning.generate import greedy_tokens, prompt_ids
from unlearning.lora.adapters import Adapters, LoraUnlearned
from unlearning.models import Loaded, load_model
from unlearning.service.batcher import ChatBatcher
from unlearning.service.chat import chat_stream

PROMPTS = ["Where was Ignatius Loxley born?", "What is the capital of France? Answer in one word, please.",
           "Where was Yara Bramante born?", "Hello!"]
TOKENS = 20


class YaraClassifier:
    """A stand-in for ECO's classifier: flags any prompt that names Yara."""

    def flags(self, texts):
        return ["Yara" in t for t in texts]

    def flag(self, text):
        return {"flagged": "Yara" in text, "score": float("Yara" in text), "threshold": 0.5}


@pytest.fixture(scope="module")
def room():
    """(loaded, LoRA artifact with an offset, ECO guard) on the workshop model (10 MB; a random
    tiny model answers everything alike, so a view that were ignored would go unnoticed)."""
    loaded = load_model("workshop", "cpu")
    tok = loaded.tokenizer
    with torch.random.fork_rng():
        torch.manual_seed(0)
        adapters = Adapters.create(loaded.model, "ihl-fila", rank=4, alpha=8, with_offset=True)
        with torch.no_grad():
            for p in adapters.parameters() + adapters.parameters(adapters.offset):
                p.normal_(0, 0.2)
    guard = Guard(loaded.model, tok, YaraClassifier(), make_corruption("rand_noise_first_n"), 50.0, 0)
    yield loaded, LoraUnlearned(loaded, {}, "ihl-fila", adapters), guard
    adapters.remove()


def alone(forward, loaded: Loaded, prompt: str) -> list[int]:
    """The reply decoded by itself, as chat did before batching."""
    ids = prompt_ids(loaded.tokenizer, prompt)
    return list(greedy_tokens(forward, ids, loaded.tokenizer.eos_token_id, TOKENS))


def views(room) -> dict[str, tuple[object, RowView]]:
    """name → (a forward for decoding alone, the same view as a batch row)."""
    loaded, lora, guard = room
    return {"base": (original(loaded.model), RowView()),
            "lora": (lora.proxy("unlearned"), lora.row_view("unlearned")),
            "eco": (lambda **kw: guard(**kw), RowView(prefill=guard.prefill))}


def test_each_row_of_one_batch_equals_its_reply_alone(room):
    loaded = room[0]
    rows, expected = [], []
    for prompt in PROMPTS:
        for forward, view in views(room).values():
            rows.append((prompt_ids(loaded.tokenizer, prompt), view))
            expected.append(alone(forward, loaded, prompt))
    *_, last = ChatBatcher(window_s=0).decode(loaded, rows, TOKENS)
    assert last == expected
    by_view = dict(zip(views(room), expected[-3:]))  # "Hello!": the guard leaves it alone
    assert by_view["eco"] == by_view["base"] != by_view["lora"]
    flagged = dict(zip(views(room), expected[6:9]))  # Yara: flagged, so the guard's reply differs
    assert flagged["eco"] != flagged["base"]


def test_concurrent_callers_share_steps_and_get_their_own_replies(room):
    loaded = room[0]
    calls = []
    hook = loaded.model.register_forward_pre_hook(lambda m, a: calls.append(1))
    names = list(views(room))
    jobs = [(PROMPTS[i % len(PROMPTS)], names[i % 3]) for i in range(6)]
    results: dict[int, list[list[int]]] = {}
    batcher = ChatBatcher(window_s=1.0)  # all six join one batch, even on a busy machine

    def caller(i: int) -> None:
        prompt, name = jobs[i]
        *_, results[i] = batcher.decode(loaded, [(prompt_ids(loaded.tokenizer, prompt), views(room)[name][1])], TOKENS)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(len(jobs))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        hook.remove()
    assert len(calls) <= TOKENS + 1  # one decode for all six (one forward per step), not six
    for i, (prompt, name) in enumerate(jobs):
        assert results[i] == [alone(views(room)[name][0], loaded, prompt)]


def test_a_failing_request_gets_the_error_and_the_others_their_replies(room):
    loaded = room[0]
    broken = RowView(prefill=lambda ids: torch.zeros(len(ids), 7))  # the wrong width: the batch cannot be built
    batcher = ChatBatcher(window_s=0.3)
    out: dict[str, object] = {}

    def caller(name: str, view: RowView) -> None:
        try:
            *_, out[name] = batcher.decode(loaded, [(prompt_ids(loaded.tokenizer, PROMPTS[0]), view)], TOKENS)
        except RuntimeError as e:
            out[name] = e

    threads = [threading.Thread(target=caller, args=a) for a in (("good", RowView()), ("bad", broken))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert out["good"] == [alone(original(loaded.model), loaded, PROMPTS[0])]
    assert isinstance(out["bad"], RuntimeError)


def test_a_caller_that_stops_reading_leaves_the_others_whole(room):
    loaded = room[0]
    batcher = ChatBatcher(window_s=0.3)
    out: dict[str, list] = {}

    def quitter() -> None:
        stream = batcher.decode(loaded, [(prompt_ids(loaded.tokenizer, PROMPTS[1]), RowView())], TOKENS)
        out["quitter"] = next(stream)
        stream.close()  # a closed tab

    def stayer() -> None:
        *_, out["stayer"] = batcher.decode(loaded, [(prompt_ids(loaded.tokenizer, PROMPTS[1]), RowView())], TOKENS)

    threads = [threading.Thread(target=f) for f in (quitter, stayer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = alone(original(loaded.model), loaded, PROMPTS[1])
    # the quitter saw the first step it read: one token, or more where the decoder ran ahead of
    # its reader (decode shows the latest); always a start of the same reply
    (seen,) = out["quitter"]
    assert out["stayer"] == [expected] and seen and seen == expected[:len(seen)]


def test_chat_stream_with_a_batcher_says_what_it_says_alone(room):
    loaded, lora, _ = room
    for prompt in PROMPTS[:2]:
        batched = list(chat_stream(loaded, lora, prompt, TOKENS, ChatBatcher(window_s=0)))[-1]
        assert batched == list(chat_stream(loaded, lora, prompt, TOKENS))[-1]
        assert batched.original != batched.unlearned


def test_a_training_step_waits_while_chat_replies_are_being_decoded(room):
    """The batcher counts the requests it holds on a base (from put to the end of their batch);
    defer_to_chat waits while there are any, at most its limit."""
    import time

    from unlearning import base as artifacts

    loaded = room[0]
    seen: list[int] = []
    hook = loaded.model.register_forward_pre_hook(lambda m, a: seen.append(artifacts._chatting.get(id(loaded.model), 0)))
    try:
        *_, last = ChatBatcher(window_s=0).decode(loaded, [(prompt_ids(loaded.tokenizer, PROMPTS[0]), RowView())], TOKENS)
    finally:
        hook.remove()
    assert last and seen and all(n == 1 for n in seen)  # counted during every decode step
    assert id(loaded.model) not in artifacts._chatting  # and not after
    assert artifacts.defer_to_chat(loaded.model, 5.0) < 0.05  # nobody chatting: no wait
    artifacts.chat_requests(loaded.model, 2)
    try:
        t0 = time.monotonic()
        waited = artifacts.defer_to_chat(loaded.model, 0.2)
        assert 0.2 <= waited < 1.0 and time.monotonic() - t0 >= 0.2  # chatting: waits up to its limit
        threading.Timer(0.1, artifacts.chat_requests, (loaded.model, -2)).start()
        assert 0.05 < artifacts.defer_to_chat(loaded.model, 5.0) < 2.0  # until the replies are done
    finally:
        artifacts._chatting.pop(id(loaded.model), None)
