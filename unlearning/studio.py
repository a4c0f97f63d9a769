"""The engine's face for the app: shared base models, one state per browser session, runs
that queue for the device, and side-by-side chat.

The UI calls only what is here (and reads `Run` events); it never touches torch. One base
model per name per process, shared by every session; each session's unlearning lives in its
own small artifact (adapters or an ECO guard) attached to that base.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from . import limits
from .data import Dataset, check_pair, load_file
from .errors import Cancelled, UserError
from .models import WORKSHOP_DIR, Loaded, check_visitor_model, load_model
from .pipeline import complete_splits
from .runs import Run, RunContext



@dataclass
class SessionState:
    """Everything one browser session owns. Lives in gr.State; `close()` on session end."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="unlearning-session-")))
    data: dict[str, Dataset] = field(default_factory=dict)  # "forget", "retain" (validated)
    taught: Loaded | None = None  # "teach first": this session's own copy of the model
    taught_oracle: Loaded | None = None
    run: Run | None = None
    unlearned: Any = None  # artifacts.Unlearned of the last finished run
    report: dict | None = None

    def __post_init__(self):
        # Held by close() and by a run keeping its result, so a run that ends as the session
        # closes either sees the cancel or has its artifact released by close(). Not a field:
        # Gradio copies a State's dataclass fields, and a lock cannot be copied.
        self.lock = threading.Lock()

    def __deepcopy__(self, memo):  # gr.State deep-copies its initial value; ours is per session
        return SessionState()

    def close(self) -> None:
        with self.lock:
            if self.run is not None and not self.run.finished:
                self.run.cancel()
            unlearned, self.unlearned = self.unlearned, None
        if unlearned is not None:
            unlearned.release()
        shutil.rmtree(self.folder, ignore_errors=True)


class Studio:
    """Process-wide: the loaded base models and the device's run queue."""

    def __init__(self, device: str = "auto", trust_remote_code: bool = False, local_models: bool = False):
        self.device = device
        self.trust_remote_code = trust_remote_code
        self.local_models = local_models  # may visitors name folders on this machine? (the operator's choice)
        self._models: dict[str, Loaded] = {}
        self._new_locks()
        self._waiting = 0
        _live.add(self)

    def _new_locks(self) -> None:
        """Fresh locks; also in a forked GPU worker, where one held by another thread at the
        fork would stay held forever (see detached.py)."""
        self._models_lock = threading.Lock()
        self._device_slot = threading.Semaphore(limits.DEVICE_RUNS)  # training runs on the device at a time
        self._waiting_lock = threading.Lock()

    # -------------------------------------------------------------- models and data
    def model(self, name: str, operator: bool = False) -> Loaded:
        """The shared base model called `name`, loaded once per process. A visitor's name must
        be a hub id or an alias unless the operator allowed local models; `operator=True` is
        for the name the operator chose (the app's default model), which may be a folder."""
        name = name.strip() or "workshop"
        with self._models_lock:
            if name not in self._models:
                if not (operator or self.local_models):
                    check_visitor_model(name)
                self._models[name] = load_model(name, self.device, self.trust_remote_code)
            return self._models[name]

    def model_info(self, name: str, operator: bool = False) -> dict:
        loaded = self.model(name, operator)
        params = sum(p.numel() for p in loaded.model.parameters())
        dtype = str(next(loaded.model.parameters()).dtype).replace("torch.", "")
        return {"name": loaded.name, "device": loaded.device, "dtype": dtype, "params": params}

    def oracle(self, session: SessionState, model_name: str) -> Loaded | None:
        """A model that never saw the forget set: the taught oracle, or the kit's for the preset."""
        if session.taught_oracle is not None:
            return session.taught_oracle
        if model_name == "workshop" and _is_preset(session.data.get("forget")):
            return self.model("workshop-oracle")
        return None

    @staticmethod
    def preset(kind: str = "qa") -> dict[str, Dataset]:
        """The workshop kit's forget and retain files, with prompts worth trying on each."""
        from .workshop import suggested_prompts

        ext = "jsonl" if kind == "qa" else "txt"
        data = {role: load_file(WORKSHOP_DIR / f"{role}.{ext}") for role in ("forget", "retain")}
        for role, ds in data.items():
            ds.suggested = suggested_prompts(role)
        return data

    @staticmethod
    def upload(session: SessionState, role: str, path: str, display_name: str) -> Dataset:
        """Validate an uploaded file (read from Gradio's temp file) and keep it in the session."""
        ds = load_file(path, display_name)
        other = session.data.get("retain" if role == "forget" else "forget")
        if other is not None:
            check_pair(ds, other) if role == "forget" else check_pair(other, ds)
        session.data[role] = ds
        return ds

    @staticmethod
    def splits(session: SessionState) -> dict[str, Dataset]:
        missing = [r for r in ("forget", "retain") if r not in session.data]
        if missing:
            raise UserError(f"Choose a {missing[0]} file first (or pick the workshop preset).")
        return complete_splits(session.data["forget"], session.data["retain"])

    # -------------------------------------------------------------- runs
    def start(self, session: SessionState, model_name: str, method_name: str, settings: dict[str, Any]) -> Run:
        """Start an unlearning run for the session; it waits for the device if another runs."""
        from .methods import get_method
        from .pipeline import unlearn_job
        from .settings import build

        if session.run is not None and not session.run.finished:
            raise UserError("A run is already going in this session; cancel it or wait for it to finish.")
        method = get_method(method_name)
        cfg = build(method.Config, settings)
        splits = self.splits(session)
        base = session.taught or self.model(model_name)
        oracle = self.oracle(session, model_name)
        if session.unlearned is not None:
            session.unlearned.release()
            session.unlearned, session.report = None, None
        job = unlearn_job(method, cfg, base, splits, oracle)

        def work(ctx: RunContext):
            with self._queued(ctx):
                result = job(ctx)
            with session.lock:
                if ctx.cancelled:  # cancelled, or the session closed, after the job's last check
                    raise Cancelled()  # so its undo releases the artifact
                session.unlearned, session.report = result["unlearned"], result["report"]
            return result["report"]

        session.run = Run(work, name=f"{method.name}-{session.id}").start()
        return session.run

    def _queued(self, ctx: RunContext):
        """Hold the device slot for the run; refuse when too many are already waiting."""
        studio = self

        class Slot:
            def __enter__(self):
                with studio._waiting_lock:
                    if studio._waiting >= limits.MAX_WAITING_RUNS:
                        raise UserError(f"The run queue is full ({limits.MAX_WAITING_RUNS} runs are waiting for the device); "
                                        "try again when one has finished.")
                    studio._waiting += 1
                try:
                    while not studio._device_slot.acquire(timeout=0.5):
                        ctx.progress(0.0, "waiting for another run to finish")
                        ctx.check_cancel()
                finally:
                    with studio._waiting_lock:
                        studio._waiting -= 1
                ctx.restart_clock()  # the time limit counts from here, not from the queue

            def __exit__(self, *exc):
                studio._device_slot.release()

        return Slot()

    def teach_first(self, session: SessionState, model_name: str, epochs: int | None = None) -> Run:
        """Teach a session copy of the model forget+retain, and an oracle retain only; each
        replays what the base model was taught (the workshop kit's data), so it keeps it."""
        import copy

        from .teach import TeachConfig, teach
        from .workshop import replay_data

        cfg = TeachConfig() if epochs is None else TeachConfig(epochs=epochs)
        forget, retain = self.splits(session)["forget"], session.data["retain"]
        base = self.model(model_name)
        replay = replay_data(model_name)

        def work(ctx: RunContext):
            with self._queued(ctx):
                taught = {}
                for label, sets in (("model", [forget, retain]), ("oracle", [retain])):
                    model = copy.deepcopy(base.model)
                    on_step = lambda s, t, r, label=label: ctx.step(f"teach {label}", s, t, {"loss": r["loss"]})  # noqa: E731
                    on_epoch = lambda e, label=label: ctx.log(f"teach {label}: epoch {e['epoch']}, recall {e['recall']:.2f}")  # noqa: E731
                    teach(model, base.tokenizer, sets, replay, cfg, on_step, on_epoch, ctx.check_cancel)
                    taught[label] = Loaded(model, base.tokenizer, f"{model_name} (taught {label})", base.device)
            session.taught, session.taught_oracle = taught["model"], taught["oracle"]
            return "taught"

        session.run = Run(work, name=f"teach-{session.id}").start()
        return session.run

    # -------------------------------------------------------------- artifacts
    @staticmethod
    def artifact_zip(session: SessionState) -> str:
        """The session's artifact (adapter or ECO guard + settings + report) as a zip file."""
        import json

        if session.unlearned is None:
            raise UserError("There is no unlearned model yet: run a method first.")
        folder = session.unlearned.save(session.folder / "artifact")
        if session.report is not None:
            (folder / "report.json").write_text(json.dumps(session.report, indent=2), encoding="utf-8")
        return shutil.make_archive(str(session.folder / f"unlearned-{session.unlearned.method}"), "zip", folder)

    @staticmethod
    def push_to_hub(session: SessionState, repo_id: str, token: str) -> str:
        """Upload the artifact folder to a Hub model repo. The token is used for this one call
        and is neither stored nor logged."""
        from huggingface_hub import HfApi

        from .models import HUB_ID

        repo_id = (repo_id or "").strip()
        if not HUB_ID.match(repo_id) or "/" not in repo_id:
            raise UserError(f"'{repo_id}' is not a repository id like 'owner/name'.")
        if not (token or "").strip():
            raise UserError("Type a Hugging Face access token with write permission to push.")
        if session.unlearned is None:
            raise UserError("There is no unlearned model yet: run a method first.")
        folder = session.unlearned.save(session.folder / "artifact")
        api, failure = HfApi(), None
        try:
            api.create_repo(repo_id, token=token.strip(), exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token.strip(),
                              commit_message=f"Unlearning Studio: {session.unlearned.method} artifact")
        except Exception as e:  # network, auth, permissions: one sentence, never the token
            failure = type(e).__name__
        if failure:  # raised out here, so the error does not carry the original (which may quote the token) as its context
            raise UserError(f"The push to {repo_id} failed ({failure}); check the token's write access and the network.")
        return f"https://huggingface.co/{repo_id}"

    # -------------------------------------------------------------- chat
    def chat(self, session: SessionState, model_name: str, prompt: str, max_new_tokens: int | None = None) -> Iterator[dict]:
        """Stream both answers at once: yields {"original", "unlearned", "flag"} as they grow.

        Greedy decoding alternates one token of each view, switching the view of the one
        shared base model between steps (under its lock), so the two replies grow together.
        """
        from .generate import greedy_tokens, prompt_ids

        check_prompt(prompt)
        base = session.taught or self.model(model_name)
        tok = base.tokenizer
        ids = prompt_ids(tok, prompt)
        unlearned = session.unlearned
        flag = unlearned.flag(prompt) if unlearned is not None else None
        streams, texts, tokens = {}, {"original": "", "unlearned": ""}, {"original": [], "unlearned": []}
        for which in ("original", "unlearned") if unlearned is not None else ("original",):
            streams[which] = greedy_tokens(_view_forward(base, unlearned, which), ids, tok.eos_token_id,
                                           max_new_tokens, device=base.device)
        while streams:
            for which in list(streams):
                token = next(streams[which], None)
                if token is None:
                    del streams[which]
                    continue
                tokens[which].append(token)
                texts[which] = tok.decode(tokens[which], skip_special_tokens=True).strip()
            yield {"original": texts["original"], "unlearned": texts["unlearned"] if unlearned else None, "flag": flag}


_live: "weakref.WeakSet[Studio]" = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [studio._new_locks() for studio in list(_live)])


def check_prompt(prompt: str) -> None:
    """A chat message must have text, stay within limits.MAX_PROMPT_CHARS and be valid text."""
    if not prompt.strip():
        raise UserError("Type a message first.")
    if len(prompt) > limits.MAX_PROMPT_CHARS:
        raise UserError(f"The message has {len(prompt):,} characters; the limit is {limits.MAX_PROMPT_CHARS:,}.")
    if any("\ud800" <= ch <= "\udfff" for ch in prompt):  # invalid UTF-8 in argv, or a client's lone surrogate
        raise UserError("The message is not valid text (it has broken UTF-8 or an unpaired surrogate); type it again.")


def _view_forward(base: Loaded, unlearned, which: str):
    """One step in `which` view of the shared base, taking its lock for that step only."""
    from .artifacts import original

    return original(base.model) if unlearned is None else unlearned.proxy(which)


def _is_preset(ds: Dataset | None) -> bool:
    return ds is not None and ds.name in ("forget.jsonl", "forget.txt") and ds.examples == Studio.preset(ds.kind)["forget"].examples
