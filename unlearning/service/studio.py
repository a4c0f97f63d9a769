"""The studio: the engine's work for a session, done in this process.

    studio = Studio(ModelCache("auto"), DeviceQueue())
    studio.check(session, job)          # every check a job needs, before anything changes
    run = studio.start(session, job)    # UnlearnJob or TeachJob → a Run on a thread
    for reply in studio.chat(session, ChatJob("workshop", "Hello!")): ...

Both backends (service/backends.py) go through here: the local one on its threads, the
ZeroGPU one inside each GPU worker. One base model per name per process is shared by every
session; each session's unlearning lives in its own small artifact (adapters or an ECO
guard) attached to that base.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import limits
from ..errors import Cancelled, UserError
from ..evalcache import EvalCache, shared
from ..runs import Run, RunContext
from . import budget
from .batcher import ChatBatcher
from .chat import chat_stream
from .jobs import AttackJob, ChatJob, Reply, RunJob, TeachJob, UnlearnJob, kind_of
from .models import ModelCache, model_name
from .queue import DeviceQueue
from .session import Session

if TYPE_CHECKING:
    from ..artifacts import Unlearned
    from ..models import Loaded


class Studio:
    def __init__(self, models: ModelCache | None = None, queue: DeviceQueue | None = None, evals: EvalCache | None = None,
                 batcher: ChatBatcher | None = None):
        self.models = models or ModelCache()
        self.queue = queue or DeviceQueue()
        self.batcher = batcher or ChatBatcher()  # chat replies of concurrent sessions decoded together
        self.evals = evals if evals is not None else shared()  # oracle/before evaluations, once per process

    def base(self, session: Session, name: str, wait_s: float | None = None) -> Loaded:
        """The model the session works on: its taught copy, or the shared base called `name`
        (waiting `wait_s` for it if it is still loading: ModelCache.get)."""
        return session.taught or self.models.get(name, wait_s=wait_s)

    def oracle(self, session: Session, name: str) -> Loaded | None:
        """A model that never saw the forget set: the taught oracle, or the kit's for the preset."""
        if session.taught_oracle is not None:
            return session.taught_oracle
        if model_name(name) == "workshop" and session.uses_preset():
            return self.models.get("workshop-oracle")
        return None

    def warm_preset(self, name: str = "workshop") -> float | None:
        """Evaluate the workshop preset's `before` and oracle into the evaluation cache: the
        seconds it took, or None for a model other than the workshop's (its preset has no
        oracle, and a large model's evaluation is no warm-up). Called on a thread as the app
        starts, so the room's first run on the preset trains without computing them alongside
        (measured: the first IHL + FILA run's page time, benchmarks/RESULTS.md "Fast feedback")."""
        from ..pipeline import warm_reference

        if model_name(name) != "workshop":
            return None
        session = Session()
        session.use_preset()
        return warm_reference(self.models.get(name), self.oracle(session, name), session.splits(), self.evals)

    # -------------------------------------------------------------- runs
    def check(self, session: Session, job: RunJob) -> float:
        """Everything that can be refused before a run starts, in the words the user sees:
        a run already going, a bad method or setting, missing data, a run heavier than the
        session's share of the device (budget.py), an unknown model. The run's estimated
        device seconds, for budget.charge once it starts. (It also loads the model, so a
        ZeroGPU worker forked afterwards inherits it.)"""
        session.check_idle()
        cfg: Any = None
        if isinstance(job, UnlearnJob):
            from ..methods import get_method
            from ..settings import build

            cfg = build(get_method(job.method).Config, job.settings)
            session.check_room()
        if isinstance(job, AttackJob):
            cfg = attack_settings(job)
            if session.artifact is None:
                raise UserError("There is no unlearned model to stress-test yet: run a method first.")
        forget = session.splits()["forget"]
        seconds = budget.estimate(job, cfg, len(forget.examples))
        budget.check(session, job, seconds)
        self.base(session, job.model_name)
        return seconds

    def start(self, session: Session, job: RunJob) -> Run:
        """Check `job`, then run it on a background thread; it waits for the device if another runs."""
        with session.starting():  # one start at a time: the idle check and the new run are one step
            seconds = self.check(session, job)
            if isinstance(job, UnlearnJob):
                work, method = self._unlearn(session, job), job.method
            elif isinstance(job, AttackJob):
                work, method = self._attack(session, job), None
            else:
                work, method = self._teach(session, job), None
            run = session.adopt(Run(work, name=f"{type(job).__name__}-{session.id}", method=method, kind=kind_of(job)))
            budget.charge(session, seconds)
            return run.start()

    def _attack(self, session: Session, job: AttackJob):
        """The stress tests of the session's artifact (attacks/), against the oracle when there is one."""
        from ..artifacts import Unlearned
        from ..attacks import attack_job

        base, artifact = self.with_run(session, job.model_name)
        if not isinstance(artifact, Unlearned):
            raise TypeError(f"a stress test needs an artifact attached in this process, not a {type(artifact).__name__}")
        session.robustness, number = None, session.current  # the kept run under test, whatever is current later
        attack = attack_job(base, artifact, session.splits(),
                            self.oracle(session, job.model_name), attack_settings(job), self._paraphrased(session))

        def work(ctx: RunContext) -> dict:
            with self.queue.hold(ctx):
                report = attack(ctx)
            session.keep_robustness(report, number)
            return report

        return work

    @staticmethod
    def _paraphrased(session: Session) -> dict | None:
        """The kit's held-out wordings when the session's data is the workshop preset."""
        if not session.uses_preset() or session.data["forget"].kind != "qa":
            return None
        from ..data import load_file
        from ..models import WORKSHOP_DIR

        return {role: load_file(WORKSHOP_DIR / f"{role}_paraphrased.jsonl") for role in ("forget", "retain")}

    def _unlearn(self, session: Session, job: UnlearnJob):
        from ..methods import get_method
        from ..pipeline import unlearn_job
        from ..settings import build

        method = get_method(job.method)
        cfg = build(method.Config, job.settings)
        unlearn = unlearn_job(method, cfg, self.base(session, job.model_name), session.splits(),
                              self.oracle(session, job.model_name), cache=self.evals)

        def work(ctx: RunContext) -> dict:
            with self.queue.hold(ctx):
                result = unlearn(ctx)
            with session.lock:
                if ctx.cancelled:  # cancelled, or the session closed, after the job's last check
                    raise Cancelled()  # so its undo releases the artifact
                session.keep(job.method, result["unlearned"], result["report"])
            return result["report"]

        return work

    def _teach(self, session: Session, job: TeachJob):
        """Teach a session copy of the model forget+retain, and an oracle retain only; each
        replays what the base model was taught (the workshop kit's data), so it keeps it."""
        import copy
        from dataclasses import replace

        from ..models import Loaded
        from ..teach import TeachSettings, teach
        from ..workshop import replay_data

        cfg = TeachSettings() if job.epochs is None else replace(TeachSettings(), epochs=job.epochs)
        forget, retain = session.splits()["forget"], session.data["retain"]
        base = self.models.get(job.model_name)
        replay = replay_data(model_name(job.model_name))

        def work(ctx: RunContext) -> str:
            with self.queue.hold(ctx):
                taught = {}
                for label, sets in (("model", [forget, retain]), ("oracle", [retain])):
                    model = copy.deepcopy(base.model)
                    teach(model, base.tokenizer, sets, replay, cfg, _on_step(ctx, label), _on_epoch(ctx, label), ctx.check_cancel)
                    taught[label] = Loaded(model, base.tokenizer, f"{base.name} (taught {label})", base.device)
            session.clear_result()  # an artifact of the untaught model means nothing for the taught one
            session.taught, session.taught_oracle = taught["model"], taught["oracle"]
            return "taught"

        return work

    # -------------------------------------------------------------- chat
    def chat(self, session: Session, job: ChatJob) -> Iterator[Reply]:
        """Both answers, growing together, batched with other sessions' (see chat.py)."""
        # A model still loading is not waited for here: each chat holds one of the chat pool's
        # places while it waits, and chats naming slow models would keep everyone else's out.
        base, artifact = self.with_run(session, job.model_name, limits.CHAT_MODEL_WAIT_S)
        return chat_stream(base, artifact, job.prompt, job.max_new_tokens, self.batcher)

    def with_run(self, session: Session, name: str, wait_s: float | None = None) -> tuple[Loaded, Unlearned | None]:
        """The base model and the session's current run, for chat and stress tests: the run's
        own base, which it holds (a model cache that let that model go meanwhile would load a
        copy without the run on it). A run made on another model than `name` is one sentence,
        never a silent answer from a model it was not made on."""
        from ..artifacts import Unlearned

        artifact = session.artifact
        if artifact is None:
            return self.base(session, name, wait_s), None
        if not isinstance(artifact, Unlearned):
            raise TypeError(f"this needs an artifact attached in this process, not a {type(artifact).__name__}")
        wanted = session.taught.name if session.taught is not None else model_name(name)
        if artifact.loaded.name != wanted:
            which = f"Run #{session.current}" if session.current is not None else "The unlearned model"
            raise UserError(f"{which} was made on {artifact.loaded.name}, not {wanted}: choose {artifact.loaded.name} "
                            "as the model to use it.")
        return artifact.loaded, artifact


def attack_settings(job: AttackJob):
    """The job's AttackSettings, checked (a bad value or attack name is one sentence)."""
    from ..attacks import AttackSettings
    from ..settings import build

    values = dict(job.settings)
    if job.attacks:
        values["attacks"] = ",".join(job.attacks)
    cfg = build(AttackSettings, values)
    cfg.names()
    return cfg


def _on_step(ctx: RunContext, label: str):
    def on_step(step: int, total: int, record: dict[str, Any]) -> None:
        ctx.step(f"teach {label}", step, total, {"loss": record["loss"]})

    return on_step


def _on_epoch(ctx: RunContext, label: str):
    def on_epoch(epoch: dict[str, Any]) -> None:
        ctx.log(f"teach {label}: epoch {epoch['epoch']}, recall {epoch['recall']:.2f}")

    return on_epoch
