"""A session's artifact leaving the app: as a zip to download, or pushed to the Hub.

Both start from a fresh folder holding exactly the last run's artifact (and its report), so
nothing of an earlier run travels with it. The report in it leaves out every text of the
forget set (the very data being forgotten: ECO's probe examples, anything quoting a forget
question, answer or subject) unless the user asks for it; a push makes a private repository
unless the user asks for a public one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..data import QA, Dataset
from ..errors import UserError
from .handles import Artifact
from .session import Session

NO_ARTIFACT = "There is no unlearned model yet: run a method first."
LEFT_OUT = "(forget-set text left out)"
TEXT_KEYS = ("example",)  # report fields that quote data by design


def _artifact(session: Session) -> Artifact:
    """The session's last artifact; a user error when there is none yet."""
    if session.artifact is None:
        raise UserError(NO_ARTIFACT)
    return session.artifact


def artifact_folder(session: Session, forget_text: bool = False) -> Path:
    """The session's artifact (adapter or ECO guard, its manifest, and the report) in a fresh
    folder; the report without forget-set text unless `forget_text`."""
    artifact = _artifact(session)
    folder = session.folder / "export" / "artifact"
    shutil.rmtree(folder, ignore_errors=True)
    artifact.save(folder)
    if session.report is not None:
        report = session.report if forget_text else without_forget_text(session.report, session.data.get("forget"))
        (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return folder


def artifact_zip(session: Session, into: str | Path | None = None, forget_text: bool = False) -> str:
    """The artifact folder as a zip file in `into` (the session's folder by default): its path."""
    method = _artifact(session).method
    folder = Path(into) if into is not None else session.folder
    return shutil.make_archive(str(folder / f"unlearned-{method}"), "zip", artifact_folder(session, forget_text))


def without_forget_text(report: dict, forget: Dataset | None) -> dict:
    """A copy of `report` in which every string that quotes the forget set (a question, an
    answer, a passage's opening or a subject's name) and every `example` field reads LEFT_OUT."""
    needles = _needles(forget)

    def clean(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: clean(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v, key) for v in value]
        if isinstance(value, str) and (key in TEXT_KEYS or any(n in value.casefold() for n in needles)):
            return LEFT_OUT
        return value

    return clean(report)


def _needles(forget: Dataset | None) -> set[str]:
    out: set[str] = set()
    for ex in forget.examples if forget is not None else ():
        if isinstance(ex, QA):
            out |= {ex.question, ex.answer, ex.subject or ""}
        else:
            out.add(ex.text[:80])
    return {n.strip().casefold() for n in out if len(n.strip()) >= 4}


def push_to_hub(session: Session, repo_id: str, token: str, public: bool = False, forget_text: bool = False) -> tuple[str, bool]:
    """Upload the artifact folder to a Hub model repo, private unless `public`: its URL, and
    whether the repo is private as the Hub says (an existing repo keeps its visibility, and a
    public one is not pushed to unless `public`). The token is used for this one call and is
    neither stored nor logged."""
    from huggingface_hub import HfApi

    from ..models import HUB_ID

    repo_id = (repo_id or "").strip()
    if not HUB_ID.match(repo_id) or "/" not in repo_id:
        raise UserError(f"'{repo_id}' is not a repository id like 'owner/name'.")
    if not (token or "").strip():
        raise UserError("Type a Hugging Face access token with write permission to push.")
    method, folder = _artifact(session).method, artifact_folder(session, forget_text)
    api, failure, private = HfApi(), None, False
    try:
        api.create_repo(repo_id, token=token.strip(), private=not public, exist_ok=True)  # an existing repo: unchanged
        private = bool(api.repo_info(repo_id, token=token.strip()).private)
        if private or public:
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token.strip(),
                              commit_message=f"Unlearning Studio: {method} artifact")
    except Exception as e:  # noqa: BLE001  network, auth, permissions: one sentence, never the token
        failure = type(e).__name__
    if failure:  # raised out here, so the error does not carry the original (which may quote the token) as its context
        raise UserError(f"The push to {repo_id} failed ({failure}); check the token's write access and the network.")
    if not (private or public):
        raise UserError(f"{repo_id} already exists and is public, so nothing was pushed; push to a new name, or tick "
                        "'Make the repository public'.")
    return f"https://huggingface.co/{repo_id}", private
