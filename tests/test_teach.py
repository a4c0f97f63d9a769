"""unlearning/teach.py and the `teach` command: new facts are learned, old ones kept."""

from __future__ import annotations

import copy

import pytest

from unlearning.batches import encode_qa, pad_id
from unlearning.cli import main
from unlearning.data import QA, load_file
from unlearning.generate import generate_answers
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.teach import TeachConfig, fine_tune, lr_at
from unlearning.workshop import answer_recall


def test_schedule_warms_up_then_decays():
    assert lr_at(0, 100, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 10) == pytest.approx(1.0)
    assert lr_at(10, 100, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 10) == pytest.approx(0.1)


def test_fine_tune_teaches_the_tiny_model(tiny):
    model, tok = tiny
    model = copy.deepcopy(model)
    items = [encode_qa(tok, QA("Who wrote the notes?", "Ada wrote them."))]
    history = fine_tune(model, items, pad_id(tok), TeachConfig(epochs=60, lr=1e-2, batch_size=1))
    assert history[-1]["loss"] < history[0]["loss"] / 10
    assert generate_answers(model, tok, ["Who wrote the notes?"], max_new_tokens=8) == ["Ada wrote them."]


def test_teach_command_learns_new_people_and_keeps_retain(tmp_path, capsys):
    new = tmp_path / "new.jsonl"
    new.write_text("".join((WORKSHOP_DIR / "holdout.jsonl").read_text(encoding="utf-8").splitlines(True)[:10]))
    assert main(["teach", "--model", "workshop", "--data", str(new), "--out", str(tmp_path / "taught"), "--epochs", "20"]) == 0
    taught = load_model(str(tmp_path / "taught"), "cpu")
    retain = load_file(WORKSHOP_DIR / "retain.jsonl")
    retain.examples = retain.examples[::4]
    assert answer_recall(taught.model, taught.tokenizer, load_file(new)) >= 0.9
    assert answer_recall(taught.model, taught.tokenizer, retain) >= 0.9
