"""The field's benchmark suites from the Hub, one name each: TOFU (`tofu:forget01|05|10`) and
MUSE-News (`muse:news`), each with its data set and the published target and retain models
(the retain model is the oracle). Everything comes through hub.snapshot, the one download
path, so a Hub cache or a stand-in hub on loopback (HF_ENDPOINT) answers as well.

    bench = load("tofu:forget10")      # downloads the splits' files, reads them
    bench.splits["forget"], bench.model, bench.oracle
    leaderboard(report)                 # the report's numbers under open-unlearning's column names

Where the names come from: locuslab/TOFU's dataset card (a config per split, one JSON-lines
file each: forget10.json, forget10_perturbed.json, retain90.json, retain_perturbed.json,
holdout10.json, real_authors_perturbed.json, world_facts_perturbed.json); open-unlearning's
TOFU experiments (configs/experiment/unlearn/tofu/*.yaml: forget10 / retain90 / holdout10,
open-unlearning/tofu_Llama-3.2-1B-Instruct_full as the model and ..._retain90 as the retain
model); muse-bench/MUSE-News's file tree (raw/, verbmem/, knowmem/ in JSON and Parquet) and the
MUSE paper's models muse-bench/MUSE-news_target and muse-bench/MUSE-news_retrain.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .data import RETAIN_EVAL, Dataset, from_records
from .errors import UserError
from .formats import read_records
from .hub import snapshot

TOFU_DATA = "locuslab/TOFU"
TOFU_MODEL = "open-unlearning/tofu_Llama-3.2-1B-Instruct_{split}"  # _full (target) and _retain90/95/99
TOFU_FORGET = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
MUSE_DATA = "muse-bench/MUSE-{Corpus}"
MUSE_MODEL = "muse-bench/MUSE-{corpus}_{which}"  # _target and _retrain

# Studio's QA fields from TOFU's: the perturbed sets spell their wrong answers "perturbed_answer".
_QA_FIELDS = {"question": "question", "answer": "answer", "paraphrased_answer": "paraphrased_answer",
              "perturbed_answer": "perturbed_answers", "perturbed_answers": "perturbed_answers"}


@dataclass
class Benchmark:
    """One suite, read: the Studio's splits, the extra evaluation splits, and the two models."""

    name: str
    splits: dict[str, Dataset]  # forget, retain, holdout, general (QA) — complete_splits' inputs
    model: str  # the published target model (trained on everything)
    oracle: str  # the published retain model (never saw the forget set)
    paraphrased: Dataset | None = None  # the forget questions in held-out wordings, for the probes
    # more evaluation splits: MUSE's QA and privleak sets; TOFU's retain_perturbed as RETAIN_EVAL,
    # the retain set the report scores (metrics.scored_splits) while the method trains on retainNN
    extra: dict[str, Dataset] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite(ABC):
    """A benchmark by name: which files to fetch and how to read them."""

    name: str
    label: str  # what the header's menu shows

    @abstractmethod
    def load(self) -> Benchmark:
        """Fetch the suite's files through hub.snapshot and read them."""

    @abstractmethod
    def scored_on(self, metrics: dict) -> dict[str, str]:
        """Which data set each of the leaderboard's columns was computed on, for the report
        (`metrics`: one model's, which says which optional sets were there)."""


@dataclass(frozen=True)
class Tofu(Suite):
    forget: str = "forget10"

    @property
    def retain(self) -> str:
        return TOFU_FORGET[self.forget]

    @property
    def holdout(self) -> str:
        return self.forget.replace("forget", "holdout")

    def files(self) -> list[str]:
        return [f"{n}.json" for n in (self.forget, f"{self.forget}_perturbed", self.retain, "retain_perturbed",
                                      self.holdout, "real_authors_perturbed", "world_facts_perturbed")]

    def load(self) -> Benchmark:
        folder = snapshot(TOFU_DATA, repo_type="dataset", patterns=self.files())
        missing = [Path(f).stem for f in self.files() if not (folder / f).is_file()]
        if missing:  # a revision with each config in Parquet (NAME/train-*.parquet) instead
            folder = snapshot(TOFU_DATA, repo_type="dataset", patterns=[f"{n}/*.parquet" for n in missing])
        rows = {Path(f).stem: _tofu_rows(folder, Path(f).stem) for f in self.files()}
        forget_extra = {_key(r): r for r in rows[f"{self.forget}_perturbed"]}
        retain_extra = {_key(r): r for r in rows["retain_perturbed"]}
        general = [{**r, "group": g} for g in ("real_authors", "world_facts") for r in rows[f"{g}_perturbed"]]
        paraphrased = [{"question": r["paraphrased_question"], "answer": r["answer"]}
                       for r in rows[f"{self.forget}_perturbed"] if r.get("paraphrased_question")]
        splits = {"forget": _qa(self.forget, [{**r, **forget_extra.get(_key(r), {})} for r in rows[self.forget]]),
                  "retain": _qa(self.retain, [{**r, **retain_extra.get(_key(r), {})} for r in rows[self.retain]]),
                  "holdout": _qa(self.holdout, rows[self.holdout]),
                  "general": _qa("real_authors + world_facts", general)}
        # open-unlearning scores retain (and so model utility) on retain_perturbed's questions,
        # not on the retainNN the method trains on: an evaluation-only split
        extra = {RETAIN_EVAL: _qa("retain_perturbed", rows["retain_perturbed"])}
        return Benchmark(self.name, splits, TOFU_MODEL.format(split="full"), TOFU_MODEL.format(split=self.retain),
                         _qa(f"{self.forget} paraphrased", paraphrased) if paraphrased else None, extra)

    def scored_on(self, metrics: dict) -> dict[str, str]:
        return {"forget_*, extraction_strength": self.forget, "retain_*": "retain_perturbed",
                "model_utility": "retain_perturbed, real_authors_perturbed, world_facts_perturbed",
                "ra_*": "real_authors_perturbed", "wf_*": "world_facts_perturbed"}


@dataclass(frozen=True)
class Muse(Suite):
    corpus: str = "news"

    # (folder, split names) of each file read, by the Studio's name for it: retain1 is
    # open-unlearning's MUSE retain set; knowmem's retain QA is retain_qa (retain2_qa before).
    TEXT: ClassVar[dict[str, tuple[str, ...]]] = {
        "forget": ("raw", "forget"), "retain": ("raw", "retain1"), "holdout": ("raw", "holdout")}
    QA: ClassVar[dict[str, tuple[str, ...]]] = {
        "verbmem_forget": ("verbmem", "forget"), "knowmem_forget": ("knowmem", "forget_qa"),
        "knowmem_retain": ("knowmem", "retain_qa", "retain2_qa")}
    # the texts of privleak's Min-K% MIA (metrics.MIA_PAIRS); a copy without them falls back to
    # the raw forget and holdout sets
    PRIVLEAK: ClassVar[dict[str, tuple[str, ...]]] = {
        "privleak_forget": ("privleak", "forget"), "privleak_holdout": ("privleak", "holdout")}

    def load(self) -> Benchmark:
        repo = MUSE_DATA.format(Corpus=self.corpus.capitalize())
        subs = sorted({f for f, *_ in (*self.TEXT.values(), *self.QA.values(), *self.PRIVLEAK.values())})
        folder = snapshot(repo, repo_type="dataset", patterns=[f"{f}/*.json" for f in subs])
        parquet = [f"{f}/*.parquet" for f in subs if not any((folder / f).glob("*.json"))]
        if parquet:  # a folder of a revision in Parquet only
            folder = snapshot(repo, repo_type="dataset", patterns=parquet)
        splits = {role: _passages("/".join(where[:2]), _muse_rows(folder, *where)) for role, where in self.TEXT.items()}
        extra = {name: _qa("/".join(where[:2]), [_muse_qa(r) for r in _muse_rows(folder, *where)])
                 for name, where in self.QA.items()}
        extra |= {name: _passages("/".join(where), rows) for name, where in self.PRIVLEAK.items()
                  if (rows := _muse_rows(folder, *where, required=False))}
        return Benchmark(self.name, splits, MUSE_MODEL.format(corpus=self.corpus, which="target"),
                         MUSE_MODEL.format(corpus=self.corpus, which="retrain"), None, extra)

    def scored_on(self, metrics: dict) -> dict[str, str]:
        mia = ("privleak/forget vs privleak/holdout" if any(k.startswith("privleak_forget.") for k in metrics)
               else "raw/forget vs raw/holdout (the copy has no privleak sets)")
        return {"forget_knowmem_ROUGE": "knowmem/forget_qa", "retain_knowmem_ROUGE": "knowmem/retain_qa",
                "forget_verbmem_ROUGE, extraction_strength": "verbmem/forget",
                "privleak": f"{mia}, Min-K% MIA AUC against the retain model's"}


SUITES: dict[str, Suite] = {s.name: s for s in (
    *(Tofu(f"tofu:{f}", f"TOFU {f} (Llama-3.2-1B-Instruct)", f) for f in TOFU_FORGET),
    Muse("muse:news", "MUSE-News (Llama-2-7B)", "news"),
)}


def get(name: str) -> Suite:
    """The suite called `name`; an unknown name is one sentence listing the known ones."""
    suite = SUITES.get(name.strip().lower())
    if suite is None:
        raise UserError(f"There is no benchmark '{name}'; the known ones are {', '.join(SUITES)}.")
    return suite


def load(name: str) -> Benchmark:
    return get(name).load()


# ------------------------------------------------------------------ the leaderboard's columns
# open-unlearning's TOFU evaluation (configs/eval/tofu.yaml and its metrics' keys) ← the
# Studio's metric keys. Where the Studio computes no counterpart (exact_memorization, the MIAs,
# the PARA/PERT probabilities), the column is absent rather than approximated; TOFU's privleak
# is commented out there, so it is absent here too.
TOFU_COLUMNS = {
    "forget_quality": "forget_quality", "model_utility": "model_utility",
    "forget_truth_ratio": "forget.truth_ratio", "forget_Q_A_Prob": "forget.answer_prob",
    "forget_Q_A_ROUGE": "forget.rougeL",
    "retain_Q_A_Prob": "retain.answer_prob", "retain_Q_A_ROUGE": "retain.rougeL", "retain_Truth_Ratio": "retain.truth_ratio",
    "ra_Q_A_Prob_normalised": "real_authors.answer_prob", "ra_Q_A_ROUGE": "real_authors.rougeL",
    "ra_Truth_Ratio": "real_authors.truth_ratio",
    "wf_Q_A_Prob_normalised": "world_facts.answer_prob", "wf_Q_A_ROUGE": "world_facts.rougeL",
    "wf_Truth_Ratio": "world_facts.truth_ratio",
    "extraction_strength": "forget.extraction_strength",  # open-unlearning's on forgetNN_perturbed: the same QA
}
# open-unlearning's MUSE evaluation (configs/eval/muse.yaml) ← the Studio's keys on the extra splits.
MUSE_COLUMNS = {"forget_knowmem_ROUGE": "knowmem_forget.rougeL", "retain_knowmem_ROUGE": "knowmem_retain.rougeL",
                "forget_verbmem_ROUGE": "verbmem_forget.rougeL", "privleak": "privleak",
                "extraction_strength": "verbmem_forget.extraction_strength"}


def leaderboard(report: dict, suite: str) -> dict:
    """{model: {column: value}} for before / after / oracle, under the leaderboard's names, and
    `scored_on`: which data set each column was computed on."""
    columns = MUSE_COLUMNS if suite.startswith("muse:") else TOFU_COLUMNS
    board = {which: {col: report[which][key] for col, key in columns.items() if key in report[which]}
             for which in ("before", "after", "oracle") if report.get(which)}
    known = SUITES.get(suite.strip().lower())
    scored = known.scored_on(report.get("after") or report.get("before") or {}) if known is not None else {}
    return {"scored_on": scored, **board} if scored else board


# ------------------------------------------------------------------ files → Datasets


def _key(rec: dict) -> str:
    return " ".join(str(rec.get("question", "")).casefold().split())


def _json_rows(folder: Path, name: str) -> list[dict]:
    """A file of the snapshot as records: JSON lines (TOFU's '.json' files) or a JSON list."""
    path = folder / name
    if not path.is_file():
        raise UserError(f"The benchmark's file {name} is not in its Hub repository (or the Hub cache).")
    text = path.read_text(encoding="utf-8").lstrip()
    if text.startswith("["):
        return list(json.loads(text))
    return [rec for _, rec in read_records(path, f"{path.stem}.jsonl")]


def _tofu_rows(folder: Path, name: str) -> list[dict]:
    """TOFU's config `name`: its JSON-lines file, or its Parquet shards."""
    shards = sorted((folder / name).glob("*.parquet"))
    return _parquet_rows(shards, name) if shards and not (folder / f"{name}.json").is_file() else _json_rows(folder, f"{name}.json")


def _muse_rows(folder: Path, sub: str, *splits: str, required: bool = True) -> list:
    """MUSE's rows of the first of `splits` in `sub`/ there is: its JSON file (either spelling)
    or its Parquet shards; [] for a missing one that is not `required`."""
    for split in splits:
        for name in (f"{split}.json", f"{split.replace('_', '-')}.json"):
            if (folder / sub / name).is_file():
                return _json_rows(folder / sub, name)
        shards = sorted((folder / sub).glob(f"{split}-*.parquet"))
        if shards:
            return _parquet_rows(shards, f"{sub}/{split}")
    if not required:
        return []
    raise UserError(f"The benchmark's split {sub}/{splits[0]} is not in its Hub repository (or the Hub cache).")


def _parquet_rows(shards: list[Path], what: str) -> list[dict]:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped, import-not-found]
    except ImportError:
        raise UserError(f"The benchmark's split {what} is stored as Parquet; install pyarrow to read it.") from None
    return [row for shard in shards for row in pq.read_table(shard).to_pylist()]


def _muse_qa(rec: dict) -> dict:
    """knowmem's question/answer, and verbmem's prompt/gt as a question the model continues."""
    return {"question": rec.get("question", rec.get("prompt")), "answer": rec.get("answer", rec.get("gt"))}


def _records(rows: list[dict], fields: dict[str, str]) -> Iterator[tuple[str, dict]]:
    for i, rec in enumerate(rows, 1):
        yield f"row {i}", {ours: rec[theirs] for theirs, ours in fields.items() if rec.get(theirs) is not None}


def _qa(name: str, rows: list[dict]) -> Dataset:
    """QA rows with TOFU's field names → a validated QA Dataset (the Studio's own checks)."""
    return from_records(name, _records(rows, {**_QA_FIELDS, "group": "group"}))


def _passages(name: str, rows: list) -> Dataset:
    """MUSE's raw text: a list of strings or of {"text": ...} records."""
    texts = [{"text": r} if isinstance(r, str) else r for r in rows]
    return from_records(name, _records(texts, {"text": "text"}))
