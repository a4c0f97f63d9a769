"""unlearning/generate.py: one prompt format, batched greedy equals one-by-one, streaming;
the CLI's chat and the app's chat decode a reply the same way."""

from __future__ import annotations

import copy

import pytest

from unlearning.generate import (PLAIN_FORMAT, format_prompt, generate_answers, greedy_tokens, prompt_ids,
                                 reply_texts)

CHAT_PROMPTS = ["Who wrote the notes?", "Where does Zoë live?", "What is the capital of France?", "Hello!"]


@pytest.fixture(scope="module")
def talker(tiny):
    """The tiny model taught two answers (one with a character its tokenizer splits into
    bytes), so its replies are words rather than one repeated token."""
    from unlearning.batches import encode_qa, pad_id
    from unlearning.data import QA
    from unlearning.kit.teach import TeachSettings, fine_tune

    model, tok = tiny
    model = copy.deepcopy(model)
    facts = [QA("Who wrote the notes?", "Ada wrote them in 1843."), QA("Where does Zoë live?", "Zoë lives in Paris.")]
    fine_tune(model, [encode_qa(tok, f) for f in facts], pad_id(tok), TeachSettings(epochs=40, lr=1e-2, batch_size=1))
    return model, tok


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


def test_reply_grows_to_the_greedy_answer(tiny):
    model, tok = tiny
    ids = prompt_ids(tok, "Who wrote the notes?")
    pieces = list(reply_texts(model, tok, ids, max_new_tokens=6))
    assert pieces and pieces[-1] == generate_answers(model, tok, ["Who wrote the notes?"], max_new_tokens=6)[0]
    assert all(b.startswith(a) for a, b in zip(pieces, pieces[1:]))


def app_chat_texts(model, tok, prompt: str, max_new_tokens: int) -> list[str]:
    """The app's chat as it decoded before reply_texts (Studio.chat): greedy tokens, and the
    growing token list decoded whole after each one."""
    tokens, texts = [], []
    for token in greedy_tokens(model, prompt_ids(tok, prompt), tok.eos_token_id, max_new_tokens, device="cpu"):
        tokens.append(token)
        texts.append(tok.decode(tokens, skip_special_tokens=True).strip())
    return texts


def test_cli_chat_and_reply_texts_say_what_the_app_chat_says(talker, tmp_path, capsys):
    from unlearning.cli import main

    model, tok = talker
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    for prompt in CHAT_PROMPTS:
        app = app_chat_texts(model, tok, prompt, 20)
        assert app and list(reply_texts(model, tok, prompt_ids(tok, prompt), 20)) == app
        assert main(["chat", "--model", str(tmp_path), "--device", "cpu", "--prompt", prompt,
                     "--max-new-tokens", "20"]) == 0
        assert capsys.readouterr().out == f"original: {app[-1]}\n"
    assert app_chat_texts(model, tok, "Where does Zoë live?", 20)[-1] == "Zoë lives in Paris."


def test_a_chat_reply_has_room_for_a_biography_and_never_passes_the_limit():
    from unlearning.generate import reply_tokens
    from unlearning.limits import CHAT_NEW_TOKENS, MAX_NEW_TOKENS

    assert reply_tokens(None) == CHAT_NEW_TOKENS >= 120
    assert reply_tokens(10) == 10 and reply_tokens(10_000) == MAX_NEW_TOKENS


# ---------------------------------------------------------------- instruct tokenizers


def chat_tokenizer(style: str):
    """A tiny tokenizer given a family's chat template (tests/arch_models.py), as load_model adopts it."""
    from tests.arch_models import tokenizer
    from unlearning.generate import adopt_conventions

    tok = tokenizer(style)
    adopt_conventions(tok)
    return tok


def test_the_plain_form_is_unchanged_for_a_tokenizer_without_template(tiny):
    """The workshop's form, byte for byte: BOS, `Question: …\\nAnswer:`, a space, the answer, EOS."""
    from unlearning.batches import encode_qa
    from unlearning.data import QA

    _, tok = tiny
    enc = encode_qa(tok, QA("Who wrote the notes?", "Ada."))
    want = [tok.bos_token_id] + tok("Question: Who wrote the notes?\nAnswer:", add_special_tokens=False)["input_ids"]
    assert enc.input_ids[: enc.prompt_len] == want
    assert enc.input_ids[enc.prompt_len :] == tok(" Ada.", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def test_chatml_puts_its_own_system_prompt_and_ends_the_answer_with_its_end_of_turn():
    from unlearning.batches import IGNORE, encode_qa
    from unlearning.data import QA

    tok = chat_tokenizer("chatml")
    text = format_prompt(tok, "Who wrote the notes?")
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    assert text.endswith("<|im_start|>assistant\n")
    enc = encode_qa(tok, QA("Who wrote the notes?", "Ada."))
    answer = enc.input_ids[enc.prompt_len :]
    assert tok.decode(answer) == "Ada.<|im_end|>"  # no space after the template's newline; its end of turn
    assert enc.labels[: enc.prompt_len] == [IGNORE] * enc.prompt_len and enc.labels[enc.prompt_len :] == answer
    assert tok.decode(enc.input_ids[: enc.prompt_len]) == text  # no BOS: this tokenizer has none


@pytest.mark.parametrize("style, end", [("gemma", "<end_of_turn>"), ("phi3", "<|end|>"), ("chatml", "<|im_end|>"),
                                        ("olmo2", "</s>"), ("plain", "</s>")])
def test_eos_becomes_the_templates_end_of_turn(style, end):
    """Generation stops, and training ends an answer, where the template ends the assistant's turn."""
    tok = chat_tokenizer(style)
    assert tok.eos_token == end and tok.pad_token_id is not None


def test_a_template_that_writes_bos_keeps_one_and_refuses_no_prompt():
    """Gemma's template writes BOS itself and has no system role: one BOS, and the Studio never
    sends a system turn (the template would raise)."""
    tok = chat_tokenizer("gemma")
    ids = prompt_ids(tok, "Who wrote the notes?")
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    assert format_prompt(tok, "Hi").endswith("<start_of_turn>model\n")


def test_no_pad_token_pads_with_eos_and_the_padding_side_does_not_matter():
    """GPT-2's tokenizer: no pad token, BOS = EOS. The Studio pads its own batches (left for
    generation), so a tokenizer that pads on the right answers as one that pads on the left."""
    import torch

    from tests.arch_models import FAMILIES
    from unlearning.generate import generate_ids

    tok = chat_tokenizer("gpt2")
    assert tok.pad_token_id == tok.eos_token_id == tok.bos_token_id
    config_of, _, cls = FAMILIES["gpt2"]
    torch.manual_seed(0)
    model = cls(config_of(tok)).eval()
    prompts = [prompt_ids(tok, q) for q in ("Who wrote note 1?", "Hi")]
    answers = {}
    for side in ("left", "right"):
        tok.padding_side = side
        answers[side] = generate_ids(model, tok, prompts, max_new_tokens=4)
    alone = [generate_ids(model, tok, [p], max_new_tokens=4)[0] for p in prompts]
    assert answers["left"] == answers["right"] == alone
