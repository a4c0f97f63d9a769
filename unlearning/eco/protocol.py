"""ECO's scoring protocols (METHODS.md §ECO 4b): which positions of a flagged row the guard
corrupts when the row is scored teacher-forced (answer_prob, truth ratio, forget quality).
Generation never asks: it corrupts every prompt position but the last, under both.

- `prompt` (default): the prompt's positions, all but the last; the scored answer is clean.
- `paper`: the official TOFU code of Liu et al. (NeurIPS 2024, arXiv 2406.07933): the
  prompt's *and* the scored answer's positions, all but the last; where the row names a
  known entity, only the tokens of the entities (the official code finds them with an NER
  tagger — people, places, organisations, nationalities; here they are read off the run's
  data by entities.py: its subjects and the capitalised spans of its questions and answers).

A row is one example's real tokens (no padding); `prompt_len` is how many of them are the
prompt (all of them for a passage, whose every token is scored).

    protocol = make_protocol("paper", tokenizer, ["Yara Bramante", "Harrowfield"])
    protocol.positions(row_ids, prompt_len)   # → [3, 4, 12] (the name's tokens)
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod

from ..errors import UserError


class ScoringProtocol(ABC):
    name: str = ""

    @abstractmethod
    def positions(self, ids: list[int], prompt_len: int) -> list[int]:
        """Positions of the row `ids` to corrupt, in increasing order, never the last one."""

    def params(self) -> dict:
        """What, besides the name, saves with the guard."""
        return {}


class PromptProtocol(ScoringProtocol):
    name = "prompt"

    def positions(self, ids, prompt_len):
        return list(range(min(prompt_len, len(ids)) - 1))


class PaperProtocol(ScoringProtocol):
    """Prompt and answer, all but the last; only the entity tokens where an entity is found.

    Entities are matched by tokenising: each word of each entity is encoded alone, with
    and without a leading space (mid-sentence and at the start of a text), and every run of
    the row's ids equal to one of those encodings is a name. So a name split over several
    tokens (" Br", "am", "ante") is found as that run, and a possessive ("Bramante's") is found
    wherever the tokenizer splits the suffix off the word, as word-level pre-tokenisers do; a
    word that the tokenizer merges with its neighbour in context is missed. A row in which no
    name is found (no subject known, a name written another way) gets every position but the
    last corrupted. The encodings are kept as hashes, so a saved guard does not spell out the
    names of the people (and places) it forgets."""

    name = "paper"

    def __init__(self, name_keys: set[str] | None = None, name_lengths: set[int] | None = None):
        self.name_keys = set(name_keys or ())
        self.name_lengths = set(name_lengths or ())

    @classmethod
    def from_entities(cls, tokenizer, entities: list[str]) -> PaperProtocol:
        runs = {tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
                for entity in entities for word in entity.split() if _is_name_word(word)
                for text in (word, " " + word)}
        runs.discard(())
        return cls({_key(r) for r in runs}, {len(r) for r in runs})

    def params(self) -> dict:
        return {"name_keys": sorted(self.name_keys), "name_lengths": sorted(self.name_lengths)}

    def name_positions(self, ids: list[int]) -> list[int]:
        """Positions of `ids` inside a run that encodes a word of a subject's name."""
        hit: set[int] = set()
        for length in self.name_lengths:
            for i in range(len(ids) - length + 1):
                if _key(tuple(ids[i : i + length])) in self.name_keys:
                    hit.update(range(i, i + length))
        return sorted(hit)

    def positions(self, ids, prompt_len):
        scored = len(ids) - 1  # every position but the last, prompt and answer alike
        names = [i for i in self.name_positions(ids) if i < scored]
        return names or list(range(scored))


def _is_name_word(word: str) -> bool:
    # Initials and lower-case particles ("J.", "da") would match all over a text; a tagger
    # tags them only as part of the whole name.
    return sum(c.isalnum() for c in word) >= 2 and not word.islower()


def _key(run: tuple[int, ...]) -> str:
    return hashlib.blake2b(",".join(map(str, run)).encode(), digest_size=8).hexdigest()


PROTOCOLS = ("prompt", "paper")


def make_protocol(name: str, tokenizer=None, entities: list[str] | None = None) -> ScoringProtocol:
    """`paper` with the word encodings of `entities` (none: every scored position is corrupted)."""
    if name == "prompt":
        return PromptProtocol()
    if name == "paper":
        return PaperProtocol.from_entities(tokenizer, entities or []) if tokenizer is not None else PaperProtocol()
    raise UserError(f"Unknown ECO scoring protocol '{name}'; known ones: {', '.join(PROTOCOLS)}.")


def load_protocol(name: str, params: dict) -> ScoringProtocol:
    """The protocol a saved guard names, with its saved parameters (checked by storage.read_spec)."""
    if name == "paper":
        return PaperProtocol(set(params.get("name_keys", ())), set(params.get("name_lengths", ())))
    return make_protocol(name)
