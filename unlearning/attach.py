"""Attach a saved artifact to a loaded base model with the method that made it.

    unlearned = load_unlearned(loaded, "out/")   # reads out/unlearning.json, then the method's files

Apart from artifacts.py because it reads the method registry, whose methods build artifacts.
"""

from __future__ import annotations

from pathlib import Path

from .artifacts import Unlearned, read_manifest
from .methods import get_method
from .models import Loaded


def load_unlearned(loaded: Loaded, folder: str | Path) -> Unlearned:
    """Attach the artifact in `folder` to the loaded base model."""
    manifest = read_manifest(folder)
    method = get_method(manifest["method"])
    return method.load(loaded, Path(folder), manifest.get("settings") or {})
