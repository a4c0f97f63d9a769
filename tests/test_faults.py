"""Faults: what a run leaves behind when it fails, is cancelled, or its session goes away.

The tests drive the Studio as the app does: the shared workshop base, and on it a bystander
session's finished artifact. After every fault they check the run's state and its one-line
message, and that the shared base is exactly as before (`fingerprint`: logits of the plain
model and of the "original" view compared with torch.equal, the module tree, the flags, the
adapters attached, the bystander's unlearned logits); then that the Studio is usable again
(a new run in the same session finishes, and closing it leaves the base as it was).

Cancels are deterministic: `when_progress(prefix, action)` acts from inside the run, the
moment it reports progress starting with `prefix` (the first batch, layer, step, split,
epoch or point of a phase); `spy` then shows that the Cancelled left the phase's own
function, i.e. the phase checks for cancellation as it goes instead of running to its end.

A client that disconnects: app.py gives the session's gr.State
`delete_callback=lambda s: s.close()`. Gradio 6.31 (read in gradio/routes.py `heartbeat`,
gradio/state_holder.py, gradio/route_utils.py `_delete_state`) notices a disconnect on the
heartbeat stream (one write every 15 s, GRADIO_HEARTBEAT_INTERVAL) and then only marks the
session `is_closed`; its State values expire STATE_TTL_WHEN_CLOSED = 3600 s after they were
last set (1 s only when GRADIO_IS_E2E_TEST is set, gradio's own test mode), and the sweep that
calls delete_callback runs once a second. So in the real app a disconnected client's run is
cancelled up to an hour later, not within a test's time; an e2e test could pass only in
gradio's test mode, which would test gradio and not the app. The disconnect is therefore
tested here at the Studio level: Session.close() is what the callback calls.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

import unlearning.eco.calibration
import unlearning.methods.eco
import unlearning.evaluation.metrics
import unlearning.pipeline
import unlearning.lora.trainer
from unlearning.lora import fila
from unlearning.base import original
from unlearning.data import Dataset, load_file
from unlearning.errors import Cancelled, UserError
from unlearning.evaluation.cache import EvalCache
from unlearning.generate import prompt_ids
from unlearning.models import WORKSHOP_DIR
from unlearning.runs import Run, RunContext
from unlearning.service import Session, Studio, ModelCache, UnlearnJob, ChatJob

FORGET = load_file(WORKSHOP_DIR / "forget.jsonl").examples
RETAIN = load_file(WORKSHOP_DIR / "retain.jsonl").examples
# Small, so a run takes seconds: no holdout or general split (their evaluation would double it).
SPLITS = {"forget": Dataset("forget.jsonl", "qa", FORGET[:2]), "retain": Dataset("retain.jsonl", "qa", RETAIN[:3]),
          "holdout": Dataset("holdout.jsonl", "qa", []), "general": Dataset("general.jsonl", "qa", [])}
LORA = {"steps": 3, "batch_size": 1, "stop": "steps"}  # batch 1: two Fisher batches
ECO = {"epochs": 5, "folds": 2, "grid_points": 3, "search_steps": 1, "ngram_dims": 512, "tolerance": 0.0}
WAIT = 120  # seconds a run may take here before the test gives up


@pytest.fixture(scope="module", autouse=True)
def small_splits():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Session, "splits", lambda session: dict(SPLITS))
        yield


@pytest.fixture(scope="module")
def studio():
    return Studio(ModelCache(device="cpu"))


@pytest.fixture(scope="module")
def bystander(studio):
    """Another session whose finished artifact sits on the shared base throughout."""
    session = Session()
    finish(studio.start(session, UnlearnJob("workshop", "ihl", {**LORA, "steps": 1})), "done")
    yield session
    session.close()


def finish(run: Run, state: str) -> Run:
    run.wait(WAIT)
    assert run.state == state, (run.state, run.error, run.traceback)
    return run


def fingerprint(studio: Studio, bystander: Session) -> dict:
    base = studio.models.get("workshop")
    model = base.model
    ids = torch.tensor([prompt_ids(base.tokenizer, FORGET[0].question)])
    with torch.no_grad():
        logits = {"plain": model(input_ids=ids).logits, "original": original(model)(input_ids=ids).logits,
                  "bystander": bystander.artifact.proxy("unlearned")(input_ids=ids).logits}
    return {"logits": logits, "modules": [n for n, _ in model.named_modules()], "training": model.training,
            "requires_grad": [p.requires_grad for p in model.parameters()],
            "adapters": sorted(getattr(model, "peft_config", {}))}


def assert_unchanged(before: dict, after: dict) -> None:
    for view, logits in before["logits"].items():
        assert torch.equal(after["logits"][view], logits), f"{view} logits changed"
    assert {k: v for k, v in after.items() if k != "logits"} == {k: v for k, v in before.items() if k != "logits"}


def assert_usable(studio: Studio, session: Session, before: dict, bystander: Session) -> None:
    """A new run in the same session finishes; closing the session then leaves the base as before."""
    assert session.artifact is None and session.report is None  # nothing half-made was kept
    finish(studio.start(session, UnlearnJob("workshop", "ihl", {**LORA, "steps": 1})), "done")
    assert session.artifact is not None and "forget.rougeL" in session.report["after"]
    session.close()
    assert_unchanged(before, fingerprint(studio, bystander))


def when_progress(monkeypatch, prefix: str, action) -> list[str]:
    """Call action(run) inside the run, once, when it reports progress starting with `prefix`.
    Returns the list the matching message goes into."""
    progress, fired = RunContext.progress, []

    def hooked(ctx, fraction, message=""):
        progress(ctx, fraction, message)
        if message.startswith(prefix) and not fired:
            fired.append(message)
            action(ctx._run)

    monkeypatch.setattr(RunContext, "progress", hooked)
    return fired


def spy(monkeypatch, module, name: str) -> list[str]:
    """Wrap module.name; the list gets the name of every exception that leaves it."""
    fn, escaped = getattr(module, name), []

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            escaped.append(type(e).__name__)
            raise

    monkeypatch.setattr(module, name, wrapper)
    return escaped


def events_after(run: Run, message: str) -> list[str]:
    events = run.since(0)
    i = next(i for i, e in enumerate(events) if e.kind == "progress" and e.message == message)
    return [e.kind for e in events[i + 1:]]


# ------------------------------------------------------------------------ errors


def test_an_error_in_a_training_step_fails_the_run_and_restores_everything(studio, bystander, monkeypatch):
    before, session = fingerprint(studio, bystander), Session()
    finish(studio.start(session, UnlearnJob("workshop", "ihl", {**LORA, "steps": 1})), "done")  # a previous artifact
    kept = fingerprint(studio, bystander)
    step_gradients, calls = unlearning.lora.trainer.step_gradients, []

    def third_step_fails(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("injected fault\nat step 3")
        return step_gradients(*args)

    monkeypatch.setattr(unlearning.lora.trainer, "step_gradients", third_step_fails)
    run = finish(studio.start(session, UnlearnJob("workshop", "ihl-fila", LORA)), "failed")
    assert run.error == "The run failed with an internal error: RuntimeError: injected fault at step 3"
    assert run.since(0)[-1].kind == "error" and run.since(0)[-1].message == run.error
    assert "Traceback (most recent call last)" in run.traceback and "step_gradients" in run.traceback
    assert [e.step for e in run.since(0) if e.kind == "step" and e.series == "train"] == [1, 2]
    # The failed run's adapters were let go; the previous run is still kept, and still current.
    assert_unchanged(kept, fingerprint(studio, bystander))
    assert [k.number for k in session.kept] == [1] and session.current == 1
    chat = list(studio.chat(session, ChatJob("workshop", FORGET[0].question)))[-1]
    assert chat.original == FORGET[0].answer and chat.unlearned is not None
    session.remove_run(1)  # and removing it leaves the base as it was before either run
    assert_unchanged(before, fingerprint(studio, bystander))
    monkeypatch.undo()
    assert_usable(studio, session, before, bystander)


def test_an_error_in_the_evaluation_fails_the_run(studio, bystander, monkeypatch):
    """In the evaluation after unlearning, with the run's trained adapters attached."""
    before, session = fingerprint(studio, bystander), Session()
    armed = when_progress(monkeypatch, "after: evaluating forget", lambda run: None)
    generate_answers = unlearning.evaluation.metrics.generate_answers

    def fails_after(*args):
        if armed:
            raise ValueError("injected evaluation fault")
        return generate_answers(*args)

    monkeypatch.setattr(unlearning.evaluation.metrics, "generate_answers", fails_after)
    run = finish(studio.start(session, UnlearnJob("workshop", "ihl", LORA)), "failed")
    assert run.error == "The run failed with an internal error: ValueError: injected evaluation fault"
    assert "generate_answers" not in run.error and "fails_after" in run.traceback
    assert_unchanged(before, fingerprint(studio, bystander))
    monkeypatch.undo()
    assert_usable(studio, session, before, bystander)


def test_an_error_in_the_eco_search_fails_the_run(studio, bystander, monkeypatch):
    before, session = fingerprint(studio, bystander), Session()
    measure, calls = unlearning.eco.calibration.measure, []  # what each point of the default search measures

    def second_point_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise UserError("The corruption made the model produce nothing.")
        return measure(*args, **kwargs)

    monkeypatch.setattr(unlearning.eco.calibration, "measure", second_point_fails)
    run = finish(studio.start(session, UnlearnJob("workshop", "eco", ECO)), "failed")
    assert run.error == "The corruption made the model produce nothing." and run.traceback is None
    assert len([e for e in run.since(0) if e.kind == "step" and e.series == "search"]) == 1
    assert_unchanged(before, fingerprint(studio, bystander))
    monkeypatch.undo()
    assert_usable(studio, session, before, bystander)


def test_a_failing_undo_still_ends_the_run_and_runs_the_other_undos():
    undone = []

    def work(ctx):
        ctx.on_abort(lambda: undone.append("first"))
        ctx.on_abort(lambda: 1 / 0)
        ctx.on_abort(lambda: undone.append("last"))
        raise UserError("forget.jsonl is empty.")

    run = Run(work).start()
    run.wait(5)
    assert run.state == "failed" and undone == ["last", "first"]
    assert run.error.startswith("forget.jsonl is empty, and undoing its changes to the shared model failed")
    assert "ZeroDivisionError" in run.traceback and "\n" not in run.error


# ------------------------------------------------------------------------ cancels

PHASES = {  # phase: (method, settings, the phase's first progress message, its function)
    "fisher pass": ("ihl-fila", LORA, "Fisher information, batch 1/", (unlearning.lora.trainer, "accumulate_fisher")),
    "svd": ("ihl-fila", LORA, "FILA init: SVD of layer 1/", (unlearning.lora.trainer, "fila_init_layers")),
    "training": ("ihl", LORA, "step 1/", (unlearning.lora.trainer, "train")),
    # (ECO gets the oracle and `before` first; the LoRA methods evaluate them alongside, without progress events)
    "evaluation before": ("eco", ECO, "before: evaluating forget", (unlearning.pipeline, "evaluate")),
    "evaluation after": ("ihl", LORA, "after: evaluating forget", (unlearning.pipeline, "evaluate")),
    "eco classifier": ("eco", ECO, "training the prompt classifier", (unlearning.methods.eco, "fit_classifier")),
    "eco search": ("eco", ECO, "strength ", (unlearning.methods.eco, "search")),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_cancel_at_every_phase_stops_inside_it_and_leaves_nothing(phase, studio, bystander, monkeypatch):
    method, settings, first, (module, name) = PHASES[phase]
    before, session = fingerprint(studio, bystander), Session()
    studio.evals = EvalCache()  # every phase really runs: the oracle and `before` are not taken from the cache
    fired = when_progress(monkeypatch, first, lambda run: run.cancel())
    escaped = spy(monkeypatch, module, name)
    fila_init, svds = fila.fila_init, []

    def counted_svd(*args):
        svds.append(1)
        return fila_init(*args)

    monkeypatch.setattr(fila, "fila_init", counted_svd)
    run = finish(studio.start(session, UnlearnJob("workshop", method, settings)), "cancelled")
    assert fired, f"the run never reached {first!r}"
    # the phase itself noticed the cancel (and after unlearning, the reference still finishing alongside, if it was)
    assert escaped == ["Cancelled"] or (phase == "evaluation after" and escaped == ["Cancelled"] * 2)
    assert events_after(run, fired[0]) == ["cancelled"]  # at its next check: no batch, step or point more
    assert run.since(0)[-1].message == "Cancelled; nothing was changed." and run.error is None
    if phase == "svd":
        assert len(svds) == 1  # one layer's SVD, not all of them
    assert_unchanged(before, fingerprint(studio, bystander))
    monkeypatch.undo()
    assert_usable(studio, session, before, bystander)


def test_a_cancel_during_the_reference_evaluated_alongside_the_method_stops_it(studio, bystander, monkeypatch):
    """The LoRA methods train while the oracle and `before` are evaluated on another thread: a
    cancel then stops that evaluation inside (not after it), and the run leaves nothing."""
    before, session = fingerprint(studio, bystander), Session()
    studio.evals = EvalCache()  # so the reference is really evaluated
    started, holder, escaped = threading.Event(), {}, []
    evaluate = unlearning.pipeline.evaluate

    def cancelling(*args, **kwargs):
        started.wait(WAIT)
        holder["run"].cancel()
        try:
            return evaluate(*args, **kwargs)
        except Cancelled:
            escaped.append("Cancelled")
            raise

    monkeypatch.setattr(unlearning.pipeline, "evaluate", cancelling)
    holder["run"] = studio.start(session, UnlearnJob("workshop", "ihl", LORA))
    started.set()
    run = finish(holder["run"], "cancelled")
    assert escaped == ["Cancelled"] and run.since(0)[-1].message == "Cancelled; nothing was changed."
    assert_unchanged(before, fingerprint(studio, bystander))
    monkeypatch.undo()
    assert_usable(studio, session, before, bystander)


# ------------------------------------------------------------------------ sessions that go away


def test_closing_a_session_mid_run_cancels_it_and_frees_the_device(studio, bystander, monkeypatch):
    """What the app's gr.State delete_callback does when a client has gone."""
    before = fingerprint(studio, bystander)
    leaving, staying = Session(), Session()
    training, closed = threading.Event(), threading.Event()
    when_progress(monkeypatch, "step 1/", lambda run: (training.set(), closed.wait(WAIT)))
    gone = studio.start(leaving, UnlearnJob("workshop", "ihl", LORA))
    assert training.wait(WAIT)  # the leaving session's run holds the device, at step 1
    waiting = studio.start(staying, UnlearnJob("workshop", "ihl", {**LORA, "steps": 1}))
    deadline = time.time() + 30
    while not any(e.message == "waiting for another run to finish" for e in waiting.since(0)):
        assert time.time() < deadline, "the second run never queued for the device"
        time.sleep(0.05)
    leaving.close()
    closed.set()
    finish(gone, "cancelled")
    assert not leaving.folder.exists() and leaving.artifact is None
    assert [e.step for e in gone.since(0) if e.kind == "step" and e.series == "train"] == [1]
    finish(waiting, "done")  # it got the device the cancelled run gave back
    assert staying.artifact is not None
    staying.close()
    assert_unchanged(before, fingerprint(studio, bystander))


def test_closing_as_the_run_finishes_keeps_nothing_attached(studio, bystander, monkeypatch):
    """The close arrives after the job's last check but before the studio keeps its result:
    the result must not be kept by a session that is gone (its adapters would stay on the
    shared base for good)."""
    before, session = fingerprint(studio, bystander), Session()
    when_progress(monkeypatch, "done", lambda run: session.close())
    finish(studio.start(session, UnlearnJob("workshop", "ihl", {**LORA, "steps": 1})), "cancelled")
    assert session.artifact is None and session.report is None and not session.folder.exists()
    assert_unchanged(before, fingerprint(studio, bystander))


def test_a_stress_test_of_a_run_removed_meanwhile_lands_on_no_other_run(studio, monkeypatch):
    """A stress test of run #2 whose run was removed mid-test put its result on run #1 (the
    current one by the time it ended)."""
    import unlearning.attacks
    from unlearning.service import AttackJob

    session = Session()
    for _ in range(2):
        finish(studio.start(session, UnlearnJob("workshop", "ihl", {**LORA, "steps": 1})), "done")
    assert session.current == 2
    removed = threading.Event()

    def attack_job(*args, **kwargs):
        def attack(ctx):
            assert removed.wait(WAIT)
            return {"relearn": {"of": "run #2"}}
        return attack

    monkeypatch.setattr(unlearning.attacks, "attack_job", attack_job)
    run = studio.start(session, AttackJob("workshop", ("relearn",)))
    session.remove_run(2)  # mid-test: #1 becomes the current run
    removed.set()
    finish(run, "done")
    assert session.current == 1 and session.kept_run(1).robustness is None and session.robustness is None
    session.close()


def test_a_kept_run_keeps_its_base_and_is_never_the_unlearned_side_of_another_model(studio):
    """A kept run answered like the original once the model cache had let its base go (two
    other hub models named), and chat naming another model made that model the 'unlearned' side."""
    session = Session()
    finish(studio.start(session, UnlearnJob("workshop", "ga", {**LORA, "steps": 10, "lr": 1e-2})), "done")
    question = FORGET[0].question
    before = list(studio.chat(session, ChatJob("workshop", question)))[-1]
    assert before.unlearned != before.original  # the run changed what the model says
    models = studio.models
    with models._lock:  # the cache lets the model go, as it does a visitor's least recently used one
        shared = models._loaded.pop("workshop")
        models._pinned.discard("workshop")
    try:
        after = list(studio.chat(session, ChatJob("workshop", question)))[-1]
        assert (after.original, after.unlearned) == (before.original, before.unlearned)
        with pytest.raises(UserError, match="was made on workshop, not workshop-oracle: choose workshop"):
            list(studio.chat(session, ChatJob("workshop-oracle", question)))
    finally:
        session.close()
        with models._lock:
            models._loaded["workshop"] = shared
            models._pinned.add("workshop")
