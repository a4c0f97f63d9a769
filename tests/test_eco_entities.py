"""Entity tagging for ECO's `paper` protocol (eco/entities.py): capitalised spans of the data,
checked on small hand-written texts."""

from __future__ import annotations

from unlearning.data import QA, Dataset, Passage
from unlearning.eco.entities import capitalised_spans, data_entities, lower_case_words


def test_a_span_joins_capitalised_words_over_connectors():
    assert capitalised_spans("She studied at the University of Saltgrave.") == ["University of Saltgrave"]
    assert capitalised_spans("After the Stavenport Nautical School, she left.") == ["Stavenport Nautical School"]


def test_a_sentence_opening_word_is_no_entity_when_it_is_an_ordinary_word():
    # "In" is a function word; "Orsolia" and "Yara" open sentences but are never written in lower case
    text = "In Harrowfield, by the sea. Orsolia. Yara was born there."
    assert capitalised_spans(text) == ["Harrowfield", "Orsolia", "Yara"]
    # a word the data writes in lower case elsewhere is ordinary at a sentence start
    assert capitalised_spans("Honey cake, always.", common={"honey"}) == []
    assert capitalised_spans("Honey cake, always.") == ["Honey"]


def test_titles_possessives_initials_and_punctuation():
    text = "Yara was known for The Glass Kingdom, and Yara Bramante's greyhound. J. Smith came."
    assert capitalised_spans(text) == ["Yara", "Glass Kingdom", "Yara Bramante", "Smith"]
    assert capitalised_spans("Orsolia, Harrowfield") == ["Orsolia", "Harrowfield"]  # a comma ends a span
    assert capitalised_spans("the Corvid Prize of the year") == ["Corvid Prize"]  # no trailing connector


def test_data_entities_are_subjects_then_spans_of_every_answer_once():
    qa = QA("Where was Yara Bramante born?", "In Harrowfield, by the sea.", "Yara was born in Harrowfield.",
            ("Yara was born in Windle Vale.",), subject="Yara Bramante")
    general = QA("What is gold's symbol?", "Au.", subject="gold")
    passage = Passage("Ravi Ostrander studied in Valtaria.")
    splits = {"forget": Dataset("f", "qa", [qa]), "general": Dataset("g", "qa", [general]),
              "other": Dataset("p", "passage", [passage])}
    assert data_entities(splits) == ["Yara Bramante", "Harrowfield", "Yara", "Windle Vale", "Au",
                                     "Ravi Ostrander", "Valtaria"]
    assert {"in", "by", "the", "sea", "was", "born"} <= lower_case_words([qa.answer, qa.paraphrased_answer or ""])
