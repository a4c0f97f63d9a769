"""Why the LoRA methods' defaults are what they are: IHL + FILA on the workshop preset over
learning rates, stopping rules and seeds, against the acceptance bar of the README's command
(forget rougeL within 0.1 of the oracle's, retain rougeL ≥ 0.9 × before).

    python benchmarks/defaults.py [--record]      # ~8 min on 2 CPU cores

Each row is one `python -m unlearning unlearn --method ihl-fila …` with the settings shown.
`holdout` stops at METHODS.md's criterion (forget mem_acc down to the holdout level) with the
budget as a cap; `steps` runs the whole budget. The chosen defaults (trainer.LoraSettings)
are the rows marked "default".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.methods import cli_run  # noqa: E402
from benchmarks.results import fmt, machine, record  # noqa: E402

# (lr, stop, budget, seeds)
GRID = [(1e-3, "holdout", 60, [0]), (5e-4, "holdout", 120, [0]), (2e-4, "holdout", 120, [0]), (1e-4, "holdout", 120, [0]),
        (1e-3, "steps", 15, [0]), (1e-3, "steps", 30, [0]), (2e-4, "steps", 60, [0]), (2e-4, "steps", 80, [0, 1, 2]),
        (2e-4, "steps", 100, [0, 1, 2]), (1e-4, "steps", 160, [0, 1])]
DEFAULT = (2e-4, "steps", 100)
OLD_DEFAULT = (1e-3, "holdout", 60)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--record", action="store_true", help="write the table into RESULTS.md")
    args = p.parse_args()
    rows, before = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for lr, stop, steps, seeds in GRID:
            for seed in seeds:
                r = cli_run("ihl-fila", stop, steps, seed, Path(tmp), before=before is None, lr=lr)
                before = before or r["before"]  # measured by the first run only
                a, oracle = r["after"], r["oracle"]
                ok = abs(a["forget.rougeL"] - oracle["forget.rougeL"]) <= 0.1 and a["retain.rougeL"] >= 0.9 * before["retain.rougeL"]
                mark = " (default)" if (lr, stop, steps) == DEFAULT else " (kit 1's default)" if (lr, stop, steps) == OLD_DEFAULT else ""
                rows.append([f"{lr:g}", stop + mark, str(steps), str(seed), str(r["steps"]), fmt(a["forget.rougeL"]),
                             fmt(a["retain.rougeL"]), fmt(a["general.rougeL"]), fmt(a["forget_quality"]),
                             fmt(a["model_utility"]), fmt(a["forget.fluency"]), "yes" if ok else "no"])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    head = ["lr", "stop", "budget", "seed", "steps run", "forget rougeL ↓", "retain rougeL ↑", "general rougeL ↑",
            "forget_quality ↑", "model_utility ↑", "forget fluency (≈ before)", "meets the bar"]
    text = "\n".join([
        f"`python benchmarks/defaults.py` on {machine('cpu')}. Before: forget rougeL {fmt(before['forget.rougeL'])}, "
        f"retain {fmt(before['retain.rougeL'])}, model_utility {fmt(before['model_utility'])}, forget fluency "
        f"{fmt(before['forget.fluency'])}; oracle: forget rougeL {fmt(oracle['forget.rougeL'])}, forget fluency "
        f"{fmt(oracle['forget.fluency'])}. The bar: |forget − oracle| ≤ 0.1 and retain ≥ 0.9 × before.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)])
    print(text)
    if args.record:
        record(text, "## LoRA defaults on the workshop kit: learning rate and stopping rule")


if __name__ == "__main__":
    main()
