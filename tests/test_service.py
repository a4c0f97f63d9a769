"""unlearning/service: sessions are separate, one run per session, runs queue for the device,
cancel leaves the shared base as it was, chat streams both views together, a slow model load
blocks nobody else, visitors' models are evicted, and an export holds exactly one run."""

from __future__ import annotations

import json
import threading
import time
import zipfile

import pytest
import torch

import unlearning.models
from unlearning import limits
from unlearning.errors import UserError
from unlearning.models import WORKSHOP_DIR
from unlearning.service import AttackJob, ChatJob, ModelCache, Session, Studio, TeachJob, UnlearnJob, artifact_zip
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


# ------------------------------------------------------------------ one run per session
def test_teach_first_during_a_run_is_refused_and_cancel_reaches_the_run(studio):
    session = Session()
    session.use_preset("qa")
    run = studio.start(session, UnlearnJob("workshop", "ihl-fila", {"steps": 200, "stop": "steps"}))
    with pytest.raises(UserError, match="already going"):
        studio.start(session, TeachJob("workshop"))
    assert session.run is run and session.cancel() == "cancelling…"
    run.wait(120)
    assert run.state == "cancelled"
    assert session.cancel() == "There is no run to cancel."  # and nothing that says "cancelling…" forever
    session.close()


# ------------------------------------------------------------------ the model cache
def _stand_in_loader(monkeypatch, slow: str, release: threading.Event, real=unlearning.models.load_model):
    """`load_model` that waits for `release` on the model called `slow` and loads the workshop
    model for any other hub id (no network here)."""
    def load(name, device="auto", trust_remote_code=False, device_map=None, hub_only=False):
        if name == slow:
            release.wait(30)
            raise UserError(f"Model '{name}' could not be loaded: it is not on this machine.")
        return real("workshop" if "/" in name else name, device, trust_remote_code, device_map)

    monkeypatch.setattr(unlearning.models, "load_model", load)


def test_a_slow_model_load_blocks_no_other_session(studio, monkeypatch):
    release = threading.Event()
    _stand_in_loader(monkeypatch, "slow/model", release)
    monkeypatch.setattr(limits, "MODEL_LOAD_SECONDS", 1.5)
    other = Session()
    outcome = {}

    def session_a():
        t0 = time.monotonic()
        try:
            studio.models.get("slow/model")
        except UserError as e:
            outcome["a"] = (str(e), time.monotonic() - t0)

    waiting = threading.Thread(target=session_a)
    waiting.start()
    time.sleep(0.2)  # session A is now waiting for its download
    t0 = time.monotonic()
    reply = list(studio.chat(other, ChatJob("workshop", FORGET["question"])))[-1]
    assert time.monotonic() - t0 < 2 and reply.original == FORGET["answer"]  # session B chats meanwhile
    waiting.join(10)
    message, waited = outcome["a"]
    assert "'slow/model' is still loading after 2 s" in message and waited < 3  # one sentence, not a hang
    release.set()
    with pytest.raises(UserError, match="could not be loaded"):  # a failed load is reported, and not kept
        for _ in range(50):
            studio.models.get("slow/model")
            time.sleep(0.1)
    assert "slow/model" not in studio.models.names()


def test_a_chat_naming_a_model_still_loading_does_not_hold_the_chat_pool(studio, monkeypatch):
    """Each chat waited for its model in one of the chat pool's places: 36 chats naming slow hub
    models kept a bystander's workshop chat waiting 136.8 s (0.24 s alone)."""
    release = threading.Event()
    _stand_in_loader(monkeypatch, "slow/chat-model", release)
    monkeypatch.setattr(limits, "MODEL_LOAD_SECONDS", 20)
    monkeypatch.setattr(limits, "CHAT_MODEL_WAIT_S", 0.3)
    t0 = time.monotonic()
    try:
        with pytest.raises(UserError, match="'slow/chat-model' is still loading"):
            list(studio.chat(Session(), ChatJob("slow/chat-model", "Hello!")))
        assert time.monotonic() - t0 < 3  # the chat's place is free again at once, not after the load
    finally:
        release.set()


def test_models_named_by_visitors_are_evicted_least_recently_used_first(monkeypatch):
    _stand_in_loader(monkeypatch, "never", threading.Event())
    monkeypatch.setattr(limits, "MAX_VISITOR_MODELS", 2)
    models = ModelCache(device="cpu")
    models.get("workshop")
    for name in ("a/one", "b/two", "a/one", "c/three"):  # a/one used again, so b/two is the oldest
        models.get(name)
    assert models.names() == ["workshop", "a/one", "c/three"]  # the alias stays, pinned


# ------------------------------------------------------------------ exports
def test_each_export_holds_exactly_the_last_run(studio):
    session = Session()
    session.use_preset("qa")
    for method, settings in (("ga", {"steps": 1}), ("eco", {"strength": 1.0, "epochs": 1, "folds": 2})):
        run = studio.start(session, UnlearnJob("workshop", method, settings))
        run.wait(300)
        assert run.state == "done", run.error
        names = zipfile.ZipFile(artifact_zip(session)).namelist()
        assert "report.json" in names and json.loads(zipfile.ZipFile(artifact_zip(session)).read("unlearning.json"))["method"] == method
    assert not any(n.startswith("adapter") for n in names), names  # the ECO zip carries none of GA's files
    session.close()


# ------------------------------------------------------------------ stress tests
def test_a_stress_test_attacks_the_sessions_artifact(studio):
    session = Session()
    session.use_preset("qa")
    with pytest.raises(UserError, match="no unlearned model to stress-test"):
        studio.start(session, AttackJob("workshop", ("quantize",)))
    run = studio.start(session, UnlearnJob("workshop", "ga", {"steps": 1}))
    run.wait(300)
    with pytest.raises(UserError, match="unknown attack 'bogus'"):
        studio.start(session, AttackJob("workshop", ("bogus",)))
    run = studio.start(session, AttackJob("workshop", ("relearn", "quantize"), {"sample": 4, "relearn_steps": 4}))
    assert run.kind == "attack"
    run.wait(300)
    assert run.state == "done", run.error
    blocks = session.robustness["robustness"]
    assert blocks["relearn"]["steps"][0] == 0 and len(blocks["relearn"]["oracle"]) == len(blocks["relearn"]["steps"]) >= 4
    assert {"8", "4"} <= set(blocks["quantize"]) and blocks["quantize"]["summary"]
    session.close()


def test_the_warm_up_evaluates_what_a_preset_run_looks_up(studio, monkeypatch):
    from unlearning import pipeline
    seen = []
    monkeypatch.setattr(pipeline, "warm_reference", lambda *args: seen.append(args) or 1.5)
    assert studio.warm_preset("workshop") == 1.5
    (loaded, oracle, splits, cache), = seen
    session = Session()
    session.use_preset()
    assert loaded is studio.models.get("workshop") and oracle is studio.oracle(session, "workshop")
    assert oracle is studio.models.get("workshop-oracle") and cache is studio.evals
    assert {k: (ds.name, ds.examples) for k, ds in splits.items()} == \
        {k: (ds.name, ds.examples) for k, ds in session.splits().items()}
    assert studio.warm_preset("another/model") is None and len(seen) == 1  # no oracle, no warm-up


def test_a_visitor_cannot_hold_the_shared_device_for_hours(studio):
    """Issue 28 #8: heavy allowed settings (5,000 steps × batch 256 × rank 64, ~40 min) and a used-up
    hour are refused in one sentence; the workshop defaults and a default stress test are far inside."""
    from unlearning.service import budget

    session = Session()
    session.use_preset("qa")
    heavy = UnlearnJob("workshop", "ihl-fila", {"steps": limits.MAX_STEPS, "batch_size": 256, "rank": limits.MAX_RANK})
    with pytest.raises(UserError, match=r"^This run would take about 40 minutes of the shared device; one run may take "
                                        r"10 minutes — lower the steps, the batch size or the rank\.$"):
        studio.check(session, heavy)
    default = studio.check(session, UnlearnJob("workshop", "ihl-fila", {}))
    assert default < limits.SESSION_DEVICE_S / 50 and studio.check(session, UnlearnJob("workshop", "eco", {})) < 60
    run = studio.start(session, UnlearnJob("workshop", "ga", {"steps": 1}))  # a start counts for the hour
    run.wait(300)
    assert [s for _, s in session.device_log] == [pytest.approx(budget.RUN_OVERHEAD_S + budget.step_s(8, 8))]
    assert studio.check(session, AttackJob("workshop")) < 60
    with pytest.raises(UserError, match="lower the relearning steps"):
        studio.check(session, AttackJob("workshop", ("relearn",), {"relearn_steps": 1000, "relearn_batch": 256,
                                                                   "relearn_rank": limits.MAX_RANK}))
    for _ in range(3):  # three allowed 6-minute runs fill the hour…
        budget.charge(session, 6 * 60)
    with pytest.raises(UserError, match=r"this session's runs of the last hour took 18 minutes; a visitor may use "
                                        r"20 minutes an hour — lower the steps, the batch size or the rank, or wait\.$"):
        studio.check(session, UnlearnJob("workshop", "ihl-fila", {"steps": 2_000}))
    session.device_log = [(t - budget.HOUR_S, s) for t, s in session.device_log]  # … until it has passed
    assert studio.check(session, UnlearnJob("workshop", "ihl-fila", {"steps": 2_000})) > 2 * 60
    session.close()
