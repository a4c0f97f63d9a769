"""Limits live in one module and are enforced, printed by the CLI and shown by the app."""

from __future__ import annotations

import pytest

from unlearning import limits
from unlearning.cli import main
from unlearning.errors import UserError
from unlearning.runs import Run
from unlearning.service.chat import check_prompt


def test_describe_covers_every_limit():
    rows = dict(limits.describe())
    names = [n for n in vars(limits) if n.isupper()]
    assert len(rows) == len(names) - 4  # APP_CONCURRENCY and APP_QUEUE_SIZE share a row, MAX_SESSIONS and CLIENT_SESSIONS, RECONNECT_SECONDS and SESSION_HOURS, MAX_RUN_DEVICE_S and SESSION_DEVICE_S too
    assert rows["size of one forget or retain file"] == "20 MB"
    assert rows["runs waiting for the device"] == str(limits.MAX_WAITING_RUNS)


def test_cli_prints_the_same_table(capsys):
    assert main(["limits"]) == 0
    out = capsys.readouterr().out
    for what, value in limits.describe():
        assert what in out and value in out


def test_run_past_its_time_limit_fails_with_a_plain_message(monkeypatch):
    monkeypatch.setattr(limits, "MAX_RUN_SECONDS", 0)
    undone = []

    def work(ctx):
        ctx.on_abort(lambda: undone.append(True))
        while True:
            ctx.check_cancel()

    run = Run(work).start()
    run.wait(10)
    assert run.state == "failed"
    assert run.error == "The run was stopped after 0 minutes, the limit for one run; use fewer steps or a smaller model."
    assert undone == [True]


def test_restart_clock_counts_from_the_device():
    seen = []

    def work(ctx):
        ctx.restart_clock()
        ctx.check_cancel()
        seen.append(ctx._run._deadline)
        return "ok"

    run = Run(work).start()
    assert run.wait(10) == "ok" and seen[0] < float("inf")


def test_chat_message_limits(monkeypatch):
    monkeypatch.setattr(limits, "MAX_PROMPT_CHARS", 10)
    check_prompt("short")
    with pytest.raises(UserError, match="has 11 characters; the limit is 10"):
        check_prompt("x" * 11)
    with pytest.raises(UserError, match="Type a message first"):
        check_prompt("   ")


def test_cli_chat_refuses_a_long_prompt_before_loading(capsys):
    code = main(["chat", "--model", "no/such-model", "--prompt", "x" * (limits.MAX_PROMPT_CHARS + 1)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "the limit is 4,000" in err
