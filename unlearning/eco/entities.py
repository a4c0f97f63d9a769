"""The entities of a run's data, for ECO's `paper` scoring protocol (Liu et al., NeurIPS 2024,
arXiv 2406.07933): the official TOFU code corrupts every entity its NER tagger finds —
people, places, organisations, nationalities, titles. No tagger can be downloaded here, so
the entities are read off the data itself: every `subject`, and every capitalised span of
its questions and answers (the given, paraphrased and perturbed ones), all splits.

A span is a run of capitalised words, joined by lower-case connectors ("of", "de", "the"):
"Stavenport Nautical School", "University of Saltgrave". A capitalised word that could be an
ordinary word at the start of a sentence ("Where", "She", "In") is left out: it is in the
built-in list of function words, or the data also writes it in lower case ("in").

    capitalised_spans("She studied at the University of Saltgrave.", common={"she"})
    # → ["University of Saltgrave"]
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..data import QA, Dataset, Passage

WORD = re.compile(r"[^\W\d_][\w'’-]*")  # a word, with its inner apostrophes and hyphens
POSSESSIVE = re.compile(r"['’]s$")
CONNECTORS = frozenset({"of", "the", "de", "da", "del", "della", "di", "du", "la", "le", "van", "von", "der",
                        "den", "y", "and", "on", "upon"})
# Words that are capitalised only because a sentence starts with them (a tagger never tags them).
_FUNCTION_WORDS = """
a an the this that these those there here it its he she they we you i me my your his her their our them him us
what where when which who whom whose why how is are was were be been do does did can could would should will
shall may might must has have had not no yes and but or so if then than as at by for from in into of off on
onto out over to up with about after before again also any each few more most other some such only own same
very just hello hi hey please thanks thank tell give name describe explain ask say let list write friends
"""
FUNCTION_WORDS = frozenset(_FUNCTION_WORDS.split())
SOURCE = "capitalised spans of the data's questions and answers (given, paraphrased, perturbed) + subjects"


def _sentence_starts(text: str) -> set[int]:
    """Character offsets where a sentence starts (the text's start, after . ! ? : and newlines)."""
    return {0} | {m.end() for m in re.finditer(r"[.!?:;\n\"“(]\s*", text)}


def capitalised_spans(text: str, common: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The capitalised spans of `text`, in order. `common`: lower-cased words that are ordinary
    words in this data; such a word (or a function word) opens no span at a sentence start."""
    starts = _sentence_starts(text)
    spans: list[str] = []
    run: list[tuple[str, int]] = []  # (word, offset) of the span being read, connectors included

    def close() -> None:
        while run and run[-1][0].lower() in CONNECTORS:
            run.pop()  # "the" after a name is not part of it
        if run:
            spans.append(text[run[0][1] : run[-1][1] + len(run[-1][0])])
        run.clear()

    prev_end = 0
    for m in WORD.finditer(text):
        word, at = POSSESSIVE.sub("", m.group()), m.start()  # "Bramante's" → "Bramante"
        gap = text[prev_end:at]
        if run and gap.strip():  # punctuation between words ends a span
            close()
        prev_end = m.end()
        lower = word.lower()
        if word[0].isupper():
            ordinary = lower in FUNCTION_WORDS or lower in common
            if ordinary and (at in starts or not run):
                close()  # "In Harrowfield": "In" is the sentence's, the span starts after it
                continue
            if len(word) == 1 and not run:
                continue  # an initial alone ("J.") is no entity
            run.append((word, at))
        elif run and lower in CONNECTORS:
            run.append((word, at))
        else:
            close()
    close()
    return spans


def _texts(splits: dict[str, Dataset]) -> Iterable[str]:
    for ds in splits.values():
        for ex in ds.examples:
            if isinstance(ex, QA):
                yield from (ex.question, ex.answer, ex.paraphrased_answer or "", *ex.perturbed_answers)
            elif isinstance(ex, Passage):
                yield ex.text


def lower_case_words(texts: Iterable[str]) -> set[str]:
    """Every word the texts write in lower case: ordinary words of this data."""
    return {w for t in texts for w in WORD.findall(t) if w[0].islower()}


def data_entities(splits: dict[str, Dataset]) -> list[str]:
    """The subjects' names first, then every capitalised span of the data, each once, in
    first-seen order. A subject is a name as a whole ("Yara Bramante"); one that is not a name
    ("the telephone", "gold") gives only its capitalised spans, if any."""
    texts = list(_texts(splits))
    common = lower_case_words(texts)
    subjects = (ex.subject for ds in splits.values() for ex in ds.examples if isinstance(ex, QA) and ex.subject)
    names = (s for subject in subjects for s in capitalised_spans(subject))
    return list(dict.fromkeys([*names, *(s for t in texts for s in capitalised_spans(t, common))]))
