"""unlearning/errors.py: one_line collapses and cuts; UserError is always one line."""

from unlearning.errors import UserError, one_line


def test_one_line_collapses_whitespace_and_cuts():
    assert one_line(ValueError("a\n  b\tc ")) == "a b c"
    assert one_line("x " * 500) == ("x " * 150)[:300]
    assert len(one_line("y" * 1000, limit=10)) == 10
    assert one_line("z" * 1000, limit=None) == "z" * 1000


def test_user_error_is_one_line_and_never_cut():
    message = "line one\nline two " + "w" * 400
    assert str(UserError(message)) == "line one line two " + "w" * 400
