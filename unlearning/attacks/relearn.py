"""Relearning: fine-tune on half of the forget set and watch the other half come back
(Hu et al. 2406.13356; Łucki et al. 2409.18025; Deeb & Roger 2410.08827).

The forget set is split in two by subject (seeded). Each model gets a fresh LoRA adapter on
a standalone copy of its weights (the unlearned model's own adapter merged in first; an ECO
guard stays on around the copy) and K steps of AdamW on the first half; the second half,
never trained, is scored (`forget_heldout.rougeL`) after steps 0, K/4, K/2 and K. Knowledge
that returns on the held-out half faster than it does for the oracle was hidden, not
removed. The shared base is never trained: only copies are.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import torch

from ..batches import collate, encode_qa, pad_id
from ..kit.teach import bucketed
from ..lora.adapters import Adapters
from ..runs import RunContext
from .harness import Bench, Contender, sentence, split_by_subject

METRIC = "forget_heldout.rougeL"


def checkpoints(steps: int) -> list[int]:
    """0, K/4, K/2, K (rounded down, without repeats)."""
    return sorted({0, steps // 4, steps // 2, steps})


def _batches(items: list, batch_size: int, pad: int, seed: int) -> Iterator[dict[str, torch.Tensor]]:
    """Seeded, length-bucketed batches over and over (a new order each pass)."""
    rng = random.Random(seed)
    while True:
        for chunk in bucketed(items, batch_size, rng):
            yield collate(chunk, pad)


class Relearn:
    name = "relearn"

    def run(self, ctx: RunContext, bench: Bench) -> dict[str, Any]:
        cfg = bench.cfg
        taught, heldout = split_by_subject(bench.forget_all, cfg.seed)
        heldout_q = bench.questions(heldout)
        points = checkpoints(cfg.relearn_steps)
        block: dict[str, Any] = {"steps": points, "metric": METRIC, "relearned": len(taught), "held_out": len(heldout)}
        n = len(bench.models)
        for k, (name, contender) in enumerate(bench.models.items()):
            series, after = self._one(ctx, bench, contender, taught, heldout_q, points, k, n)
            block[name] = series
            block.setdefault("after", {})[name] = after
        return block

    def _one(self, ctx: RunContext, bench: Bench, contender: Contender, taught: list, heldout_q, points: list[int],
             k: int, n: int) -> tuple[list[float], dict[str, float]]:
        """One model's relearning: its held-out series, then its forget and retain scores at step K."""
        cfg, tok = bench.cfg, bench.tokenizer
        copy = contender.detach()
        model = copy.model
        with torch.random.fork_rng(devices=[]):  # a seeded adapter init that leaves torch's global generator alone
            torch.manual_seed(cfg.seed)
            adapters = Adapters.create(copy.weights, "relearn", cfg.relearn_rank, 2 * cfg.relearn_rank, with_offset=False)
        opt = torch.optim.AdamW(adapters.parameters(), lr=cfg.relearn_lr)
        batches = _batches([encode_qa(tok, qa) for qa in taught], cfg.relearn_batch, pad_id(tok), cfg.seed)
        device = next(model.parameters()).device
        series: list[float] = []
        K = cfg.relearn_steps
        with adapters.use(train=True):
            for step in range(K + 1):
                if step in points:
                    model.eval()
                    series.append(bench.score(model, *heldout_q))
                if step == K:
                    break
                ctx.check_cancel()
                model.train()
                loss = model(**{key: v.to(device) for key, v in next(batches).items()}).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(adapters.parameters(), 1.0)
                opt.step()
                ctx.step(self.name, step + 1, K, {f"{contender.name} loss": loss.item()})
                ctx.progress((k + (step + 1) / (K + 1)) / n, f"relearn: {contender.name}, step {step + 1}/{K}")
            model.eval()
            guarded = contender.name == "unlearned" and bench.guard is not None
            after = bench.measure(model, bench.questions(bench.forget), bench.questions(bench.retain), guarded)
        return series, {METRIC: series[-1], **after}

    def summary(self, block: dict[str, Any]) -> str:
        K, base = block["steps"][-1], block.get("original", [0.0])[0]
        if base <= 0:
            return sentence(f"The original does not answer the held-out half of the forget set (rougeL {base:.2f}), "
                            "so there is no knowledge to come back")
        share = {w: (block[w][0] / base, block[w][-1] / base) for w in ("unlearned", "oracle") if w in block}
        start, end = share["unlearned"]
        text = (f"After {K} steps of relearning on half of the forget set, the unlearned model answers the other half "
                f"at {end:.0%} of the original's level (from {start:.0%} at step 0)")
        if "oracle" in share:
            text += f"; the oracle, which never learned it, at {share['oracle'][1]:.0%} (from {share['oracle'][0]:.0%})"
        return sentence(text)
