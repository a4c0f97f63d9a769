"""The service layer: the multi-user face of the engine, and all the app reaches it through.

    models.py    ModelCache: one base model per name per process, each loading on its own
                 thread, a bounded cache of the models visitors name
    queue.py     DeviceQueue: training runs take turns on the device
    session.py   Session: one browser tab's data, run, kept runs (artifact, report) and folder
    registry.py  Sessions: which page holds which session, and when a session really ends
    export.py    the session's artifact as a zip, or pushed to the Hub
    uploads.py   the files sessions claim outside their folders; uploads no session claims swept
    handles.py   what the app holds: the RunHandle and Artifact protocols both backends honour, Reply
    jobs.py      the typed jobs (UnlearnJob, TeachJob, AttackJob, ChatJob); each run job owns its
                 life: check, work, keep (what it leaves in the session), save (what a GPU worker writes)
    budget.py    how much of the shared device a run would take, and each session's share of it
    studio.py    Studio: a run job checked, carried on a thread and kept, in this process; chat
    chat.py      the side-by-side chat stream
    backends.py  Backend: ONE interface; LocalBackend (threads) and the choice of ZeroGPU
    zerogpu.py   ZeroGpuBackend, RemoteRun: the app's side of GPU workers
    worker.py    what a GPU worker does with one job
    saved.py     the session folder both see: what a worker saves there, SavedArtifact
    catalog.py   what the UI shows of the methods and of a report
    stress.py    what the UI shows of a stress test: one picture per attack
    compare.py   what the UI shows of the kept runs (compare rows and points) and of one report
                 at a glance (key metrics, warnings where a number misleads)

Importing this package never imports torch (the engine loads it when a model is needed).
"""

from __future__ import annotations

from .. import limits
from ..data import Dataset
from ..errors import UserError
from ..runs import Event
from .backends import Backend, LocalBackend, choose_backend, zero_gpu
from .export import artifact_zip, push_to_hub
from .handles import Artifact, Reply, RunHandle
from .jobs import AttackJob, ChatJob, RunJob, TeachJob, UnlearnJob
from .lifetimes import Sessions
from .models import DEFAULT_MODEL, ModelCache, model_name
from .queue import DeviceQueue
from .session import KeptRun, Session, new_folder, sweep_leftovers
from .studio import Studio

__all__ = ["DEFAULT_MODEL", "Artifact", "AttackJob", "Backend", "ChatJob", "Dataset", "DeviceQueue", "Event", "KeptRun", "LocalBackend",
           "ModelCache", "Reply", "RunHandle", "RunJob", "Session", "Sessions", "Studio", "TeachJob", "UnlearnJob", "UserError",
           "artifact_zip", "choose_backend", "limits", "model_name", "new_folder", "push_to_hub", "sweep_leftovers",
           "zero_gpu"]
