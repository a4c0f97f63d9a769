"""A session's artifact leaving the app: as a zip to download, or pushed to the Hub.

Both start from a fresh folder holding exactly the last run's artifact (and its report), so
nothing of an earlier run travels with it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import UserError
from .jobs import Artifact
from .session import Session

NO_ARTIFACT = "There is no unlearned model yet: run a method first."


def _artifact(session: Session) -> Artifact:
    """The session's last artifact; a user error when there is none yet."""
    if session.artifact is None:
        raise UserError(NO_ARTIFACT)
    return session.artifact


def artifact_folder(session: Session, with_report: bool = True) -> Path:
    """The session's artifact (adapter or ECO guard, its manifest, and the report) in a fresh folder."""
    artifact = _artifact(session)
    folder = session.folder / "export" / "artifact"
    shutil.rmtree(folder, ignore_errors=True)
    artifact.save(folder)
    if with_report and session.report is not None:
        (folder / "report.json").write_text(json.dumps(session.report, indent=2), encoding="utf-8")
    return folder


def artifact_zip(session: Session) -> str:
    """The artifact folder as a zip file: the path of the file to download."""
    method = _artifact(session).method
    return shutil.make_archive(str(session.folder / f"unlearned-{method}"), "zip", artifact_folder(session))


def push_to_hub(session: Session, repo_id: str, token: str) -> str:
    """Upload the artifact folder to a Hub model repo. The token is used for this one call
    and is neither stored nor logged."""
    from huggingface_hub import HfApi

    from ..models import HUB_ID

    repo_id = (repo_id or "").strip()
    if not HUB_ID.match(repo_id) or "/" not in repo_id:
        raise UserError(f"'{repo_id}' is not a repository id like 'owner/name'.")
    if not (token or "").strip():
        raise UserError("Type a Hugging Face access token with write permission to push.")
    method, folder = _artifact(session).method, artifact_folder(session)
    api, failure = HfApi(), None
    try:
        api.create_repo(repo_id, token=token.strip(), exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token.strip(),
                          commit_message=f"Unlearning Studio: {method} artifact")
    except Exception as e:  # noqa: BLE001  network, auth, permissions: one sentence, never the token
        failure = type(e).__name__
    if failure:  # raised out here, so the error does not carry the original (which may quote the token) as its context
        raise UserError(f"The push to {repo_id} failed ({failure}); check the token's write access and the network.")
    return f"https://huggingface.co/{repo_id}"
