"""Teach first on a realistic upload: can the workshop model learn 240 biography QA whose
answers run 20–60 words (benchmarks/data/authors.jsonl, the shape of TOFU's) and keep what
it knew?

    python benchmarks/teach.py [--record]

Runs the acceptance command, `python -m unlearning teach --model workshop --data
benchmarks/data/authors.jsonl --out DIR`, as a user would (its per-epoch lines: time and
recall of a sample of the new data), then measures the taught model: ROUGE-L recall of its
greedy answers on the whole new set, and on the kit's retain, general and held-out wordings.
Target (issue 10): ≥ 0.9 on the new set, retain and general, in ≤ 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import machine, record  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "authors.jsonl"
KIT = ROOT / "assets" / "workshop"
SPLITS = ("retain.jsonl", "general.jsonl", "retain_paraphrased.jsonl", "forget.jsonl")


def recall(loaded, path: Path) -> float:
    from unlearning.batches import answer_ids
    from unlearning.data import load_file
    from unlearning.kit.workshop import answer_recall

    ds = load_file(path)
    longest = max(len(answer_ids(loaded.tokenizer, ex.answer)) for ex in ds.examples)
    return answer_recall(loaded.model, loaded.tokenizer, ds, longest + 8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--record", action="store_true", help="write the table into RESULTS.md")
    args = p.parse_args()
    from unlearning.data import load_file
    from unlearning.models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "unlearning", "teach", "--model", "workshop", "--data", str(DATA), "--out", tmp]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        epochs = [line for line in done.stderr.splitlines() if line.startswith("epoch ")]
        print("\n".join(epochs + [done.stdout.strip()]))
        taught, before = load_model(tmp, "cpu"), load_model("workshop", "cpu")
        rows = [("authors.jsonl (the new data, all 240)", recall(before, DATA), recall(taught, DATA))]
        rows += [(f"{name} (kit)", recall(before, KIT / name), recall(taught, KIT / name)) for name in SPLITS]
    words = [len(ex.answer.split()) for ex in load_file(DATA).examples]
    lines = ["`python -m unlearning teach --model workshop --data benchmarks/data/authors.jsonl --out DIR`: "
             f"**{wall:.0f} s** end to end ({len(epochs)} epochs; target ≤ 600 s) on {machine('cpu')}. "
             f"The set: {len(words)} QA, answers {min(words)}–{max(words)} words (median {statistics.median(words):.0f}).",
             "", "| ROUGE-L recall of greedy answers ↑ | workshop | taught |", "|---|---|---|"]
    lines += [f"| {name} | {b:.3f} | {a:.3f} |" for name, b, a in rows]
    lines += ["", "Per epoch (time since teaching began; recall of a fixed sample of the new QA):", "",
              *(f"- {e}" for e in epochs)]
    text = "\n".join(lines)
    print(text)
    if args.record:
        record(text, "## Teach first: 240 biography QA with 20–60-word answers")


if __name__ == "__main__":
    main()
