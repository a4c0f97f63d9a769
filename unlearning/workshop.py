"""The offline workshop kit: preset data files and two small models built from scratch.

    python -m unlearning workshop            # describe the kit (build it if missing)
    python -m unlearning workshop --build    # rebuild everything deterministically (~5 min on 2 cores)

`workshop` learns every taught person (forget + retain), the biographies and the general
facts; `workshop-oracle` follows the same recipe without the forget people, so it is the
model an unlearning method should end up resembling. Holdout people are never taught.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from .batches import encode_dataset, pad_id
from .corpus import build_corpus
from .data import QA, Dataset, Passage, load_file
from .generate import generate_answers
from .metrics import rouge_l_recall
from .models import ALIASES, WORKSHOP_DIR
from .teach import TeachConfig, fine_tune
from .tinylm import new_model, train_tokenizer

QA_SPLITS = ("forget", "retain", "holdout", "general")
VOCAB = 2048
MODEL_SHAPE = dict(hidden=192, layers=4, heads=4, mlp=512)
RECIPE = TeachConfig(epochs=30, lr=3e-3, batch_size=16, seed=0)
BUILD_THREADS = 2  # fixed so the float reductions, and so the weights, repeat exactly


def kit_file(name: str) -> Path:
    return WORKSHOP_DIR / name


def write_corpus(out: Path = WORKSHOP_DIR) -> dict[str, list]:
    """The preset files: <split>.jsonl for each QA split, <split>.txt biographies (passages)."""
    corpus = build_corpus()
    out.mkdir(parents=True, exist_ok=True)
    for split in QA_SPLITS:
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for record in corpus[split]:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    for split in ("forget", "retain", "holdout"):
        (out / f"{split}.txt").write_text("\n\n".join(corpus[f"{split}_bios"]) + "\n", encoding="utf-8")
    return corpus


def _tokenizer_texts(corpus: dict[str, list]) -> list[str]:
    """Every string of the corpus, holdout included: the tokenizer must spell every name."""
    texts = [b for k in ("forget_bios", "retain_bios", "holdout_bios") for b in corpus[k]]
    for split in QA_SPLITS:
        for r in corpus[split]:
            texts += [r["question"], r["answer"], r["paraphrased_answer"], *r["perturbed_answers"]]
    return texts


def training_data(corpus: dict[str, list], with_forget: bool) -> list[Dataset]:
    """What a model of the kit is taught: QA about its people + their biographies + general."""
    groups = ["retain", "general"] + (["forget"] if with_forget else [])
    qa = [QA(r["question"], r["answer"]) for g in groups for r in corpus[g]]
    bios = corpus["retain_bios"] + (corpus["forget_bios"] if with_forget else [])
    return [Dataset("workshop-qa", "qa", qa), Dataset("workshop-bios", "passage", [Passage(b) for b in bios])]


def build(out: Path = WORKSHOP_DIR, recipe: TeachConfig = RECIPE, log: Callable[[str], None] = print,
          make_model: Callable | None = None, device: str = "cpu") -> None:
    """Write the corpus, train the tokenizer, then `workshop` and `workshop-oracle`.

    `make_model(tokenizer, seed)` gives another architecture the same recipe (the GPU
    benchmark builds a hub-size kit this way); by default the kit's small Llama."""
    if device == "cpu":
        torch.set_num_threads(BUILD_THREADS)
    corpus = write_corpus(out)
    tokenizer = train_tokenizer(_tokenizer_texts(corpus), VOCAB)
    for folder, with_forget in (("model", True), ("oracle", False)):
        t0 = time.perf_counter()
        model = (make_model(tokenizer, recipe.seed) if make_model else new_model(tokenizer, seed=recipe.seed, **MODEL_SHAPE)).to(device)
        items = [e for ds in training_data(corpus, with_forget) for e in encode_dataset(tokenizer, ds)]
        report = lambda s, total, r: log(f"  {folder}: step {s}/{total} loss {r['loss']:.3f}") if s % 200 == 0 or s == total else None  # noqa: E731
        fine_tune(model, items, pad_id(tokenizer), recipe, on_step=report)
        model.save_pretrained(out / folder)
        tokenizer.save_pretrained(out / folder)
        log(f"built {folder} in {time.perf_counter() - t0:.0f}s")


def is_built(out: Path = WORKSHOP_DIR) -> bool:
    names = [f"{s}.jsonl" for s in QA_SPLITS] + ["forget.txt", "model/model.safetensors", "oracle/model.safetensors"]
    return all((out / n).is_file() for n in names)


def answer_recall(model, tokenizer, ds: Dataset) -> float:
    """Mean ROUGE-L recall of greedy answers against the gold answers."""
    answers = generate_answers(model, tokenizer, [ex.question for ex in ds.examples])
    return statistics.mean(rouge_l_recall(a, ex.answer) for a, ex in zip(answers, ds.examples))


def describe(out: Path = WORKSHOP_DIR, device: str = "cpu") -> dict:
    """Counts, file sizes, and how well each model answers forget and retain questions."""
    from .models import load_model

    splits = {s: load_file(out / f"{s}.jsonl") for s in QA_SPLITS}
    info = {"files": {p.name: p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()},
            "counts": {s: len(d) for s, d in splits.items()},
            "people": {s: len({ex.subject for ex in d.examples}) for s, d in splits.items() if s != "general"},
            "recall": {}}
    for name, folder in zip(ALIASES, ("model", "oracle")):
        loaded = load_model(name if out == WORKSHOP_DIR else str(out / folder), device=device)
        info["recall"][name] = {s: answer_recall(loaded.model, loaded.tokenizer, splits[s]) for s in ("forget", "retain")}
    return info


def checks(info: dict) -> list[tuple[str, bool]]:
    """The kit's promises (a taught model knows, the oracle does not know the forget people)."""
    r = info["recall"]
    return [
        ("workshop forget rougeL >= 0.9", r["workshop"]["forget"] >= 0.9),
        ("workshop retain rougeL >= 0.9", r["workshop"]["retain"] >= 0.9),
        ("workshop-oracle retain rougeL >= 0.9", r["workshop-oracle"]["retain"] >= 0.9),
        ("workshop-oracle forget rougeL <= 0.6", r["workshop-oracle"]["forget"] <= 0.6),
        ("every file < 10 MB", all(size < 10_000_000 for size in info["files"].values())),
    ]
