"""The one error type a user can cause, and how it is shown.

Anything a user can get wrong (a bad file, an unknown model, a nonsense setting) raises
`UserError` with one plain sentence that names the file or setting and the problem. The CLI
prints that sentence and exits with code 2; the UI shows it as a message. Everything else is
a bug and may raise whatever it raises.
"""


def one_line(text: object, limit: int | None = 300) -> str:
    """`text` (an exception, say) with its whitespace collapsed to single spaces, cut to
    `limit` characters (None: not cut): safe to put inside a one-line message."""
    return " ".join(str(text).split())[:limit]


class UserError(Exception):
    """A problem the user can fix; `str(err)` is one plain sentence, shown as it is."""

    def __init__(self, message: str):
        # Keep it one line whatever the caller passed: the CLI promises "one line on stderr".
        super().__init__(one_line(message, limit=None))


class Cancelled(Exception):
    """Raised inside a run when the user pressed cancel; the run ends as 'cancelled'."""
