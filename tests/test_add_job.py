"""Adding a kind of job is one class: a job written here, unknown to the service layer, is
checked, run, kept and (on ZeroGPU) saved and read back by both backends, with nothing else
edited; as tests/test_add_method.py does for methods."""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from unlearning.errors import UserError
from unlearning.runs import RunContext
from unlearning.service import LocalBackend, ModelCache, Session, Studio
from unlearning.service.jobs import RunJob
from unlearning.service.zerogpu import ZeroGpuBackend, gpu_call

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fake_spaces"


@dataclass(frozen=True)
class CountJob(RunJob):
    """Counts the lines of the session's forget set and keeps the number in the session.
    (At module level: a ZeroGPU worker gets the job pickled, by its class's name.)"""

    model_name: str
    at_least: int = 1

    kind = "count"
    needs_taught = False  # a worker need not load the session's taught model for it

    def check(self, session: Session) -> int:
        lines = len(session.splits()["forget"].examples)
        if lines < self.at_least:
            raise UserError(f"There are {lines} forget lines, fewer than {self.at_least}.")
        return lines

    def work(self, engine, session: Session, cfg: int):
        def count(ctx: RunContext) -> int:
            ctx.progress(1.0, f"counted {cfg} lines")
            return cfg

        return count

    def keep(self, session: Session, result: int) -> int:
        session.counted = result
        return result


@pytest.fixture
def spaces(monkeypatch):
    """The fake `spaces` (tests/test_zerogpu.py), imported fresh with SPACES_ZERO_GPU=1."""
    import gradio as gr

    monkeypatch.setattr(gr.Blocks, "launch", gr.Blocks.launch)
    monkeypatch.setenv("SPACES_ZERO_GPU", "1")
    spec = importlib.util.spec_from_file_location("spaces", FAKE / "spaces.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "spaces", module)
    spec.loader.exec_module(module)
    yield module
    module.shutdown()


def _count_on(backend) -> None:
    session = Session()
    session.use_preset("qa")
    lines = len(session.data["forget"].examples)
    try:
        with pytest.raises(UserError, match=f"There are {lines} forget lines, fewer than {lines + 1}"):
            backend.start(session, CountJob("workshop", at_least=lines + 1))
        run = backend.start(session, CountJob("workshop"))
        assert run.kind == "count" and run.method is None
        run.drive()  # a GPU call lasts till the run ends; a thread carries itself
        deadline = time.time() + 60
        while not run.finished and time.time() < deadline:
            time.sleep(0.05)
        assert run.state == "done", run.error
        assert session.counted == lines and any(f"counted {lines} lines" in e.message for e in run.since(0))
        assert session.kept == [] and session.artifact is None  # it left nothing it did not keep itself
    finally:
        session.close()


def test_a_new_job_runs_on_the_local_backend():
    _count_on(LocalBackend(Studio(ModelCache(device="cpu"))))


def test_a_new_job_runs_in_a_zero_gpu_worker(spaces):
    studio = Studio(ModelCache(device="cpu"))
    _count_on(ZeroGpuBackend(studio, gpu_call(studio, 120), gpu_call(studio, 120)))


def test_no_module_of_the_service_layer_tests_a_jobs_type():
    """The jobs own their life: the studio and both backends only call them."""
    service = ROOT / "unlearning" / "service"
    dispatch = re.compile(r"isinstance\((work\.)?job\b|kind_of\(|\bjob\.kind ==")
    found = [f"{p.name}:{i}" for p in sorted(service.glob("*.py")) if p.name != "jobs.py"
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if dispatch.search(line)]
    assert found == []
