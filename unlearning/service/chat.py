"""Side-by-side chat: one message, the original and the unlearned answer growing together.

Greedy decoding alternates one token of each view, switching the view of the one shared
base model between steps (under its lock), so the two replies grow together and other
sessions' calls interleave with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import limits
from ..data import strip_invisible
from ..errors import UserError
from .jobs import Reply

if TYPE_CHECKING:
    from ..artifacts import Unlearned
    from ..models import Loaded

VIEWS = ("original", "unlearned")


def check_prompt(prompt: str) -> None:
    """A chat message must have text, stay within limits.MAX_PROMPT_CHARS and be valid text."""
    if not strip_invisible(prompt):
        raise UserError("Type a message first.")
    if len(prompt) > limits.MAX_PROMPT_CHARS:
        raise UserError(f"The message has {len(prompt):,} characters; the limit is {limits.MAX_PROMPT_CHARS:,}.")
    if any("\ud800" <= ch <= "\udfff" for ch in prompt):  # invalid UTF-8 in argv, or a client's lone surrogate
        raise UserError("The message is not valid text (it has broken UTF-8 or an unpaired surrogate); type it again.")


def chat_stream(base: Loaded, artifact: Unlearned | None, prompt: str, max_new_tokens: int | None = None) -> Iterator[Reply]:
    """Yield a Reply each time either answer grows; the unlearned side only with an artifact
    (an Unlearned attached to `base`)."""
    from ..artifacts import original
    from ..generate import prompt_ids, reply_texts

    check_prompt(prompt)
    ids = prompt_ids(base.tokenizer, prompt)
    views = VIEWS if artifact is not None else VIEWS[:1]
    flag = artifact.flag(prompt) if artifact is not None else None
    streams = {which: reply_texts(original(base.model) if artifact is None else artifact.proxy(which), base.tokenizer,
                                  ids, max_new_tokens, device=base.device) for which in views}
    texts = {which: "" for which in views}
    while streams:
        for which in list(streams):
            text = next(streams[which], None)
            if text is None:
                del streams[which]
                continue
            texts[which] = text
        yield Reply(texts["original"], texts.get("unlearned"), flag)
