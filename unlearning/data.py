"""Forget/retain ingestion: files → validated examples.

Formats: `.txt`/`.md` (passages, one per blank-line-separated paragraph), `.jsonl`/`.json`
with `question`/`answer` fields (QA) or a `text` field (passage), `.csv` with the same
columns; reading and parsing them is `formats.py`, turning the records into examples is
here. Every problem a user can cause raises `UserError`: one sentence naming the file and
the problem, never a raw decoder or parser exception. Tokenisation and batching live in
`batches.py`.

    ds = load_file("assets/forget.jsonl")        # Dataset(kind="qa", examples=[QA, ...])
    check_pair(ds, load_file("retain.jsonl"))    # refuses examples that are in both
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import limits  # read as limits.X at call time, so tests can monkeypatch a limit
from .errors import UserError
from .formats import Record, kind_of, read_records, shorten

_KIND_WORDS = {"qa": "a question/answer pair", "passage": "a passage ('text')"}
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)\]])\s+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad"  # zero-width spaces and joiners, BOM, soft hyphen
_EDGES = re.compile(f"^[\\s{_INVISIBLE}]+|[\\s{_INVISIBLE}]+$")


def strip_invisible(text: str) -> str:
    """`text` without whitespace or invisible characters at either end: a field of only
    zero-width spaces is as empty as one of only spaces."""
    return _EDGES.sub("", text)


# TOFU's two general-knowledge sets, which model utility scores apart (metrics.py): a QA
# record of the general split may say which it belongs to in its "group" field.
GENERAL_SETS = ("world_facts", "real_authors")
# An evaluation-only retain set: where a run's splits have one, the report's retain metrics (and
# model utility) are scored on it in place of the retain set the method trains on
# (metrics.scored_splits; TOFU's retain_perturbed, suites.py).
RETAIN_EVAL = "retain_eval"


@dataclass(frozen=True)
class QA:
    """One question/answer fact. The optional fields feed the TOFU truth ratio."""

    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()
    subject: str | None = None  # who or what the fact is about (the workshop's person)
    group: str | None = None  # a general example's TOFU set (GENERAL_SETS); None reads as world facts


@dataclass(frozen=True)
class Passage:
    """Raw text; every token carries a label. Chunked to MAX_TOKENS at encoding time."""

    text: str


@dataclass
class Dataset:
    """A validated file: all QA or all passages, never a mix."""

    name: str  # the file name as the user knows it, for messages
    kind: str  # "qa" or "passage"
    examples: list = field(default_factory=list)
    suggested: list[str] = field(default_factory=list)  # prompts worth trying beyond the file's own (the preset's)

    def __len__(self) -> int:
        return len(self.examples)

    def prompts(self) -> list[str]:
        """What a user would type about each example: the question, or a passage's opening."""
        if self.kind == "qa":
            return [ex.question for ex in self.examples]
        return [opening_sentences(ex.text) for ex in self.examples]


def opening_sentences(text: str, max_chars: int = 200) -> str:
    """The first sentence(s) of a passage, at most max_chars: what a user would type to make
    the model recite it. Short sentences (or "Dr." fragments) are joined until half the budget
    is used; a first sentence longer than the budget is cut at a word, a natural completion
    prompt."""
    text = " ".join(text.split())
    out = ""
    for sentence in _SENTENCE_BREAK.split(text):
        candidate = f"{out} {sentence}" if out else sentence
        if len(candidate) > max_chars:
            break
        out = candidate
        if len(out) >= max_chars // 2:
            break
    if not out:
        cut = text[:max_chars]
        return cut.rsplit(" ", 1)[0] if len(text) > max_chars and " " in cut else cut
    return out if out.rstrip("\"'”’)]").endswith((".", "?", "!")) else out + "."


# ---------------------------------------------------------------------------- public API


def load_file(path: str | Path, display_name: str | None = None) -> Dataset:
    """Read, decode, parse and validate one forget/retain file.

    `display_name` is the name the user knows (uploads arrive under temp paths); every message
    names it. The format comes from its extension, falling back to the path's.
    """
    path = Path(path)
    name = display_name or path.name
    return from_records(name, read_records(path, name))


def check_pair(forget: Dataset, retain: Dataset) -> None:
    """Refuse a forget/retain pair that shares examples: a fact cannot be both forgotten and
    kept, and the retain metrics would be meaningless. QA compare by question, passages by
    text, both casefolded with whitespace collapsed."""
    retain_keys = {_key(ex) for ex in retain.examples}
    shared = [ex for ex in forget.examples if _key(ex) in retain_keys]
    if not shared:
        return
    f, r = f"forget file {forget.name}", f"retain file {retain.name}"
    if {_key(ex) for ex in forget.examples} == retain_keys:
        raise UserError(f"{f} and {r} contain the same examples.")
    first = shorten(shared[0].question if isinstance(shared[0], QA) else shared[0].text)
    if len(shared) == len(forget.examples):
        raise UserError(
            f'All {len(shared)} examples of {f} are also in {r} (first: "{first}"); '
            "remove them from the retain file."
        )
    raise UserError(
        f'{len(shared)} of the {len(forget)} examples of {f} are also in {r} (first: "{first}"); '
        "remove them from one of the files."
    )


# ----------------------------------------------------------------- records → examples


def from_records(name: str, records: Iterator[Record]) -> Dataset:
    """Records (where, fields) → a validated Dataset called `name`: one kind per file, at most
    MAX_EXAMPLES (counted as they stream in). load_file's second half; the benchmark suites
    (suites.py) feed it the Hub's rows."""
    examples: list = []
    kind, first = "", ""
    for where, rec in records:
        ex = _example(rec, where, name)
        this = "qa" if isinstance(ex, QA) else "passage"
        if not kind:
            kind, first = this, where
        elif this != kind:
            raise UserError(
                f"{name}: {where} is {_KIND_WORDS[this]} but {first} is {_KIND_WORDS[kind]}; "
                "a file must hold only one kind."
            )
        examples.append(ex)
        if len(examples) > limits.MAX_EXAMPLES:
            raise UserError(
                f"{name} has more than {limits.MAX_EXAMPLES:,} examples, the limit for one file; "
                "split it or keep fewer."
            )
    if not examples:
        raise UserError(f"{name} contains no examples.")
    return Dataset(name, kind, examples)


def _example(rec: dict, where: str, name: str) -> QA | Passage:
    is_qa, is_text = bool({"question", "answer"} & rec.keys()), "text" in rec
    if is_qa and is_text:
        raise UserError(f"{name}: {where} has both 'question'/'answer' and 'text'; use one or the other.")
    if is_text:
        return Passage(_string(rec, "text", where, name))
    if not is_qa:
        found = ", ".join(f"'{shorten(str(k), 20)}'" for k in list(rec)[:8]) or "nothing"
        raise UserError(f"{name}: {where} has neither 'question' and 'answer' nor 'text' (it has {found}).")
    return QA(
        question=_string(rec, "question", where, name),
        answer=_string(rec, "answer", where, name),
        paraphrased_answer=_optional_string(rec, "paraphrased_answer", where, name),
        perturbed_answers=_perturbed(rec.get("perturbed_answers"), where, name),
        subject=_optional_string(rec, "subject", where, name),
        group=_group(rec, where, name),
    )


def _group(rec: dict, where: str, name: str) -> str | None:
    """The optional TOFU set of a general-knowledge example: one of GENERAL_SETS."""
    value = _optional_string(rec, "group", where, name)
    if value is not None and value not in GENERAL_SETS:
        known = " or ".join(f"'{g}'" for g in GENERAL_SETS)
        raise UserError(f"{name}: {where} has '{shorten(value, 40)}' in 'group'; use {known} (or leave it out).")
    return value


def _string(rec: dict, key: str, where: str, name: str) -> str:
    """A required text field, stripped."""
    value = _optional_string(rec, key, where, name)
    if value is None:
        raise UserError(f"{name}: {where} has no '{key}' (it is missing or empty).")
    return value


def _optional_string(rec: dict, key: str, where: str, name: str) -> str | None:
    """A stripped text field, None when missing or blank: the same thing to a user."""
    value = rec.get(key)
    if value is not None and not isinstance(value, str):
        raise UserError(f"{name}: {where} has {kind_of(value)} in '{key}' where a string was expected.")
    value = strip_invisible(value or "")
    _check_text(value, f"'{key}'", where, name)
    return value or None


def _perturbed(value: object, where: str, name: str) -> tuple[str, ...]:
    """Wrong answers for the truth ratio: a list of strings (CSV cells arrive already split)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        got = kind_of(value)
        raise UserError(f"{name}: {where} has {got} in 'perturbed_answers' where a list of strings was expected.")
    out = []
    for i, item in enumerate(value, 1):
        if not isinstance(item, str):
            got = kind_of(item)
            raise UserError(f"{name}: {where} has {got} as perturbed answer {i} where a string was expected.")
        _check_text(item.strip(), f"perturbed answer {i}", where, name)
        if item.strip():
            out.append(item.strip())
    return tuple(out)


def _check_text(value: str, label: str, where: str, name: str) -> None:
    if len(value) > limits.MAX_FIELD_CHARS:
        limit = limits.MAX_FIELD_CHARS
        raise UserError(f"{name}: {where} has {len(value):,} characters in {label}, over the limit of {limit:,}.")
    if _SURROGATE.search(value):  # JSON can spell one ("\\ud800"); tokenizers choke on it
        raise UserError(f"{name}: {where} has a broken \\u escape (an unpaired surrogate) in {label}.")


def _key(ex: QA | Passage) -> tuple[str, str]:
    """What makes two examples 'the same': the question or the text, casefolded, spaces collapsed."""
    if isinstance(ex, QA):
        return ("qa", " ".join(ex.question.casefold().split()))
    return ("passage", " ".join(ex.text.casefold().split()))


def sample(examples: list, n: int, seed: int) -> list:
    """A seeded sample of at most n examples, in their original order."""
    if len(examples) <= n:
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]
