"""What the app shows of a stress test (attacks/): one picture per attack, ready to draw.

    for view in stress_view(session.robustness):
        view.title, view.kind ("line" | "bars"), view.categories, view.series, view.summary

Every attack ran on three models; the views keep one series per model in the same order
and words everywhere — the original, the unlearned model, and the oracle as the reference
a model that never learned the forget set gives. Missing or partial blocks give what they
can (never an error): the report may come from an older version or a cancelled run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODELS = ("original", "unlearned", "oracle")
ATTACKS = {  # name → (title, what to look for)
    "relearn": ("Relearning: does it come back?",
                ("Each model is fine-tuned on half of the forget people; the line is how much it then knows about "
                "the other half. A model that really forgot stays near the oracle; one that hid the knowledge "
                "climbs back towards the original.")),
    "quantize": ("Quantization: does rounding the weights undo it?",
                 ("Every weight rounded to 8 and to 4 bits. A small unlearning update can vanish under rounding, "
                 "bringing back what the original knew.")),
    "paraphrase": ("Paraphrases: does it hold for other wordings?",
                   ("The same questions in wordings never trained. Forgetting that holds for one wording only "
                   "shows here.")),
    "prompts": ("Prompt attacks: do wrappers extract it?",
                ("The forget questions inside few-shot examples, role-play, typing noise and completion stems. "
                "Bars near the original mean the wrapper gets the knowledge out.")),
}
METRIC = "forget.rougeL"


@dataclass(frozen=True)
class Series:
    model: str  # "original", "unlearned" or "oracle"
    xs: tuple[Any, ...]
    ys: tuple[float | None, ...]


@dataclass(frozen=True)
class AttackView:
    name: str
    title: str
    reading: str  # what to look for (shown under the picture)
    kind: str  # "line" (relearn: the metric per step) or "bars" (the metric per condition)
    x_title: str
    y_title: str
    series: tuple[Series, ...]
    summary: str  # the attack's own one-sentence result
    wall_s: float | None = None


def stress_view(report: dict | None) -> list[AttackView]:
    """One view per attack block in `report["robustness"]`, in the attacks' order."""
    blocks = (report or {}).get("robustness") or {}
    views = []
    for name, (title, reading) in ATTACKS.items():
        block = blocks.get(name)
        if not isinstance(block, dict):
            continue
        series = _relearn(block) if name == "relearn" else _bars(block)
        kind, x_title = ("line", "relearning steps") if name == "relearn" else ("bars", _x_title(name))
        y_title = str(block.get("metric", METRIC)) if name == "relearn" else METRIC
        views.append(AttackView(name, title, reading, kind, x_title, f"{y_title} (↓ is forgotten)", series,
                                str(block.get("summary") or ""), _number(block.get("wall_s"))))
    return views


def note(report: dict | None) -> str:
    """The stress test's general note (ECO: the weights are unchanged), or ''."""
    return str(((report or {}).get("robustness") or {}).get("note") or "")


def _relearn(block: dict) -> tuple[Series, ...]:
    steps = tuple(block.get("steps") or ())
    return tuple(Series(m, steps, tuple(_number(v) for v in block[m]))
                 for m in MODELS if isinstance(block.get(m), list))


def _bars(block: dict) -> tuple[Series, ...]:
    """Conditions are the entries that hold per-model cells (bits, wrappers); a block that
    is one cell itself (paraphrase) has the forget and retain metrics as its conditions."""
    conditions = [k for k, v in block.items() if isinstance(v, dict) and any(m in v for m in MODELS)]
    if conditions:
        return tuple(Series(m, tuple(_label(c) for c in conditions),
                            tuple(_number((block[c].get(m) or {}).get(METRIC)) for c in conditions))
                     for m in MODELS if any(isinstance(block[c].get(m), dict) for c in conditions))
    keys = (METRIC, "retain.rougeL")
    return tuple(Series(m, keys, tuple(_number(block[m].get(k)) for k in keys))
                 for m in MODELS if isinstance(block.get(m), dict))


def _x_title(name: str) -> str:
    return {"quantize": "bits per weight", "paraphrase": "held-out wordings", "prompts": "wrapper"}.get(name, "")


def _label(condition: str) -> str:
    return f"{condition}-bit" if condition.isdigit() else condition.replace("_", "-")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
