"""Forget/retain ingestion: files → validated examples.

Formats: `.txt`/`.md` (passages, one per blank-line-separated paragraph), `.jsonl`/`.json`
with `question`/`answer` fields (QA) or a `text` field (passage), `.csv` with the same
columns. Every problem a user can cause raises `UserError` naming the file and the problem.
Tokenisation and batching live in `batches.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class QA:
    """One question/answer fact. The optional fields feed the TOFU truth ratio."""

    question: str
    answer: str
    paraphrased_answer: str | None = None
    perturbed_answers: tuple[str, ...] = ()
    subject: str | None = None  # who or what the fact is about (the workshop's person)


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

    def __len__(self) -> int:
        return len(self.examples)

    def prompts(self) -> list[str]:
        """What a user would type about each example: the question, or a passage's opening."""
        if self.kind == "qa":
            return [ex.question for ex in self.examples]
        return [opening_sentences(ex.text) for ex in self.examples]


def opening_sentences(text: str, max_chars: int = 200) -> str:
    """The first sentence(s) of a passage, up to about max_chars (a passage's 'prompt')."""
    out = ""
    for piece in text.replace("\n", " ").split(". "):
        candidate = (out + ". " + piece) if out else piece
        if out and len(candidate) > max_chars:
            break
        out = candidate
        if len(out) >= max_chars // 2:
            break
    out = out.strip()
    return out if out.endswith((".", "?", "!")) else out + "."
