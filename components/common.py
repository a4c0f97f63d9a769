"""Small pieces every panel uses."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any


def error_box(message: str) -> str:
    """A user error as the page shows it: one sentence in a red box that screen readers announce."""
    return f'<div class="us-error" role="alert">⚠️ {html.escape(message)}</div>'


class OnDelete:
    """A gr.State's delete callback as the page config may hold it. Gradio puts every argument
    of a State in the config it deep-copies on each `GET /` and `/config`: a bound method there
    dragged the session registry into each copy (a Session and a folder per open session and
    load), and a bare function printed its memory address to every visitor. This one is its
    own copy and prints its name."""

    def __init__(self, name: str, fn: Callable[[Any], None] | None = None):
        self.name, self.fn = name, fn

    def __call__(self, value: Any) -> None:
        if self.fn is not None:
            self.fn(value)

    def __deepcopy__(self, memo) -> OnDelete:
        return self

    def __repr__(self) -> str:
        return self.name
