"""Side-by-side chat: one message, the original and the unlearned answer growing together.

With the studio's batcher (service/batcher.py), both views are rows of one greedy decode
shared with every other session chatting with the same base model at that moment. Without
one (or for a method whose view cannot be a row), greedy decoding alternates one token of
each view, switching the view of the one shared base model between steps (under its lock),
so the two replies grow together and other sessions' calls interleave with them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import limits
from ..data import strip_invisible
from ..errors import UserError
from .handles import Reply

if TYPE_CHECKING:
    from ..artifacts import Unlearned
    from ..models import Loaded
    from .batcher import ChatBatcher

VIEWS = ("original", "unlearned")


def check_prompt(prompt: str) -> None:
    """A chat message must have text, stay within limits.MAX_PROMPT_CHARS and be valid text."""
    if not strip_invisible(prompt):
        raise UserError("Type a message first.")
    if len(prompt) > limits.MAX_PROMPT_CHARS:
        raise UserError(f"The message has {len(prompt):,} characters; the limit is {limits.MAX_PROMPT_CHARS:,}.")
    if any("\ud800" <= ch <= "\udfff" for ch in prompt):  # invalid UTF-8 in argv, or a client's lone surrogate
        raise UserError("The message is not valid text (it has broken UTF-8 or an unpaired surrogate); type it again.")


def chat_stream(base: Loaded, artifact: Unlearned | None, prompt: str, max_new_tokens: int | None = None,
                batcher: ChatBatcher | None = None) -> Iterator[Reply]:
    """Yield a Reply each time either answer grows; the unlearned side only with an artifact
    (an Unlearned attached to `base`). With a batcher, both answers are rows of a batch shared
    with other sessions' replies on the same base (where the artifact's view can be a row)."""
    from ..base import RowView, original
    from ..generate import prompt_ids, reply_texts

    check_prompt(prompt)
    ids = prompt_ids(base.tokenizer, prompt)
    views = VIEWS if artifact is not None else VIEWS[:1]
    flag = artifact.flag(prompt) if artifact is not None else None
    rows = [RowView() if artifact is None else artifact.row_view(which) for which in views]
    if batcher is not None and all(rows):
        yield from _batched(base, batcher, [(ids, row) for row in rows if row is not None], max_new_tokens, flag)
        return
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


def _batched(base: Loaded, batcher: ChatBatcher, rows: list, max_new_tokens: int | None, flag: dict | None) -> Iterator[Reply]:
    # The text of every token so far, as generate.reply_texts decodes it (characters that span tokens stay whole).
    for tokens in batcher.decode(base, rows, max_new_tokens):
        texts = [str(base.tokenizer.decode(t, skip_special_tokens=True)).strip() for t in tokens]
        yield Reply(texts[0], texts[1] if len(texts) > 1 else None, flag)
