"""The workshop preset's oracle and `before` evaluations, shipped with the app.

    python -m unlearning.service.preset_evals           # (re)write assets/workshop/evaluations.json
    python -m unlearning.service.preset_evals --check   # exit 1, naming what misses, when it is stale

Every run on the preset needs both, and they are the same for every start of the app, so they
are computed once here rather than by each fresh app's warm-up (Studio.warm_preset; ~35 s on a
2-core CPU, which a room clicking Start at once waited for). The app's cache reads the file
(evalcache.shared). Each entry is keyed by content (evalcache.split_key: the model's files, the
data, the metric code, the generation settings, device, dtype, torch and transformers): after a
change to any of them it no longer answers, the warm-up computes it again, and
tests/test_preset_evals.py fails until this is run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..evaluation.cache import FORMAT, SHIPPED, EvalCache, lookup
from .models import ModelCache
from .session import Session
from .studio import Studio

if TYPE_CHECKING:
    from ..data import Dataset
    from ..models import Loaded


def reference(studio: Studio) -> dict[str, tuple[Loaded, dict[str, Dataset]]]:
    """The preset's two models, each with the splits a run evaluates it on (as the app has them)."""
    session = Session()
    session.use_preset()
    oracle = studio.oracle(session, "workshop")
    assert oracle is not None, "the workshop preset has an oracle"
    return {"workshop-oracle": (oracle, session.splits()), "workshop": (studio.base(session, "workshop"), session.splits())}


def regenerate(path: Path = SHIPPED, models: ModelCache | None = None) -> int:
    """Evaluate the preset's oracle and `before` as the app does (on the CPU) and write them to
    `path`, one entry a line; the number of entries."""
    with tempfile.TemporaryDirectory() as folder:
        Studio(models or ModelCache(device="cpu"), evals=EvalCache(folder)).warm_preset()
        entries = [json.loads(p.read_text(encoding="utf-8")) for p in Path(folder).glob("*.json")]
    entries.sort(key=lambda e: (e["key"]["model"], e["key"]["split"]))
    lines = [json.dumps({k: e[k] for k in ("key", "metrics", "raw")}, sort_keys=True, ensure_ascii=False) for e in entries]
    path.write_text(f'{{"format": "{FORMAT}", "entries": [\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    return len(entries)


def stale(path: Path = SHIPPED, models: ModelCache | None = None) -> list[str]:
    """The preset's models whose evaluations `path` does not hold under the key this kit and
    this code give them now (empty: the file is current)."""
    cache = EvalCache(shipped=path)
    studio = Studio(models or ModelCache(device="cpu"), evals=cache)
    return [name for name, (loaded, splits) in reference(studio).items() if lookup(cache, loaded, splits) is None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether the shipped file is current")
    args = parser.parse_args()
    if args.check:
        missing = stale()
        print(f"{SHIPPED}: " + (f"stale for {', '.join(missing)}" if missing else "current"))
        raise SystemExit(1 if missing else 0)
    print(f"{SHIPPED}: {regenerate()} evaluations written")


if __name__ == "__main__":
    main()
