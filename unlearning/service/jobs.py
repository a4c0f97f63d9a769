"""What the app asks the engine to do, as typed, picklable jobs; each run job owns its life.

    UnlearnJob("workshop", "ihl-fila", {"steps": 40})   → a RunHandle; its artifact kept on success
    TeachJob("workshop")                                 → a RunHandle; the session's taught models
    AttackJob("workshop", ("relearn", "quantize"))       → a RunHandle; the current run's stress-test report
    ChatJob("workshop", "Where was Yara born?")          → Reply after Reply as the answers grow

A run job's life, whichever backend carries it (service/backends.py):

    cfg = job.check(session)                     # refusals before anything changes; its settings, built once
    seconds = job.estimate(cfg, examples)        # its share of the device (service/budget.py)
    job.fisher_pass()                            # FILA's Fisher sums must fit beside the model (model_check)
    work = job.work(studio, session, cfg)        # what runs on the device: work(ctx) → a result
    job = job.begin(session)                     # what changes in the session as it starts
    job.keep(session, result)                    # what the finished job leaves in the session
    message = job.save(session, folder, kept)    # in a GPU worker: that, written in the session folder…
    job.keep(session, job.load(folder, message)) # … and read back into the app's session

A new kind of run is one subclass of RunJob (tests/test_add_job.py adds one at run time).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..errors import UserError
from ..runs import RunContext
from .budget import run_s, stress_s
from .models import ModelCache, model_name
from .saved import TAUGHT, UNLEARNED, keep_unlearned, save_loaded, write
from .session import Session

if TYPE_CHECKING:
    from ..artifacts import Unlearned
    from ..evaluation.cache import EvalCache
    from ..models import Loaded

WorkFn = Callable[[RunContext], Any]  # a run's work function (runs.py)


class Engine(Protocol):
    """What a job's work is given of the studio (service/studio.py): the shared models and caches."""

    models: ModelCache
    evals: EvalCache

    def base(self, session: Session, name: str, wait_s: float | None = None, fisher: bool = False) -> Loaded: ...

    def oracle(self, session: Session, name: str) -> Loaded | None: ...

    def with_run(self, session: Session, name: str, wait_s: float | None = None) -> tuple[Loaded, Unlearned | None]: ...


class Job:
    """Any job names a model; a GPU worker rebuilds the parts of the session it `needs_`."""

    model_name: str
    needs_taught: ClassVar[bool] = True  # the session's taught model, where it has one
    needs_oracle: ClassVar[bool] = False  # … and its taught oracle
    needs_run: ClassVar[bool] = False  # the current kept run's artifact


class RunJob(Job, ABC):
    """A job that runs on the device as a run with events: what every kind does unless it says
    otherwise; `work` each kind must say."""

    kind: ClassVar[str]  # which panel shows the run
    lower: ClassVar[str] = "lower the steps, the batch size or the rank"  # when it is over the device budget

    def unlearning_method(self) -> str | None:
        """The method whose plots the run draws (None: a run that unlearns nothing)."""
        return None

    def check(self, session: Session) -> Any:
        """Refuse, in one sentence the user sees, what cannot start; the job's checked settings."""
        return None

    def estimate(self, cfg: Any, examples: int) -> float:
        """Seconds of the device it takes, on `examples` forget examples."""
        return 0.0

    def fisher_pass(self) -> bool:
        """Whether it holds FILA's Fisher sums beside the model's weights (the studio checks they fit)."""
        return False

    @abstractmethod
    def work(self, engine: Engine, session: Session, cfg: Any) -> WorkFn:
        """What runs on the device, given the checked settings: its return is what keep() takes."""

    def begin(self, session: Session) -> RunJob:
        """The job as it starts in `session`, after whatever starting it changes there."""
        return self

    def keep(self, session: Session, result: Any) -> Any:
        """Leave the finished work's `result` in the session (under its lock); the run's result."""
        return result

    def save(self, session: Session, folder: Path, kept: Any) -> Any:
        """In a GPU worker, after keep: write what the app's session must get into the session
        `folder`; the picklable message load() reads back there."""
        return kept

    def load(self, folder: Path, message: Any) -> Any:
        """In the app: what save() left, as the result keep() takes."""
        return message


@dataclass(frozen=True)
class UnlearnJob(RunJob):
    model_name: str
    method: str
    settings: dict[str, Any] = field(default_factory=dict)

    kind = "unlearn"
    needs_oracle = True

    def unlearning_method(self) -> str | None:
        return self.method

    def check(self, session: Session) -> Any:
        from ..methods import get_method
        from ..settings import build

        cfg = build(get_method(self.method).Config, self.settings)
        session.check_room()
        return cfg

    def estimate(self, cfg: Any, examples: int) -> float:
        return run_s(cfg)

    def fisher_pass(self) -> bool:
        from ..methods import get_method

        return get_method(self.method).fisher_pass

    def work(self, engine: Engine, session: Session, cfg: Any) -> WorkFn:
        from ..methods import get_method
        from ..pipeline import unlearn_job

        return unlearn_job(get_method(self.method), cfg, engine.base(session, self.model_name), session.splits(),
                           engine.oracle(session, self.model_name), cache=engine.evals)

    def keep(self, session: Session, result: dict) -> dict:
        session.keep(self.method, result["unlearned"], result["report"])
        return result["report"]

    def save(self, session: Session, folder: Path, kept: Any) -> Any:
        assert session.artifact is not None, "a finished unlearning run leaves its artifact"
        write(folder / UNLEARNED, session.artifact.save)
        return kept

    def load(self, folder: Path, message: Any) -> dict:
        return {"unlearned": keep_unlearned(folder), "report": message}


@dataclass(frozen=True)
class TeachJob(RunJob):
    """Teach a session copy of the model the session's forget+retain data, and an oracle the
    retain data only (see teach.py); each replays what the base model was taught (the
    workshop kit's data), so it keeps it."""

    model_name: str
    epochs: int | None = None

    kind = "teach"
    needs_taught = False  # teaching starts again from the shared base
    # (no estimate: teaching stops once the new facts are known, and the run's time limit holds it)

    def check(self, session: Session) -> Any:
        from ..kit.teach import TeachSettings

        return TeachSettings() if self.epochs is None else replace(TeachSettings(), epochs=self.epochs)

    def work(self, engine: Engine, session: Session, cfg: Any) -> WorkFn:
        from ..kit.teach import teach
        from ..kit.workshop import replay_data
        from ..models import Loaded

        forget, retain = session.splits()["forget"], session.data["retain"]
        base = engine.models.get(self.model_name)
        replay = replay_data(model_name(self.model_name))

        def work(ctx: RunContext) -> dict[str, Loaded]:
            taught, why = {}, []
            for i, (label, sets) in enumerate((("model", [forget, retain]), ("oracle", [retain]))):
                model = copy.deepcopy(base.model)
                watch = Teaching(ctx.within(i / 2, (i + 1) / 2), label, cfg)  # each model half of the bar
                teach(model, base.tokenizer, sets, replay, cfg, watch.on_step, watch.on_epoch, ctx.check_cancel)
                why.append(watch.why())
                taught[label] = Loaded(model, base.tokenizer, f"{base.name} (taught {label})", base.device)
            ctx.progress(1.0, "; ".join(why))
            return taught

        return work

    def keep(self, session: Session, result: dict) -> str:
        session.clear_result()  # an artifact of the untaught model means nothing for the taught one
        session.taught, session.taught_oracle = result.get("model"), result.get("oracle")
        return "taught"

    def save(self, session: Session, folder: Path, kept: Any) -> Any:
        for label, loaded in (("model", session.taught), ("oracle", session.taught_oracle)):
            assert loaded is not None, "a finished teaching run leaves both models"
            write(folder / TAUGHT / label, partial(save_loaded, loaded))
        return kept

    def load(self, folder: Path, message: Any) -> dict:
        return {}  # the taught models stay in the folder, where each GPU worker loads them


@dataclass(frozen=True)
class AttackJob(RunJob):
    """Stress-test the session's current kept run: each attack on the original, the unlearned
    model and the oracle (attacks/); `settings` are AttackSettings fields."""

    model_name: str
    attacks: tuple[str, ...] = ()  # empty: every attack
    settings: dict[str, Any] = field(default_factory=dict)
    run: int | None = None  # the kept run under test, set as it starts (whatever is current later)

    kind = "attack"
    lower = "lower the relearning steps, the sample or the attacks chosen"
    needs_oracle = True
    needs_run = True

    def check(self, session: Session) -> Any:
        cfg = attack_settings(self)
        if session.artifact is None:
            raise UserError("There is no unlearned model to stress-test yet: run a method first.")
        return cfg

    def estimate(self, cfg: Any, examples: int) -> float:
        return stress_s(cfg, examples)

    def work(self, engine: Engine, session: Session, cfg: Any) -> WorkFn:
        from ..artifacts import Unlearned
        from ..attacks import attack_job

        base, artifact = engine.with_run(session, self.model_name)
        if not isinstance(artifact, Unlearned):
            raise TypeError(f"a stress test needs an artifact attached in this process, not a {type(artifact).__name__}")
        return attack_job(base, artifact, session.splits(), engine.oracle(session, self.model_name), cfg,
                          _paraphrased(session))

    def begin(self, session: Session) -> AttackJob:
        session.keep_robustness(None, session.current)  # the last test's result goes as the next starts
        return replace(self, run=session.current)

    def keep(self, session: Session, result: dict) -> dict:
        session.keep_robustness(result, self.run)
        return result


@dataclass(frozen=True)
class ChatJob(Job):
    model_name: str
    prompt: str
    max_new_tokens: int | None = None

    needs_run = True


def attack_settings(job: AttackJob) -> Any:
    """The job's AttackSettings, checked (a bad value or attack name is one sentence)."""
    from ..attacks import AttackSettings
    from ..settings import build

    values = dict(job.settings)
    if job.attacks:
        values["attacks"] = ",".join(job.attacks)
    cfg = build(AttackSettings, values)
    cfg.names()
    return cfg


def _paraphrased(session: Session) -> dict | None:
    """The kit's held-out wordings when the session's data is the workshop preset."""
    if not session.uses_preset() or session.data["forget"].kind != "qa":
        return None
    from ..data import load_file
    from ..models import WORKSHOP_DIR

    return {role: load_file(WORKSHOP_DIR / f"{role}_paraphrased.jsonl") for role in ("forget", "retain")}


class Teaching:
    """One model's teaching as the page sees it: each step a point of its loss and the bar (the
    steps done, or the recall toward the stopping point, whichever is further: teaching stops
    once the new facts are known, usually long before its last epoch), each epoch its recall,
    and at the end why it stopped."""

    def __init__(self, ctx: RunContext, label: str, cfg: Any):
        self.ctx, self.label, self.stop_at = ctx, label, float(cfg.stop_at)
        self.epoch, self.epochs = 0, int(cfg.epochs)
        self.recall: float | None = None  # of the last epoch's sample

    def on_step(self, step: int, total: int, record: dict[str, Any]) -> None:
        self.ctx.step(f"teach {self.label}", step, total, {"loss": record["loss"]})
        done, said = step / max(total, 1), f"teaching the {self.label}: step {step}"
        if self.recall is not None:
            done = max(done, self.recall / self.stop_at if self.stop_at > 0 else 0.0)
            said += f", recall {self.recall:.2f} after epoch {self.epoch}" + (f" (stops at {self.stop_at:.2f})" if self.stop_at else "")
        self.ctx.progress(min(done, 0.99), said)

    def on_epoch(self, epoch: dict[str, Any]) -> None:
        self.epoch, self.epochs, self.recall = int(epoch["epoch"]), int(epoch["epochs"]), float(epoch["recall"])
        self.ctx.log(f"teach {self.label}: epoch {self.epoch}, recall {self.recall:.2f}")

    def why(self) -> str:
        """Why this teaching stopped, in one clause."""
        if self.recall is None:
            return f"the {self.label} was taught for {self.epochs} epochs"
        if self.stop_at > 0 and self.recall >= self.stop_at:
            return (f"the {self.label} knew its new facts after epoch {self.epoch} of {self.epochs} "
                    f"(recall {self.recall:.2f} ≥ {self.stop_at:.2f}), so it stopped there")
        return f"the {self.label} ran all {self.epochs} epochs (recall {self.recall:.2f}, aiming at {self.stop_at:.2f})"
