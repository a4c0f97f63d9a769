"""evaluation/wordings.few_shot: the shots as earlier chat turns, with the template variables
every other prompt gets (generate.TEMPLATE_KWARGS), so a Qwen3-style template that thinks
unless told not to answers at once here as it does in format_prompt."""

from __future__ import annotations

import copy

from unlearning.data import QA
from unlearning.evaluation.wordings import few_shot
from unlearning.generate import format_prompt

# Qwen3's switch, reduced to its effect: an empty think block when enable_thinking is false.
THINKING = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
            "{% if enable_thinking is defined and enable_thinking is false %}<think></think>{% endif %}")


def test_few_shot_turns_thinking_off_as_format_prompt_does(tiny):
    _, tok = tiny
    tok = copy.deepcopy(tok)
    tok.chat_template = THINKING
    shots = [QA("Who?", "Amy."), QA("Where?", "Oslo.")]
    text = few_shot(tok, shots, "When?")
    assert text == "<|user|>Who?<|assistant|>Amy.<|user|>Where?<|assistant|>Oslo.<|user|>When?<|assistant|><think></think>"
    assert format_prompt(tok, "When?").endswith("<think></think>")  # the same switch as every other prompt


def test_few_shot_without_a_template_is_plain_text(tiny):
    _, tok = tiny
    text = few_shot(tok, [QA("Who?", "Amy.")], "When?")
    assert text == "Question: Who?\nAnswer: Amy.\n\nQuestion: When?\nAnswer:"
