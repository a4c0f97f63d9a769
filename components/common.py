"""Small pieces every panel uses."""

from __future__ import annotations

import html


def error_box(message: str) -> str:
    """A user error as the page shows it: one sentence in a red box that screen readers announce."""
    return f'<div class="us-error" role="alert">⚠️ {html.escape(message)}</div>'
