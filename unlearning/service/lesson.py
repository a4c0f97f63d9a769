"""The guided lesson: six steps that carry the field's main findings on the workshop kit. Each
step has one experiment (a run, a stress test or a few chat prompts), a question to the room,
and a reading computed from that experiment's own numbers. Torch-free.

    STEPS                                   # the steps, in order
    read_meet(answers)                      # step 1, from the original's replies to the probes
    read_run("ga", report)                  # steps 2–4 and 6, from a run's report dict
    read_fila(fila_report, random_report)   # step 3's second half: FILA's start against a random one
    read_stress(robustness)                 # step 5, from a stress test's relearning block
    plan("fila", quick=True)                # what a step's button runs: Tasks (a run, a stress test, the chat)
    LessonLog()                             # one page's lesson as it goes: readings, runs, the step running

A reading never pretends: where a run does not show what its step expects (a method that did
not unlearn, a run with no steps), it says so, and `Reading.ok` is False.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation import outcome
from ..report import Metrics, Report

FORGET, RETAIN, UTILITY, REPEAT = "forget.rougeL", "retain.rougeL", "model_utility", "forget.repetition"
HELDOUT, BIO = "probes.forget_heldout.rougeL", "probes.forget_bio.rougeL"
MOVED = 0.1  # forget ROUGE-L must fall this much for a step to count as "it forgot"
KNOWS = 0.7  # a reply with this ROUGE-L recall of the answer "knows" it


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    does: str  # what the step's button does, in one line
    question: str  # to the room, before they look
    figure: str  # where the reading's numbers are drawn
    method: str | None = None  # the run the button starts (None: no run)
    settings: dict[str, Any] = field(default_factory=dict)
    quick: int | None = 60  # a quick lesson's steps a run, the fewest at which the run still shows the step (None: its own)


STEPS = (
    Step("meet", "1 · Meet the model", "asks the original model about a forget person in three wordings and "
         "about a retain person", "Does the model know the forget people, or only the exact questions it was taught?",
         "the chat, both panes"),
    Step("ga", "2 · Gradient ascent", "runs gradient ascent on the forget set at its defaults",
         "If we push the forget answers' likelihood down, what else goes with them?",
         "Compare's picture and the report chart", method="ga", quick=None),  # GA's rate forgets only near its 100 steps
    Step("fila", "3 · IHL + FILA", "runs IHL + FILA, then IHL from a random start with the same settings",
         "Does a Fisher-informed start forget faster than a random one — and is the model still fluent?",
         "Compare's picture and table", method="ihl-fila"),
    Step("eco", "4 · ECO prompts", "runs ECO: a prompt classifier and corrupted embeddings, no weight changes",
         "If no weight changes, where did the knowledge go?", "the report chart and the chat's flag badge",
         method="eco"),
    Step("stress", "5 · Stress test", "relearns half of the forget people on the IHL + FILA run, the original "
         "and the oracle, and scores the other half", "Was the knowledge removed, or only hidden?",
         "the Stress test's relearning plot"),
    Step("own", "6 · Your own data", "runs IHL + FILA on the forget and retain files you upload in Data",
         "Does what you saw on the kit hold on your data?", "the report of your run", method="ihl-fila"),
)
BY_KEY = {s.key: s for s in STEPS}


@dataclass(frozen=True)
class Reading:
    text: str
    ok: bool  # the experiment showed what its step is about
    numbers: dict[str, float] = field(default_factory=dict)  # every figure the text quotes, by name


def _f(x: float) -> str:
    return f"{x:.2f}"


# ------------------------------------------------------------------ step 1: the original, probed in the chat


@dataclass(frozen=True)
class Probe:
    kind: str  # "taught", "held out", "Tell me about", "retain"
    prompt: str
    expected: str
    reply: str


def read_meet(probes: list[Probe]) -> Reading:
    from ..evaluation.scores import rouge_l_recall  # scipy: loaded when a step is read, not with the page

    scores = {p.kind: rouge_l_recall(p.reply, p.expected) for p in probes}
    forget = [k for k in scores if k != "retain"]
    knows = [k for k in forget if scores[k] >= KNOWS]
    parts = ", ".join(f"{k} {_f(scores[k])}" for k in forget)
    if not forget:
        return Reading("No forget prompt was asked, so there is nothing to read.", False)
    if len(knows) == len(forget):
        text = (f"The original answers the forget person in every wording (ROUGE-L recall: {parts}), not only the "
                "questions it was taught: unlearning has to remove that in every wording, and keep the rest.")
    else:
        text = (f"The original knows the forget person in {len(knows)} of {len(forget)} wordings (ROUGE-L recall: "
                f"{parts}): a wording it already misses is no test of forgetting.")
    if "retain" in scores:
        text += f" Its answer about a retain person scores {_f(scores['retain'])}."
    return Reading(text, len(knows) == len(forget), scores)


# ------------------------------------------------------------------ steps 2, 3, 4 and 6: a run's report


def _m(metrics: Metrics | None, key: str) -> float | None:
    return metrics.get(key) if metrics else None


def read_run(key: str, report: dict | None) -> Reading:
    """What one run did, in the words of step `key`, from its report."""
    r = Report.from_dict(report or {})
    name = BY_KEY[key].title.split("· ")[-1]
    b, a, o = _m(r.before, FORGET), _m(r.after, FORGET), _m(r.oracle, FORGET)
    if not r.steps and r.method != "eco":
        return Reading(f"{name} ran no steps, so nothing was unlearned: this run cannot show the step. "
                       "Run it again with its default settings.", False)
    if b is None or a is None:
        return Reading(f"{name}'s report has no forget ROUGE-L before and after, so there is nothing to read.", False)
    numbers = {"forget_before": b, "forget_after": a}
    text = f"{name} took forget ROUGE-L from {_f(b)} to {_f(a)}"
    if o is not None:
        numbers["forget_oracle"] = o
        text += f" (the oracle, which never saw the forget set: {_f(o)})"
    moved = b - a >= MOVED
    if not moved:
        return Reading(text + f": it did not unlearn (the step needs a drop of at least {MOVED:.1f}).", False, numbers)
    ub, ua = _m(r.before, UTILITY), _m(r.after, UTILITY)
    if ub is not None and ua is not None:
        numbers |= {"utility_before": ub, "utility_after": ua}
        text += f"; model utility went from {_f(ub)} to {_f(ua)}"
    rep = _m(r.after, REPEAT)
    if rep is not None:
        numbers["repetition"] = rep
        text += f", and {rep:.0%} of the forget answers repeat one word"
    found = outcome.tags(r.before, r.after, r.oracle)
    text += "." + (f" The probes say: {', '.join(found)}." if found else " The probes find it answers like the oracle.")
    if key == "eco":
        text += (f" It changed none of the model's weights (it trained a prompt classifier of {r.trainable_params or 0} "
                 "weights): the prompts it flags are corrupted on the way in, so the knowledge is still in the model.")
    return Reading(text, True, numbers)


def read_fila(fila: dict | None, random_init: dict | None) -> Reading:
    """FILA's start against a random one, at the same settings (step 3's second run)."""
    f, r = Report.from_dict(fila or {}), Report.from_dict(random_init or {})
    fa, ra, fb = _m(f.after, FORGET), _m(r.after, FORGET), _m(f.before, FORGET)
    if fa is None or ra is None or fb is None:
        return Reading("Both runs are needed (IHL + FILA and IHL from a random start) to compare their starts.", False)
    numbers = {"forget_before": fb, "fila_after": fa, "random_after": ra}
    text = (f"In {f.steps} steps at the same learning rate, FILA's start took forget ROUGE-L from {_f(fb)} to {_f(fa)}; "
            f"a random start reached {_f(ra)}.")
    ok = fb - fa >= MOVED and fa < ra - MOVED / 2
    if not ok:
        text += " Here FILA's start did not help: the two ended alike."
    return Reading(text, ok, numbers)


# ------------------------------------------------------------------ step 5: relearning


def read_stress(robustness: dict | None) -> Reading:
    """From a stress test's report (its "robustness" blocks, or those blocks alone)."""
    blocks = (robustness or {}).get("robustness", robustness) or {}
    block = blocks.get("relearn") or {}
    steps = block.get("steps") or []
    series: dict[str, list] = {k: v for k in ("original", "unlearned", "oracle") if isinstance(v := block.get(k), list) and v}
    if not steps or len(series) < 3:
        return Reading("The stress test has no relearning curves for the original, the unlearned model and the "
                       "oracle, so there is nothing to read.", False)
    start, end = series["unlearned"][0], series["unlearned"][-1]
    oracle_end, original_end = series["oracle"][-1], series["original"][-1]
    numbers = {"unlearned_start": start, "unlearned_end": end, "oracle_end": oracle_end, "original_end": original_end}
    text = (f"After {steps[-1]} relearning steps on half of the forget people, the other half came back to ROUGE-L "
            f"{_f(end)} on the unlearned model (from {_f(start)}); the oracle, which never knew them, reached "
            f"{_f(oracle_end)}, the original {_f(original_end)}.")
    hidden = end > oracle_end + MOVED
    text += (" Far above the oracle: the knowledge was hidden, not removed." if hidden
             else " About the oracle's: what came back was learned again, not uncovered.")
    return Reading(text, True, numbers)


# ------------------------------------------------------------------ what each step's button does

KIT = Path(__file__).resolve().parents[2] / "assets" / "workshop"  # the kit's files (models.WORKSHOP_DIR, without torch)
QUICK_STRESS = {"relearn_steps": 6, "sample": 12}
STRESS = {"relearn_steps": 20, "sample": 40}
BIO_WORDS = 40  # "Tell me about NAME." is scored against the opening of the person's biography (a reply is short)


@dataclass(frozen=True)
class Task:
    """One experiment of a step: a run of `method`, a stress test, or the probes asked in the chat."""

    kind: str  # "run", "stress", "chat"
    method: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def plan(key: str, quick: bool = False, steps: int | None = None) -> tuple[Task, ...]:
    """The experiments step `key` runs, in order: its method at its defaults (`quick`: the step's
    quick steps; `steps`: exactly that many), step 3's random start with the FILA run's settings."""
    step = BY_KEY[key]
    if key == "meet":
        return (Task("chat"),)
    if key == "stress":
        return (Task("stress", settings=dict(QUICK_STRESS if quick else STRESS)),)
    assert step.method is not None, key
    settings = dict(step.settings)
    if step.method != "eco" and steps is not None:
        settings["steps"] = steps
    elif step.method != "eco" and quick and step.quick is not None:
        settings["steps"] = step.quick
    if step.method in ("ihl-fila", "ihl"):
        settings.setdefault("stop", "steps")  # IHL's own default stops at the holdout criterion: the same budget for both
    first = Task("run", step.method, settings)
    return (first, Task("run", "ihl", settings)) if key == "fila" else (first,)


def meet_questions(kit: Path = KIT) -> list[tuple[str, str, str]]:
    """(kind, prompt, expected answer) of step 1: a forget person's fact as taught and in a wording
    never trained, "Tell me about NAME." against their biography's opening, and a retain person's."""
    from ..data import load_file

    forget, held = load_file(kit / "forget.jsonl").examples, load_file(kit / "forget_paraphrased.jsonl").examples
    retain = load_file(kit / "retain.jsonl").examples
    first = forget[0]
    other = next((q for q in held if q.subject == first.subject and q.answer == first.answer), held[0])
    bios = [p.text for p in load_file(kit / "forget.txt").examples if p.text.startswith(first.subject or "\0")]
    bio = " ".join(bios[0].split()[:BIO_WORDS]) if bios else " ".join(q.answer for q in forget if q.subject == first.subject)
    return [("taught", first.question, first.answer), ("held out", other.question, other.answer),
            ("Tell me about", f"Tell me about {first.subject}.", bio), ("retain", retain[0].question, retain[0].answer)]


# ------------------------------------------------------------------ a page's lesson, as it goes


@dataclass
class LessonLog:
    """What one page's lesson did: each step's reading, the kept runs it made, step 1's replies,
    and the step running now with the experiments it has left (a gr.State holds it)."""

    readings: dict[str, Reading] = field(default_factory=dict)
    runs: dict[str, list[int]] = field(default_factory=dict)  # step → the kept run numbers it made, in order
    probes: list[Probe] = field(default_factory=list)
    active: str | None = None
    todo: list[Task] = field(default_factory=list)
    seen: Any = None  # the last finished run this log took in (a timer may show one run's end twice); held, so
    # `is` never takes a new run for it
    ends: int = 0  # experiments ended: each end is a new value for the page to react to

    def begin(self, key: str, tasks: tuple[Task, ...]) -> Task:
        self.active, self.todo = key, list(tasks[1:])
        self.readings.pop(key, None)
        self.runs[key] = []
        return tasks[0]

    def end(self, reading: Reading) -> Reading:
        assert self.active is not None, "a step ends only while it runs"
        self.readings[self.active] = reading
        self.active, self.todo = None, []
        return reading

    def ordered(self) -> list[tuple[str, Reading]]:
        """(title, reading) of each step read so far, in the lesson's order: the printable summary's."""
        return [(s.title, self.readings[s.key]) for s in STEPS if s.key in self.readings]


def read_step(key: str, reports: list[dict | None]) -> Reading:
    """Step `key`'s reading from the reports of its runs (step 3: FILA's, then the random start's)."""
    if key == "fila":
        first = read_run("fila", reports[0] if reports else None)
        if not first.ok or len(reports) < 2:
            return first
        second = read_fila(reports[0], reports[1])
        return Reading(f"{first.text} {second.text}", second.ok, first.numbers | second.numbers)
    return read_run(key, reports[-1] if reports else None)


def failed(what: str, state: str, error: str | None) -> Reading:
    """A step whose run did not finish: what happened, as its reading."""
    why = f": {error}" if error else "."
    return Reading(f"The {what} {state} before it could show the step{why}", False)
