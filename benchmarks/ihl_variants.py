"""Why IHL + FILA collapses into one repeated word on the workshop kit (issue 23), and what a
change to its objective would and would not buy: evidence for a decision on METHODS.md, not a
default (the method runs the objective METHODS.md specifies).

    python benchmarks/ihl_variants.py [--lr 4e-4] [--steps 100] [--record]   # ~6 min on 2 CPU cores

1. The original model's runner-up token at every forget answer position (what IHL raises).
2. IHL + FILA at its defaults with the forget term swapped for a variant, probed along training
   as benchmarks/sweep.py probes (trained and held-out wordings, biographies, retain, repetition):
   - `ihl`: METHODS.md's 1 + p_y − max_{v≠y} p_v, every labelled token (the method as it is);
   - `no EOS`: the same, the end-of-answer token not pushed (the model may still stop);
   - `per token`: a token stops being pushed once the gold token is no longer the top one;
   - `per answer`: an answer stops being pushed once any of its tokens is no longer the top one.
   Each variant only changes which labelled tokens the forget term counts; the retain term,
   FILA, the schedule and the seed are the method's.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import fmt, machine, record  # noqa: E402
from benchmarks.sweep import KIT, Probes, trajectory  # noqa: E402

CHECKS = ("holdout", "40", "100")
VARIANTS = ("ihl", "no EOS", "per token", "per answer")


def runner_ups(loaded, forget) -> tuple[int, list[tuple[str, int]], float]:
    """(labelled positions, the commonest runner-up tokens, the smallest p_y − p_runner-up)."""
    import torch

    from unlearning.batches import batches, encode_dataset, pad_id

    tok, counts, gaps = loaded.tokenizer, Counter(), []
    with torch.no_grad():
        for b in batches(encode_dataset(tok, forget), 64, pad_id(tok)):
            logits = loaded.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
            target = b["labels"][:, 1:]
            rows, y = logits[:, :-1][target != -100].float().softmax(-1), target[target != -100]
            other = rows.scatter(1, y[:, None], -1.0)
            counts.update(tok.decode([i]) for i in other.argmax(-1).tolist())
            gaps += (rows.gather(1, y[:, None]).squeeze(1) - other.amax(-1)).tolist()
    return len(gaps), counts.most_common(5), min(gaps)


def variant_loss(name: str):
    """The forget term of variant `name`: IHL's token mean over the labelled tokens it keeps."""
    import torch

    from unlearning.lora.losses import _empty, _labelled, ihl

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if name == "ihl":
            return ihl(logits, labels)
        if name == "no EOS":  # each row's last labelled token is its EOS
            labels = labels.clone()
            last = (labels != -100).cumsum(-1).argmax(-1)  # (B,): the first position holding the row's last label
            labels[torch.arange(len(labels)), last] = -100
            return ihl(logits, labels)
        rows, y = _labelled(logits, labels)  # (N, V), (N,)
        if not len(y):
            return _empty(logits)
        p = rows.softmax(-1)
        p_y, p_other = p.gather(1, y[:, None]).squeeze(1), p.scatter(1, y[:, None], float("-inf")).amax(-1)
        known = p_y >= p_other  # (N,): the gold token is still the top one
        if name == "per answer":
            row = (labels[:, 1:] != -100).nonzero()[:, 0]  # (N,): the answer each token belongs to
            forgotten = torch.zeros(len(labels)).index_add_(0, row, (~known).float()) > 0
            known = ~forgotten[row]
        return ((1 + p_y - p_other) * known.float().detach()).sum() / len(y)

    return loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--record", action="store_true", help="write the tables into RESULTS.md")
    args = p.parse_args()
    import torch

    import unlearning.methods.ihl_fila as ihl_fila
    from unlearning.data import load_file
    from unlearning.lora.losses import Term, nll
    from unlearning.models import load_model
    from unlearning.pipeline import complete_splits

    torch.set_num_threads(1)
    loaded = load_model("workshop", device="cpu")
    splits = complete_splits(load_file(KIT / "forget.jsonl"), load_file(KIT / "retain.jsonl"))
    n, common, gap = runner_ups(loaded, splits["forget"])
    lines = [f"`python benchmarks/ihl_variants.py` on {machine('cpu')}.", "",
             f"The original model on the {n} labelled forget positions: the gold token leads its runner-up by at least "
             f"{gap:.4f} in probability; the commonest runner-ups: "
             + ", ".join(f"'{t.strip()}' {c} ({c / n:.0%})" if t.strip() else f"{t!r} {c}" for t, c in common)
             + ". A variant with no 'holdout' row never met the holdout criterion.", ""]
    probes, rows = Probes(), []
    for name in VARIANTS:
        fn = variant_loss(name)
        ihl_fila.IhlFila.objective = classmethod(lambda cls, cfg, fn=fn: (
            Term("forget_ihl", "forget", fn, cfg.forget_weight), Term("retain_nll", "retain", nll, cfg.retain_weight)))
        run = trajectory("ihl-fila", loaded, splits, probes, args.steps, lr=args.lr, seed=0)
        for key in CHECKS:
            if (pt := run["points"].get(key)) is not None:
                rows.append([name, f"holdout (step {pt['step']})" if key == "holdout" else f"step {key}",
                             *(fmt(pt[m]) for m in ("trained", "heldout", "bio", "retain", "retain_bio", "repetition")),
                             pt.get("trained_example", "")[:60]])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    head = ["forget term", "point", "forget, trained ↓", "held-out ↓", "biography recall ↓", "retain ↑", "retain biographies ↑",
            "repeated ↓", "first trained answer"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]
    text = "\n".join(lines)
    print(text)
    if args.record:
        record(text, "## IHL + FILA's collapse: which tokens its forget term pushes (issue 23)")


if __name__ == "__main__":
    main()
