"""unlearning/settings.py: one dataclass gives defaults, validation, CLI flags and UI specs."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from unlearning.errors import UserError
from unlearning.settings import add_flags, build, describe, from_flags, setting


@dataclass
class Demo:
    steps: int = setting(10, "optimiser steps", lo=1, hi=100)
    lr: float = setting(1e-3, "learning rate", lo=1e-7, hi=1.0)
    rank: int = setting(8, "LoRA rank", choices=(4, 8, 16))
    hidden: str = setting("x", "expert knob", ui=False)


def test_defaults_and_coercion():
    cfg = build(Demo, {"steps": "20", "lr": "0.01"})
    assert (cfg.steps, cfg.lr, cfg.rank) == (20, 0.01, 8)


@pytest.mark.parametrize("values, phrase", [
    ({"steps": "-3"}, "--steps must be at least 1"),
    ({"steps": "ten"}, "--steps must be a whole number"),
    ({"steps": 2.5}, "--steps must be a whole number"),
    ({"lr": "nan"}, "--lr must be a number"),
    ({"lr": "5"}, "--lr must be at most 1.0"),
    ({"rank": "7"}, "--rank must be one of 4, 8, 16"),
    ({"alpha": "1"}, "--alpha is not a setting of this method"),
])
def test_bad_values_name_the_flag(values, phrase):
    with pytest.raises(UserError, match=phrase):
        build(Demo, values)


def test_flags_round_trip():
    parser = argparse.ArgumentParser()
    add_flags(parser, [Demo])
    cfg = from_flags(Demo, parser.parse_args(["--steps", "5", "--rank", "16"]))
    assert (cfg.steps, cfg.rank) == (5, 16)


def test_describe_hides_expert_knobs():
    spec = describe(Demo)
    assert [s["name"] for s in spec] == ["steps", "lr", "rank"]
    assert spec[2]["choices"] == (4, 8, 16) and spec[0]["help"] == "optimiser steps"


def test_a_flag_methods_word_differently_says_what_they_share():
    @dataclass
    class Fast:
        lr: float = setting(0.0, "learning rate; 0 = automatic: 4e-4 here", lo=0.0, hi=1.0)
        steps: int = setting(10, "optimiser steps", lo=1, hi=100)

    @dataclass
    class Slow:
        lr: float = setting(0.0, "learning rate; 0 = automatic: 1e-2 here", lo=0.0, hi=1.0)
        steps: int = setting(50, "optimiser steps", lo=1, hi=100)

    parser = argparse.ArgumentParser()
    add_flags(parser, [Fast, Slow])
    helps = {a.dest: a.help for a in parser._actions if a.dest.startswith("cfg_")}
    assert helps == {"cfg_lr": "learning rate; 0 = automatic: differs by method (docs/methods.md; the app shows each "
                               "method's own)", "cfg_steps": "optimiser steps"}
