"""The offline workshop kit: preset data files and two small models built from scratch.

    python -m unlearning workshop            # describe the kit (build it if missing)
    python -m unlearning workshop --build    # rebuild everything deterministically (~11 min on 2 cores)

`workshop` learns every taught person (forget + retain) in every trained wording of each
fact, "Tell me about NAME." with their biographies, the biographies as passages, the general
facts and some small talk; `workshop-oracle` follows the same recipe without the forget
people, so it is the model an unlearning method should end up resembling. Holdout people
are never taught, and neither are the held-out wordings of <split>_paraphrased.jsonl.

The model stays 2.2 M parameters (4 layers, 192 wide, 2,048 tokens): that size answered the
held-out wordings with ROUGE-L recall 1.000 (forget) and 0.988 (retain) after the build, so
more width or depth would only cost build and test time. What it needs to generalise across
wordings is in the data: frames shared between facts (corpus.py).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..batches import encode_dataset, pad_id
from ..data import QA, Dataset, Passage, load_file
from ..evaluation.metrics import rouge_l_recall
from ..generate import generate_answers
from ..limits import CHAT_NEW_TOKENS
from ..models import ALIASES, WORKSHOP_DIR
from .corpus import BIO_HELD_OUT, BIO_PROMPTS, SMALL_TALK, build_corpus
from .teach import TeachSettings, fine_tune
from .tinylm import new_model, train_tokenizer

QA_SPLITS = ("forget", "retain", "holdout", "general")
PARAPHRASED = ("forget_paraphrased", "retain_paraphrased")  # held-out wordings, never trained
UTILITY = ("tofu_general",)  # the general facts as TOFU's real-author and world-fact sets (model utility)
VOCAB = 2048
MODEL_SHAPE = {"hidden": 192, "layers": 4, "heads": 4, "mlp": 512}
RECIPE = TeachSettings(epochs=30, lr=3e-3, batch_size=16, seed=0)  # the kit's models were built with exactly this
BUILD_THREADS = 2  # fixed so the float reductions, and so the weights, repeat exactly


def kit_file(name: str) -> Path:
    return WORKSHOP_DIR / name


def write_corpus(out: Path = WORKSHOP_DIR) -> dict[str, list]:
    """The preset files: <split>.jsonl for each QA split (one wording per fact),
    <split>_paraphrased.jsonl (held-out wordings), <split>.txt biographies (passages)."""
    corpus = build_corpus()
    out.mkdir(parents=True, exist_ok=True)
    for name in [*QA_SPLITS, *PARAPHRASED, *UTILITY]:
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in corpus[name])
    for split in ("forget", "retain", "holdout"):
        (out / f"{split}.txt").write_text("\n\n".join(corpus[f"{split}_bios"]) + "\n", encoding="utf-8")
    return corpus


def _tokenizer_texts(corpus: dict[str, list]) -> list[str]:
    """Every string of the corpus, holdout included: the tokenizer must spell every name."""
    texts = [b for k in ("forget_bios", "retain_bios", "holdout_bios") for b in corpus[k]]
    for split in ("forget", "retain", "holdout", "general"):
        for r in corpus[f"{split}_trained"] + corpus.get(f"{split}_paraphrased", []):
            texts += [r["question"], r["answer"], r["paraphrased_answer"], *r["perturbed_answers"]]
    texts += [q for prompts, _ in SMALL_TALK for q in prompts] + [a for _, a in SMALL_TALK]
    texts += [r["question"] for r in corpus["retain_bio_qa"]]
    return texts


def training_data(corpus: dict[str, list], with_forget: bool) -> list[Dataset]:
    """What a model of the kit is taught: its people's facts in every trained wording, "Tell me
    about NAME." with their biographies, the biographies as passages, general knowledge in
    every trained wording, and small talk. The oracle: the same without the forget people."""
    people = ["retain"] + (["forget"] if with_forget else [])
    keys = [f"{g}_trained" for g in people] + [f"{g}_bio_qa" for g in people] + ["general_trained", "small_talk"]
    qa = [QA(r["question"], r["answer"]) for k in keys for r in corpus[k]]
    bios = [b for g in people for b in corpus[f"{g}_bios"]]
    return [Dataset("workshop-qa", "qa", qa), Dataset("workshop-bios", "passage", [Passage(b) for b in bios])]


def replay_data(model: str) -> list[Dataset]:
    """What a kit model was taught, replayed while it learns more (nothing for other models)."""
    if model not in ALIASES:
        return []
    return training_data(build_corpus(), with_forget=model == "workshop")


def suggested_prompts(role: str, out: Path = WORKSHOP_DIR) -> list[str]:
    """What to ask first in a workshop: for "forget", a forget question in its trained wording,
    the same fact in a held-out wording, and a biography; for "retain", the same for a retain
    person, then a general question and a greeting."""
    main, held_out = load_file(out / f"{role}.jsonl").examples, load_file(out / f"{role}_paraphrased.jsonl").examples
    prompts = [main[0].question, held_out[0].question, f"Tell me about {main[0].subject}."]
    if role == "retain":
        prompts += [load_file(out / "general.jsonl").examples[0].question, "Hello!"]
    return prompts


def build(out: Path = WORKSHOP_DIR, recipe: TeachSettings = RECIPE, log: Callable[[str], None] = print,
          make_model: Callable | None = None, device: str = "cpu") -> None:
    """Write the corpus, train the tokenizer, then `workshop` and `workshop-oracle`.

    `make_model(tokenizer, seed)` gives another architecture the same recipe (the GPU
    benchmark builds a hub-size kit this way); by default the kit's small Llama."""
    if device == "cpu":
        torch.set_num_threads(BUILD_THREADS)
    start = time.perf_counter()
    corpus = write_corpus(out)
    tokenizer = train_tokenizer(_tokenizer_texts(corpus), VOCAB)
    for folder, with_forget in (("model", True), ("oracle", False)):
        t0 = time.perf_counter()
        model = make_model(tokenizer, recipe.seed) if make_model else new_model(tokenizer, seed=recipe.seed, **MODEL_SHAPE)
        model.to(device)  # type: ignore[arg-type]  # transformers' @wraps(Module.to) hides the bound self from mypy
        items = [e for ds in training_data(corpus, with_forget) for e in encode_dataset(tokenizer, ds)]
        fine_tune(model, items, pad_id(tokenizer), recipe, on_step=_loss_logger(log, folder))
        model.save_pretrained(out / folder)
        tokenizer.save_pretrained(out / folder)
        log(f"built {folder} in {time.perf_counter() - t0:.0f}s")
    log(f"built the workshop kit in {time.perf_counter() - start:.0f}s ({torch.get_num_threads()} threads, {device})")


def _loss_logger(log: Callable[[str], None], folder: str) -> Callable[[int, int, dict[str, float]], None]:
    """fine_tune's on_step: log the loss every 200 steps and at the last."""
    def report(step: int, total: int, record: dict[str, float]) -> None:
        if step % 200 == 0 or step == total:
            log(f"  {folder}: step {step}/{total} loss {record['loss']:.3f}")
    return report


def is_built(out: Path = WORKSHOP_DIR) -> bool:
    names = [f"{s}.jsonl" for s in (*QA_SPLITS, *PARAPHRASED, *UTILITY)] + ["forget.txt", "model/model.safetensors",
                                                                           "oracle/model.safetensors"]
    return all((out / n).is_file() for n in names)


def answer_recall(model, tokenizer, ds: Dataset, max_new_tokens: int = 32) -> float:
    """Mean ROUGE-L recall of greedy answers against the gold answers."""
    answers = generate_answers(model, tokenizer, [ex.question for ex in ds.examples], max_new_tokens)
    return statistics.mean(rouge_l_recall(a, ex.answer) for a, ex in zip(answers, ds.examples))


def bio_prompts(out: Path = WORKSHOP_DIR, template: str = BIO_PROMPTS[0]) -> Dataset:
    """"Tell me about NAME." (or `template`) for each forget person, answered by the paragraph
    of forget.txt."""
    forget = load_file(out / "forget.jsonl")
    bios = load_file(out / "forget.txt").examples
    names = list(dict.fromkeys(ex.subject for ex in forget.examples))
    return Dataset("forget biographies", "qa", [QA(template.format(n=n), next(b.text for b in bios if b.text.startswith(n)))
                                                for n in names])


def describe(out: Path = WORKSHOP_DIR, device: str = "cpu") -> dict:
    """Counts, file sizes, and how well each model answers each split: in the trained
    wording, in held-out wordings, and "Tell me about NAME." for the forget people."""
    from ..models import load_model

    splits = {s: load_file(out / f"{s}.jsonl") for s in (*QA_SPLITS, *PARAPHRASED)}
    info: dict[str, dict[str, Any]] = {"files": {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()},
            "counts": {s: len(d) for s, d in splits.items()},
            "people": {s: len({ex.subject for ex in d.examples}) for s, d in splits.items() if s in ("forget", "retain", "holdout")},
            "recall": {}}
    for name, folder in zip(ALIASES, ("model", "oracle")):
        loaded = load_model(name if out == WORKSHOP_DIR else str(out / folder), device=device)
        recall = {s: answer_recall(loaded.model, loaded.tokenizer, splits[s]) for s in ("forget", "retain", "general", *PARAPHRASED)}
        recall["forget_bios"] = answer_recall(loaded.model, loaded.tokenizer, bio_prompts(out), CHAT_NEW_TOKENS)
        recall["forget_bios_held_out"] = answer_recall(loaded.model, loaded.tokenizer, bio_prompts(out, BIO_HELD_OUT[0]), CHAT_NEW_TOKENS)
        info["recall"][name] = recall
    return info


def checks(info: dict) -> list[tuple[str, bool]]:
    """The kit's promises: the taught model knows every split in every wording, the oracle
    does not know the forget people in any wording, and every file fits a Space."""
    m, o = info["recall"]["workshop"], info["recall"]["workshop-oracle"]
    return [
        ("workshop forget, retain, general rougeL >= 0.95", min(m["forget"], m["retain"], m["general"]) >= 0.95),
        ("workshop held-out wordings (forget, retain) rougeL >= 0.85", min(m["forget_paraphrased"], m["retain_paraphrased"]) >= 0.85),
        ("workshop 'Tell me about NAME.' rougeL >= 0.6 against forget.txt", m["forget_bios"] >= 0.6),
        ("workshop-oracle retain and general rougeL >= 0.95", min(o["retain"], o["general"]) >= 0.95),
        ("workshop-oracle forget rougeL <= 0.35 in every wording",
         max(v for k, v in o.items() if k.startswith("forget")) <= 0.35),
        ("every file < 10 MB", all(size < 10_000_000 for size in info["files"].values())),
        ("the whole kit < 100 MB", sum(info["files"].values()) < 100_000_000),
    ]
