"""Recover a row's raw prompt text (what the classifier must see) and the prompt's length
in tokens (where the corruption stops) from the token ids the guard is given. ECO (Liu et
al., NeurIPS 2024, arXiv 2406.07933) classifies the user's prompt, not the chat template
around it, and (under the default `prompt` scoring protocol) corrupts only the prompt, never
the answer being scored.

The engine formats every question with `generate.format_prompt` (the chat template, or
`Question: …\\nAnswer:`). Formatting a marker string gives the template's prefix and
suffix; a row's text between them is the question. Its length in tokens is found by
re-encoding the formatted question (exact for every tokenizer whose decode → encode round
trip holds) and otherwise by the shortest token prefix whose text covers the suffix. A row
that does not follow the template (a raw passage opening) is classified as its whole text.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..generate import format_prompt, prompt_ids

MARKER = "ECOPROMPTMARKER"


@dataclass
class ReadPrompt:
    text: str  # the raw question, or the whole decoded row when the template was not found
    end: int | None = None  # characters of the decoded row up to the template's end; None if not found


class PromptReader:
    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        formatted = format_prompt(tokenizer, MARKER)
        self.prefix, _, self.suffix = formatted.partition(MARKER)
        self.templated = MARKER in formatted

    def read(self, ids: list[int]) -> ReadPrompt:
        """ids: one row's tokens without padding, starting at its first real token."""
        whole = self.tokenizer.decode(ids, skip_special_tokens=False)
        if self.templated:
            start = whole.find(self.prefix) if self.prefix else 0
            if start >= 0:
                begin = start + len(self.prefix)
                end = whole.find(self.suffix, begin) if self.suffix else len(whole)
                if end >= 0:
                    return ReadPrompt(self._plain(whole[begin:end]), end + len(self.suffix))
        return ReadPrompt(self.tokenizer.decode(ids, skip_special_tokens=True).strip())

    def length(self, ids: list[int], read: ReadPrompt) -> int | None:
        """Tokens of the formatted prompt at the start of `ids` (None: not a templated row).
        Asked only for flagged rows, so an unflagged row costs one decode."""
        return None if read.end is None else self._length(ids, read.text, read.end)

    def _plain(self, text: str) -> str:
        # A template without a prefix leaves BOS and friends in front of the question.
        for special in self.tokenizer.all_special_tokens:
            text = text.replace(special, "")
        return text.strip()

    def _length(self, ids: list[int], question: str, chars: int) -> int:
        expected = prompt_ids(self.tokenizer, question)
        if ids[: len(expected)] == expected:
            return len(expected)
        lo, hi = 1, len(ids)  # shortest prefix whose decoded text reaches `chars` characters
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.tokenizer.decode(ids[:mid], skip_special_tokens=False)) >= chars:
                hi = mid
            else:
                lo = mid + 1
        return lo
