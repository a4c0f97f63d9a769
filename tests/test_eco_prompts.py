"""Recovering the raw prompt and its length from the token ids the ECO guard receives."""

from __future__ import annotations

import copy

import pytest

from unlearning.batches import encode_qa
from unlearning.data import QA
from unlearning.eco.prompts import PromptReader
from unlearning.generate import prompt_ids
from unlearning.models import ALIASES

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
QUESTION = "Where was Yara Bramante born?"


@pytest.fixture(scope="module")
def workshop_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(ALIASES["workshop"]))


@pytest.fixture(scope="module")
def chat_tok(tiny):
    tok = copy.deepcopy(tiny[1])
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(params=["workshop", "chat"])
def tok(request, workshop_tok, chat_tok):
    return workshop_tok if request.param == "workshop" else chat_tok


def test_template_prefix_and_suffix(workshop_tok, chat_tok):
    plain = PromptReader(workshop_tok)
    assert (plain.prefix, plain.suffix) == ("Question: ", "\nAnswer:")
    chat = PromptReader(chat_tok)
    assert (chat.prefix, chat.suffix) == ("<|user|>\n", "</s>\n<|assistant|>\n")


def test_generation_row_gives_the_question_and_its_length(tok):
    ids = prompt_ids(tok, QUESTION)
    reader = PromptReader(tok)
    read = reader.read(ids)
    assert read.text == QUESTION and reader.length(ids, read) == len(ids)


def test_teacher_forced_row_stops_before_the_answer(tok):
    enc = encode_qa(tok, QA(QUESTION, "In Harrowfield, by the sea."))
    reader = PromptReader(tok)
    read = reader.read(enc.input_ids)
    assert read.text == QUESTION and reader.length(enc.input_ids, read) == enc.prompt_len


def test_extraction_prefix_with_part_of_the_answer(tok):
    enc = encode_qa(tok, QA(QUESTION, "In Harrowfield, by the sea."))
    reader, ids = PromptReader(tok), enc.input_ids[: enc.prompt_len + 2]
    read = reader.read(ids)
    assert read.text == QUESTION and reader.length(ids, read) == enc.prompt_len


def test_raw_passage_is_read_whole(tok):
    text = "Yara Bramante is an organ builder from Orsolia."
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    reader = PromptReader(tok)
    read = reader.read(ids)
    assert read.text == text and reader.length(ids, read) is None


def test_length_falls_back_to_the_shortest_prefix_covering_the_suffix(workshop_tok):
    reader = PromptReader(workshop_tok)
    ids = prompt_ids(workshop_tok, QUESTION) + workshop_tok(" In Harrowfield.", add_special_tokens=False)["input_ids"]
    text = workshop_tok.decode(ids)
    chars = text.index("\nAnswer:") + len("\nAnswer:")
    # A question that does not re-encode to these ids forces the character-count search.
    assert reader._length(ids, "something else", chars) == len(prompt_ids(workshop_tok, QUESTION))
