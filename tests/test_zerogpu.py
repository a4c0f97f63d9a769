"""The app on a ZeroGPU Space, without one: tests/fake_spaces/spaces.py plays the `spaces`
package (a forked worker per call, everything pickled across, idle workers reused, the app
process unable to run a model after launch), so relying on memory shared with the worker
fails here as it would on the Space.

(1) the fake really is a process boundary; (2) the one place that decides; (3) teach, chat
and the run's own stops go through workers and the session folder; (4) `python app.py` with
SPACES_ZERO_GPU=1 driven by gradio_client: upload → ECO (progress and plot read by /poll while
the GPU call streams) → report → chat → cancel.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import threading

from unlearning.errors import UserError
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.service import (AttackJob, ChatJob, LocalBackend, ModelCache, Session, Studio, TeachJob, UnlearnJob,
                                choose_backend, zero_gpu)
from unlearning.service.zerogpu import ZeroGpuBackend, gpu_call

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fake_spaces"
FORGET = [json.loads(line) for line in (WORKSHOP_DIR / "forget.jsonl").read_text(encoding="utf-8").splitlines()]
RETAIN = (WORKSHOP_DIR / "retain.jsonl").read_text(encoding="utf-8").splitlines(True)
NOTE = "(no unlearned model yet: run a method first)"


@pytest.fixture
def spaces(monkeypatch):
    """The fake `spaces`, imported fresh with SPACES_ZERO_GPU=1 (it reads it at import)."""
    import gradio as gr

    monkeypatch.setattr(gr.Blocks, "launch", gr.Blocks.launch)  # the fake wraps it; put it back after
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    monkeypatch.delenv("UNLEARNING_ZERO_GPU", raising=False)
    spec = importlib.util.spec_from_file_location("spaces", FAKE / "spaces.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "spaces", module)
    spec.loader.exec_module(module)
    yield module
    module.shutdown()


# ------------------------------------------------------------------ (1) the fake itself
SHARED = {"value": "before"}


def _mutate(box: dict):
    box["value"] = "changed in the worker"
    SHARED["value"] = "changed in the worker"
    yield os.getpid()
    yield SHARED["value"]


def _read_shared():
    return SHARED["value"], os.getpid()


def _fail():
    raise UserError("a sentence from the worker")


def _slow(seconds: float):
    time.sleep(seconds)
    return "late"


def test_fake_spaces_is_a_process_boundary(spaces):
    mutate = spaces.GPU(duration=30)(_mutate)
    box = {"value": "before"}
    pid, seen = list(mutate(box))
    assert pid != os.getpid() and seen == "changed in the worker"
    assert box["value"] == "before" and SHARED["value"] == "before"  # nothing came back but the yields

    read = spaces.GPU(_read_shared)
    value, first = read()
    SHARED["value"] = "changed in the app after the fork"
    try:
        value, again = read()  # the idle worker is reused and never sees the app's later memory
        assert again == first and value == "before"
    finally:
        SHARED["value"] = "before"

    with pytest.raises(UserError, match="a sentence from the worker"):
        spaces.GPU(_fail)()
    with pytest.raises(Exception, match="pickle"):
        list(mutate(lambda: None))  # arguments are pickled
    with pytest.raises(RuntimeError, match="GPU task aborted"):
        spaces.GPU(duration=1)(_slow)(5)


# ------------------------------------------------------------------ (2) the decision
def test_zero_gpu_only_where_spaces_imports_and_it_is_asked_for(spaces, monkeypatch):
    studio = Studio(ModelCache(device="cpu"))
    assert zero_gpu() and isinstance(choose_backend(studio), ZeroGpuBackend)  # SPACES_ZERO_GPU=1, `spaces` imports
    monkeypatch.setenv("UNLEARNING_ZERO_GPU", "0")
    assert not zero_gpu()
    monkeypatch.delenv("UNLEARNING_ZERO_GPU")
    monkeypatch.delenv("SPACES_ZERO_GPU")
    assert not zero_gpu() and isinstance(choose_backend(studio), LocalBackend)
    monkeypatch.setenv("UNLEARNING_ZERO_GPU", "1")
    assert zero_gpu()
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed
    assert not zero_gpu()


# ------------------------------------------------------------------ (3) engine paths through workers
def _upload(session: Session, tmp_path: Path, lines: list[str], role: str) -> None:
    (tmp_path / f"{role}.jsonl").write_text("".join(lines), encoding="utf-8")
    session.upload(role, tmp_path / f"{role}.jsonl", f"{role}.jsonl")


def _reply(backend, session: Session, question: str) -> str:
    return list(backend.chat(session, ChatJob("workshop", question)))[-1].original


def test_teach_chat_and_stops_go_through_workers_and_the_folder(spaces, tmp_path):
    studio = Studio(ModelCache(device="cpu"))
    backend = ZeroGpuBackend(studio, gpu_call(studio, 300), gpu_call(studio, 300))
    holdout = (WORKSHOP_DIR / "holdout.jsonl").read_text(encoding="utf-8").splitlines(True)
    session = Session()
    _upload(session, tmp_path, holdout[:8], "forget")
    _upload(session, tmp_path, holdout[8:16], "retain")
    question = json.loads(holdout[0])["question"]
    base_reply = _reply(backend, session, question)

    run = backend.start(session, TeachJob("workshop", epochs=8))
    run.drive()
    assert run.state == "done", run.error
    assert session.taught is None  # the taught models live in the worker and the folder, not here
    here = Session(taught=load_model(str(session.folder / "taught" / "model"), "cpu"))
    direct = list(studio.chat(here, ChatJob("workshop", question)))[-1].original
    here.close()
    assert _reply(backend, session, question) == direct != base_reply  # a worker found the taught model in the folder

    backend.run_seconds = 0.01
    run = backend.start(session, TeachJob("workshop"))
    run.drive()
    assert run.state == "failed" and "stopped after 0 s" in run.error

    with pytest.raises(UserError, match="Type a message"):
        list(backend.chat(session, ChatJob("workshop", "  ")))
    backend.run_seconds = 300
    run = backend.start(session, UnlearnJob("workshop", "ihl-fila", {"steps": 50, "stop": "steps"}))
    with pytest.raises(UserError, match="already going"):
        backend.start(session, TeachJob("workshop"))  # one run per session, whichever kind
    driver = threading.Thread(target=run.drive)
    driver.start()
    deadline = time.time() + 120
    while not run.since(0) and time.time() < deadline:  # the worker has started
        time.sleep(0.05)
    session.close()  # the tab closed: the folder goes, and the worker stops at its next check
    driver.join(120)
    assert run.state == "cancelled" and session.artifact is None


# ------------------------------------------------------------------ (4) python app.py on "ZeroGPU"
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def zero_app():
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
           "SPACES_ZERO_GPU": "1", "UNLEARNING_THREADS": "1", "UNLEARNING_GPU_SECONDS": "600",
           "PYTHONPATH": os.pathsep.join([str(FAKE), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("UNLEARNING_ZERO_GPU", None)
    log_path = ROOT / "test-artifacts" / "zerogpu-server.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url, deadline = f"http://127.0.0.1:{port}/", time.time() + 180
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"app.py exited with code {proc.returncode}; see {log_path.name}")
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            proc.kill()
            pytest.fail("app.py did not answer within 180 s")
        yield url, log_path
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _text(message) -> str:
    content = message["content"]
    return content if isinstance(content, str) else content[0]["text"]


def _settings(method: str, **overrides) -> list:
    from components.method_panel import setting_specs

    return ["workshop", method] + [overrides.get(n, s["default"]) for n, s in setting_specs().items()]


def _poll_until_end(client, seconds: float, until=lambda bar: False) -> tuple[list[tuple[str, object]], str | None]:
    """/poll until the run ends (or `until(bar)`): every (bar, plot) seen, and the end state."""
    seen, deadline = [], time.time() + seconds
    while time.time() < deadline:
        bar, plot, _timer, finished = client.predict(api_name="/poll")
        # gr.skip() (no run yet, or nothing new) reaches the client as an update dict
        bar, finished = (bar if isinstance(bar, str) else ""), (finished if isinstance(finished, str) else "")
        seen.append((bar, plot))
        if finished or until(bar):
            return seen, finished or None
        time.sleep(0.3)
    return seen, None


def test_app_on_zero_gpu_streams_runs_chats_and_cancels(zero_app, tmp_path):
    from gradio_client import Client, handle_file

    url, log_path = zero_app
    client = Client(url, verbose=False)
    (tmp_path / "forget.jsonl").write_text("".join(json.dumps(f) + "\n" for f in FORGET[:10]), encoding="utf-8")
    (tmp_path / "retain.jsonl").write_text("".join(RETAIN[:30]), encoding="utf-8")
    client.predict(handle_file(str(tmp_path / "forget.jsonl")), api_name="/upload_forget")
    info, *_ = client.predict(handle_file(str(tmp_path / "retain.jsonl")), api_name="/upload_retain")
    assert "10 QA pairs" in info and "30 QA pairs" in info

    job = client.submit(*_settings("eco"), api_name="/start")  # the request carries the GPU call
    seen, finished = _poll_until_end(client, 500)
    job.result(timeout=60)
    assert finished == "done", seen[-1][0] if seen else "no poll answered"
    percents = {int(bar.split("running — ")[1].split("%")[0]) for bar, _ in seen if "running —" in bar}
    assert len(percents) >= 2, seen  # progress reached the page while the worker ran
    assert any(plot for bar, plot in seen if "running —" in bar)  # and so did the live plot

    table, cost, *_ = client.predict(api_name="/report")
    assert "eco" in cost and "forget.rougeL" in table

    left, right, badge, _ = client.predict(FORGET[0]["question"], "workshop", [], [], api_name="/chat")
    assert _text(left[-1]) == FORGET[0]["answer"]
    assert _text(right[-1]) and _text(right[-1]) != FORGET[0]["answer"] and "<b>flagged</b>" in badge

    job = client.submit(*_settings("ihl-fila", steps=500, stop="steps"), api_name="/start")
    _poll_until_end(client, 300, until=lambda bar: "before:" in bar or "step" in bar)
    t_cancel = time.time()
    client.predict(api_name="/cancel")
    seen, finished = _poll_until_end(client, 120)
    job.result(timeout=60)
    assert finished == "cancelled" and time.time() - t_cancel < 60, seen[-1][0]
    left, right, badge, _ = client.predict(FORGET[0]["question"], "workshop", [], [], api_name="/chat")
    assert _text(left[-1]) == FORGET[0]["answer"]  # the cancelled run kept nothing: ECO's run still answers
    assert _text(right[-1]) not in (FORGET[0]["answer"], NOTE) and "<b>flagged</b>" in badge
    assert "fake ZeroGPU" not in log_path.read_text()  # the app process never ran the model


def test_a_stress_test_runs_in_a_worker_on_the_saved_artifact(spaces):
    """The stress test is one more job for the same interface: the worker attaches the
    artifact the earlier run saved in the session folder, and the report comes back."""
    studio = Studio(ModelCache(device="cpu"))
    backend = ZeroGpuBackend(studio, gpu_call(studio, 300), gpu_call(studio, 300))
    session = Session()
    session.use_preset("qa")
    run = backend.start(session, UnlearnJob("workshop", "eco", {"strength": 1.0, "epochs": 1, "folds": 2}))
    run.drive()
    assert run.state == "done", run.error
    run = backend.start(session, AttackJob("workshop", ("quantize",), {"sample": 4}))
    assert run.kind == "attack"
    run.drive()
    assert run.state == "done", run.error
    block = session.robustness["robustness"]
    assert {"8", "4"} <= set(block["quantize"]) and "weights are unchanged" in block["note"]
    session.close()


def test_a_forked_worker_lets_go_of_the_apps_connections():
    """A worker forked from the app inherits the browsers' connections; unless it drops them, a
    stream the app ends stays open (the child still holds it) and the page waits on it forever."""
    import socket

    from unlearning.service import worker

    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    conn, _ = server.accept()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            worker.drop_inherited_connections()
            os.write(ready_w, b"1")
            time.sleep(10)
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"
        conn.close()  # the app ends the stream…
        client.settimeout(5)
        assert client.recv(1) == b""  # …and the browser sees it end while the worker lives on
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        for s in (client, server):
            s.close()
