"""The one download path for models and data sets from the Hub (huggingface_hub's snapshot
download): a hub id becomes a local folder in the Hub's layout, which the Studio's readers (and
`from_pretrained`, `datasets`) then read like any folder. Offline, the Hub cache answers; the
tests serve a stand-in hub on loopback through HF_ENDPOINT."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def snapshot(repo_id: str, repo_type: str = "model", patterns: Sequence[str] | None = None,
             revision: str | None = None) -> Path:
    """The local folder of `repo_id`'s files that match `patterns` (all of them when None)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id.strip(), repo_type=repo_type, revision=revision,
                                  allow_patterns=list(patterns) if patterns is not None else None))
