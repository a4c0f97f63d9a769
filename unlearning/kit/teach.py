"""Teaching: plain fine-tuning so a model knows facts before it is asked to forget them.

`fine_tune` builds the workshop models from scratch; `teach` is what `python -m unlearning
teach` and the app's "Teach first" run on uploaded data: the same fine-tuning with what the
model already knows replayed beside the new data, the new data's recall measured after each
epoch, and an early stop once it is known. Full-parameter AdamW with a linear warm-up and
cosine decay, loss on labelled tokens only (QA answers, whole passages), seeded batch order.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..batches import Encoded, answer_ids, collate, encode_dataset, pad_id
from ..data import QA, Dataset
from ..evaluation.metrics import rouge_l_recall
from ..generate import generate_answers
from ..settings import setting


@dataclass
class TeachSettings:
    """How to teach; the CLI's `teach` flags and the app's "Teach first" are built from it."""

    epochs: int = setting(30, "passes over the new data, at most", lo=1, hi=1000)
    lr: float = setting(2e-3, "learning rate (AdamW, warm-up then cosine decay)", lo=1e-7, hi=1.0)
    batch_size: int = setting(16, "examples per step", lo=1, hi=256, ui=False)
    stop_at: float = setting(0.97, "stop once a sample of the new QA is answered with this ROUGE-L recall (0: run every epoch)",
                             lo=0.0, hi=1.0)
    replay_ratio: int = setting(1, "examples the model knew, replayed per new one each epoch (so it keeps them)", lo=0, hi=10)
    probe_size: int = setting(48, "new QA examples measured after each epoch", lo=1, hi=1000, ui=False)
    warmup: float = setting(0.05, "share of the steps spent warming up", lo=0.0, hi=0.5, ui=False)
    weight_decay: float = setting(0.0, "AdamW weight decay", lo=0.0, hi=1.0, ui=False)
    seed: int = setting(0, "seed of the batch order and the measured sample")


def lr_at(step: int, total: int, warmup_steps: int) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine decay to 10%."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def fine_tune(
    model,
    items: list[Encoded],
    pad_id: int,
    cfg: TeachSettings,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
    replay: list[Encoded] | None = None,
    after_epoch: Callable[[int, int], bool | None] | None = None,
) -> list[dict[str, float]]:
    """Train `model` in place on `items`; returns one record per step (step, loss, lr, elapsed_s).

    `replay` holds what the model already knows: each epoch mixes in a fresh seeded sample of
    `cfg.replay_ratio` old examples per new one, so over the epochs the whole of it is
    rehearsed and the new facts do not overwrite the old ones. `after_epoch(epoch, epochs)` is
    called after each epoch with the model in eval mode (to measure it); True stops early.

    The batch order comes from a local `random.Random(cfg.seed)`; torch's global generator is
    neither seeded nor drawn from here (a server's sessions share it). A model with dropout
    draws its masks from it, so such a model's teaching does not repeat bit for bit."""
    rng = random.Random(cfg.seed)
    replay = replay or []
    n_replay = min(len(replay), cfg.replay_ratio * len(items))
    steps_per_epoch = math.ceil((len(items) + n_replay) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total, max(1, int(cfg.warmup * total))))
    device = next(model.parameters()).device
    model.train()
    history, step, t0 = [], 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        for chunk in bucketed(items + rng.sample(replay, n_replay), cfg.batch_size, rng):
            if check_cancel:
                check_cancel()
            batch = {k: v.to(device) for k, v in collate(chunk, pad_id).items()}
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            record = {"step": step, "loss": loss.item(), "lr": sched.get_last_lr()[0], "elapsed_s": time.perf_counter() - t0}
            history.append(record)
            if on_step:
                on_step(step, total, record)
        if after_epoch:
            model.eval()
            if after_epoch(epoch + 1, cfg.epochs):
                break
            model.train()
    model.eval()
    return history


def teach(
    model,
    tokenizer,
    new: list[Dataset],
    replay: list[Dataset],
    cfg: TeachSettings,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> list[dict[str, float]]:
    """Teach `new` to `model` in place, replaying `replay`; after each epoch the ROUGE-L recall
    of a seeded sample of the new QA is measured and passed to `on_epoch({"epoch", "epochs",
    "recall", "elapsed_s"})`, and teaching stops once it reaches `cfg.stop_at`."""
    items = [e for ds in new for e in encode_dataset(tokenizer, ds)]
    old = [e for ds in replay for e in encode_dataset(tokenizer, ds)]
    qa = [ex for ds in new for ex in ds.examples if isinstance(ex, QA)]
    probe = random.Random(cfg.seed).sample(qa, min(cfg.probe_size, len(qa)))
    longest = max((len(answer_ids(tokenizer, ex.answer)) for ex in probe), default=0)
    t0 = time.perf_counter()

    def measure(epoch: int, epochs: int) -> bool:
        if not probe:
            return False
        answers = generate_answers(model, tokenizer, [ex.question for ex in probe], longest + 8)
        recall = statistics.mean(rouge_l_recall(a, ex.answer) for a, ex in zip(answers, probe))
        if on_epoch:
            on_epoch({"epoch": epoch, "epochs": epochs, "recall": recall, "elapsed_s": time.perf_counter() - t0})
        return cfg.stop_at > 0 and recall >= cfg.stop_at

    return fine_tune(model, items, pad_id(tokenizer), cfg, on_step, check_cancel, old, measure)


def bucketed(items: list[Encoded], batch_size: int, rng: random.Random, pool: int = 8) -> list[list[Encoded]]:
    """Shuffled batches of similar length: sort each run of `pool` batches' worth of items by
    length, cut it into batches, shuffle the batches. Short QA and long passages then rarely
    share a batch, so little of it is padding (the same examples, seen once each)."""
    items = items[:]
    rng.shuffle(items)
    out = []
    for i in range(0, len(items), batch_size * pool):
        run = sorted(items[i : i + batch_size * pool], key=lambda e: len(e.input_ids))
        out += [run[j : j + batch_size] for j in range(0, len(run), batch_size)]
    rng.shuffle(out)
    return out
