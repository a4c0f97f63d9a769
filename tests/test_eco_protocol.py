"""ECO's scoring protocols (METHODS.md §ECO 4b) on hand-made token rows: which positions of a
flagged, teacher-forced row each one corrupts."""

from __future__ import annotations

import json

import pytest

from unlearning.eco.protocol import PaperProtocol, PromptProtocol, load_protocol, make_protocol
from unlearning.errors import UserError


class PieceTokenizer:
    """Splits 'Bramante' into three tokens, and gives a word a different first token after a
    space, as BPE vocabularies do."""

    VOCAB = {"Yara": [1], " Yara": [2], "Bramante": [3, 4, 5], " Bramante": [6, 4, 5], "Leonardo": [7],
             " Leonardo": [8], "da": [9], " da": [10], "J.": [11], " J.": [12]}

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": list(self.VOCAB[text])}


def test_prompt_protocol_corrupts_the_prompt_but_its_last_position():
    assert PromptProtocol().positions(list(range(10)), prompt_len=6) == [0, 1, 2, 3, 4]
    assert PromptProtocol().positions(list(range(4)), prompt_len=4) == [0, 1, 2]  # a passage: all prompt


def test_paper_protocol_finds_a_name_split_over_tokens_in_prompt_and_answer():
    paper = make_protocol("paper", PieceTokenizer(), ["Yara Bramante"])
    #      0   1  2  3  4  5   6   7  8   9
    row = [90, 2, 6, 4, 5, 91, 92, 2, 93, 94]  # "… Yara Bramante …? | … Yara … EOS"
    assert paper.positions(row, prompt_len=6) == [1, 2, 3, 4, 7]
    assert paper.positions([90, 4, 5, 91], prompt_len=2) == [0, 1, 2]  # half a name is no name: all but the last
    assert paper.positions([1, 3, 4, 5, 2], prompt_len=3) == [0, 1, 2, 3]  # a name in the last position stays clean


def test_paper_protocol_skips_initials_and_particles():
    paper = make_protocol("paper", PieceTokenizer(), ["J. Leonardo da Bramante"])
    assert paper.positions([12, 8, 10, 6, 4, 5, 99], prompt_len=3) == [1, 3, 4, 5]


def test_a_saved_paper_protocol_keeps_its_names_without_spelling_them_out():
    paper = make_protocol("paper", PieceTokenizer(), ["Yara Bramante"])
    saved = json.loads(json.dumps(paper.params()))
    assert "Yara" not in json.dumps(saved) and "6, 4, 5" not in json.dumps(saved)
    again = load_protocol("paper", saved)
    row = [90, 2, 6, 4, 5, 91, 92, 2, 93, 94]
    assert again.positions(row, 6) == paper.positions(row, 6)
    assert isinstance(load_protocol("prompt", {}), PromptProtocol)
    assert isinstance(make_protocol("paper"), PaperProtocol)


def test_unknown_protocol_lists_the_known_ones():
    with pytest.raises(UserError, match="prompt, paper"):
        make_protocol("tofu")
