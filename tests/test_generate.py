"""unlearning/generate.py: one prompt format, batched greedy equals one-by-one, streaming."""

from __future__ import annotations

from unlearning.generate import PLAIN_FORMAT, format_prompt, generate_answers, stream_answer


def test_plain_format_without_chat_template(tiny):
    _, tok = tiny
    assert format_prompt(tok, " Who? ") == PLAIN_FORMAT.format(question="Who?") == "Question: Who?\nAnswer:"


def test_chat_template_is_used_when_present(tiny):
    import copy

    _, tok = tiny
    tok = copy.deepcopy(tok)
    tok.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
    assert format_prompt(tok, "Who?") == "<|user|>Who?<|assistant|>"


def test_batched_left_padded_greedy_equals_one_by_one(tiny):
    model, tok = tiny
    questions = ["Who wrote the notes?", "What is the capital of France, on the river?", "Hi"]
    batched = generate_answers(model, tok, questions, max_new_tokens=6)
    single = [generate_answers(model, tok, [q], max_new_tokens=6)[0] for q in questions]
    assert batched == single


def test_stream_grows_to_the_greedy_answer(tiny):
    model, tok = tiny
    pieces = list(stream_answer(model, tok, "Who wrote the notes?", max_new_tokens=6))
    assert pieces and pieces[-1] == generate_answers(model, tok, ["Who wrote the notes?"], max_new_tokens=6)[0]
    assert all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))


def test_a_chat_reply_has_room_for_a_biography_and_never_passes_the_limit():
    from unlearning.generate import reply_tokens
    from unlearning.limits import CHAT_NEW_TOKENS, MAX_NEW_TOKENS

    assert reply_tokens(None) == CHAT_NEW_TOKENS >= 120
    assert reply_tokens(10) == 10 and reply_tokens(10_000) == MAX_NEW_TOKENS
