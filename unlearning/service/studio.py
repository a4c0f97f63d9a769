"""The studio: the engine's work for a session, done in this process.

    studio = Studio(ModelCache("auto"), DeviceQueue())
    studio.check(session, job)          # every check a job needs, before anything changes
    run = studio.start(session, job)    # any RunJob (service/jobs.py) → a Run on a thread
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
from ..evaluation.cache import EvalCache, shared
from ..runs import Run, RunContext
from .batcher import ChatBatcher
from .budget import charge
from .budget import check as check_budget
from .chat import chat_stream
from .handles import Reply
from .jobs import ChatJob, RunJob, WorkFn
from .knows import Known, known
from .models import ModelCache, model_name
from .queue import DeviceQueue
from .session import Session

KNOWS_CPU_PARAMS = 500_000_000  # larger models on a CPU take too long to ask on every upload

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
        self._known: dict[tuple, Known | None] = {}  # knows(): per model and forget questions

    def base(self, session: Session, name: str, wait_s: float | None = None, fisher: bool = False) -> Loaded:
        """The model the session works on: its taught copy, or the shared base called `name`
        (waiting `wait_s` for it if it is still loading; `fisher`: with room for FILA's Fisher
        pass beside it: ModelCache.get)."""
        taught = session.taught
        if taught is None:
            return self.models.get(name, wait_s=wait_s, fisher=fisher)
        if fisher:
            from ..model_check import check_fisher_room

            check_fisher_room(taught.name, taught.model, taught.device, taught.device_map is not None)
        return taught

    def oracle(self, session: Session, name: str) -> Loaded | None:
        """A model that never saw the forget set: the taught oracle, or the kit's for the preset."""
        if session.taught_oracle is not None:
            return session.taught_oracle
        if model_name(name) == "workshop" and session.uses_preset():
            return self.models.get("workshop-oracle")
        bench = session.uses_benchmark()  # a benchmark's published retain model, beside its target model
        if bench is not None and model_name(name) == bench.model:
            return self.models.get(bench.oracle)
        return None

    def warm_preset(self, name: str = "workshop") -> float | None:
        """Evaluate the workshop preset's `before` and oracle into the evaluation cache: the
        seconds it took, or None for a model other than the workshop's (its preset has no
        oracle, and a large model's evaluation is no warm-up). Called on a thread as the app
        starts, so the room's first run on the preset trains without computing them alongside
        (measured: the first IHL + FILA run's page time, benchmarks/RESULTS.md "Fast feedback")."""
        from ..pipeline import prime, warm_reference

        if model_name(name) != "workshop":
            return None
        session = Session()
        session.use_preset()
        seconds = warm_reference(self.models.get(name), self.oracle(session, name), session.splits(), self.evals)
        prime()  # and what a run loads on first use (the evaluations are usually read from the shipped file)
        return seconds

    def knows(self, session: Session, name: str) -> Known | None:
        """How much of the session's forget QA its model (the taught copy, after Teach first)
        answers already (knows.py); None without forget QA, or for a model too large to ask on
        the app's CPU. Kept per model and data, so a room choosing the preset asks once."""
        forget = session.data.get("forget")
        if forget is None:
            return None
        base = self.base(session, model_name(name), limits.CHAT_MODEL_WAIT_S)
        if base.device == "cpu" and sum(p.numel() for p in base.model.parameters()) > KNOWS_CPU_PARAMS:
            return None
        key = (id(base.model), tuple(forget.prompts()))
        if key not in self._known:
            if len(self._known) >= 64:
                self._known.pop(next(iter(self._known)))
            self._known[key] = known(base, forget)
        return self._known[key]

    # -------------------------------------------------------------- runs
    def check(self, session: Session, job: RunJob) -> float:
        """Everything that can be refused before a run starts, in the words the user sees:
        a run already going, what the job itself refuses (RunJob.check), missing data, a run
        heavier than the session's share of the device (budget.py), an unknown model, a FILA
        method whose Fisher pass would not fit beside the model (RunJob.fisher_pass). The run's
        estimated device seconds, for budget.charge once it starts. (It also loads the model,
        so a ZeroGPU worker forked afterwards inherits it.)"""
        return self._check(session, job)[1]

    def _check(self, session: Session, job: RunJob) -> tuple[Any, float]:
        """Studio.check, with the job's checked settings (built here once)."""
        session.check_idle()
        cfg = job.check(session)
        seconds = job.estimate(cfg, len(session.splits()["forget"].examples))
        check_budget(session, seconds, job.lower)
        self.base(session, job.model_name, fisher=job.fisher_pass())
        return cfg, seconds

    def start(self, session: Session, job: RunJob) -> Run:
        """Check `job`, then run it on a background thread; it waits for the device if another runs."""
        with session.starting():  # one start at a time: the idle check and the new run are one step
            cfg, seconds = self._check(session, job)
            work = job.work(self, session, cfg)
            job = job.begin(session)
            run = session.adopt(Run(self._kept(session, job, work), name=f"{type(job).__name__}-{session.id}",
                                    method=job.unlearning_method(), kind=job.kind))
            charge(session, seconds)
            return run.start()

    def _kept(self, session: Session, job: RunJob, work: WorkFn) -> WorkFn:
        """`work` taking its turn on the device, then leaving its result in the session."""

        def run(ctx: RunContext) -> Any:
            with self.queue.hold(ctx):
                result = work(ctx)
            with session.lock:
                if ctx.cancelled:  # cancelled, or the session closed, after the job's last check
                    raise Cancelled()  # so its undo releases what it made
                return job.keep(session, result)

        return run

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

