"""Teaching: plain fine-tuning so a model knows facts before it is asked to forget them.

Used to build the workshop models from scratch and by `python -m unlearning teach` on
uploaded data. Full-parameter AdamW with a linear warm-up and cosine decay, loss on labelled
tokens only (QA answers, whole passages), seeded batch order.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .batches import Encoded, collate


@dataclass
class TeachConfig:
    epochs: int = 20
    lr: float = 1e-3
    batch_size: int = 16
    warmup: float = 0.05  # share of steps spent warming up
    weight_decay: float = 0.0
    seed: int = 0


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
    cfg: TeachConfig,
    on_step: Callable[[int, int, dict[str, float]], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
    replay: list[Encoded] | None = None,
    replay_ratio: int = 3,
) -> list[dict[str, float]]:
    """Train `model` in place on `items`; returns one record per step (step, loss, lr, elapsed_s).

    `replay` holds what the model already knows: each epoch mixes in a fresh seeded sample of
    `replay_ratio` old examples per new one, so over the epochs the whole of it is rehearsed
    and the new facts do not overwrite the old ones."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    replay = replay or []
    n_replay = min(len(replay), replay_ratio * len(items))
    steps_per_epoch = math.ceil((len(items) + n_replay) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, total, max(1, int(cfg.warmup * total))))
    device = next(model.parameters()).device
    model.train()
    history, step, t0 = [], 0, time.perf_counter()
    for _ in range(cfg.epochs):
        epoch = items + rng.sample(replay, n_replay)
        rng.shuffle(epoch)
        for i in range(0, len(epoch), cfg.batch_size):
            if check_cancel:
                check_cancel()
            batch = {k: v.to(device) for k, v in collate(epoch[i : i + cfg.batch_size], pad_id).items()}
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
    model.eval()
    return history
