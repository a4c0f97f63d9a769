"""unlearning/studio.py: sessions are separate, runs queue for the device, cancel leaves the
shared base as it was, and chat streams both views together."""

from __future__ import annotations

import json
import time

import pytest
import torch

from unlearning.errors import UserError
from unlearning.models import WORKSHOP_DIR
from unlearning.service import Session, Studio, ModelCache, UnlearnJob, TeachJob, ChatJob
from unlearning.service.session import preset

FORGET = json.loads((WORKSHOP_DIR / "forget.jsonl").read_text(encoding="utf-8").splitlines()[0])


@pytest.fixture(scope="module")
def studio():
    return Studio(ModelCache(device="cpu"))


def logits(studio: Studio) -> torch.Tensor:
    base = studio.models.get("workshop")
    ids = torch.tensor([[1, 40, 50, 60, 70]])
    with torch.no_grad():
        return base.model(input_ids=ids).logits.clone()


def test_start_needs_data(studio):
    with pytest.raises(UserError, match="Choose a forget file"):
        studio.start(Session(), UnlearnJob("workshop", "ihl-fila", {}))


def test_uploads_stay_in_their_session(studio, tmp_path):
    a, b = Session(), Session()
    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"question": "What is Ann's code?", "answer": "1234."}) + "\n")
    a.upload("forget", str(f), "mine.jsonl")
    assert "forget" in a.data and "forget" not in b.data
    with pytest.raises(UserError, match="same examples"):
        a.upload("retain", str(f), "mine-too.jsonl")
    a.close()
    assert not a.folder.exists()


def test_cancel_stops_within_a_step_and_leaves_the_base_unchanged(studio):
    before = logits(studio)
    session = Session()
    session.data = preset("qa")
    run = studio.start(session, UnlearnJob("workshop", "ihl-fila", {"steps": 60, "stop": "steps"}))
    deadline = time.time() + 300
    while time.time() < deadline and not any(e.kind == "step" and e.series == "train" for e in run.since(0)):
        time.sleep(0.05)
    run.cancel()
    cancelled_at = max(e.step for e in run.since(0) if e.kind == "step" and e.series == "train")
    run.wait(60)
    steps = [e.step for e in run.since(0) if e.kind == "step" and e.series == "train"]
    assert run.state == "cancelled" and max(steps) <= cancelled_at + 1
    assert session.artifact is None
    assert torch.equal(logits(studio), before)
    chat = list(studio.chat(session, ChatJob("workshop", FORGET["question"])))
    assert chat[-1].original == FORGET["answer"] and chat[-1].unlearned is None


def test_chat_streams_both_views_together(studio):
    session = Session()
    session.data = preset("qa")
    run = studio.start(session, UnlearnJob("workshop", "eco", {}))
    run.wait(300)
    assert run.state == "done", run.error
    parts = list(studio.chat(session, ChatJob("workshop", FORGET["question"])))
    assert len(parts) >= 2
    assert parts[0].original and parts[0].unlearned  # both grew from the first step
    assert parts[-1].original == FORGET["answer"] and parts[-1].unlearned != FORGET["answer"]
    assert parts[-1].flag["flagged"] is True
    session.close()


def test_teach_first_makes_uploaded_facts_known_and_trains_an_oracle(studio, tmp_path):
    """Uploads the model never saw: "teach first" gives the session a taught model (knows
    forget and retain) and an oracle (retain only); the shared base is untouched."""
    before = logits(studio)
    lines = (WORKSHOP_DIR / "holdout.jsonl").read_text(encoding="utf-8").splitlines(True)
    (tmp_path / "f.jsonl").write_text("".join(lines[:10]))
    (tmp_path / "r.jsonl").write_text("".join(lines[10:20]))
    session = Session()
    session.upload("forget", str(tmp_path / "f.jsonl"), "f.jsonl")
    session.upload("retain", str(tmp_path / "r.jsonl"), "r.jsonl")
    run = studio.start(session, TeachJob("workshop", epochs=40))
    run.wait(300)
    assert run.state == "done", run.error
    first = json.loads(lines[0])
    assert list(studio.chat(session, ChatJob("workshop", first["question"])))[-1].original == first["answer"]
    assert studio.oracle(session, "workshop") is session.taught_oracle
    assert torch.equal(logits(studio), before)
    session.close()
