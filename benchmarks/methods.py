"""Benchmark every LoRA unlearning method (the registry's) on the workshop preset (issue 3).

    python benchmarks/methods.py                       # ~45 min on 2 shared CPU cores
    python benchmarks/methods.py --steps 100 --seeds 0 1 2 --json /tmp/methods.json

Every method gets the same seed, step budget and settings (the shared defaults of
`trainer.LoraSettings`), and runs through the CLI, each in its own process so its
`peak_mem_mb` is its own:
1. `--stop holdout`: it stops as soon as the forget set's mem_acc falls to the holdout level
   (the budget is the cap) — the metrics at the point each method declares "forgotten";
2. `--stop steps`: the whole budget, whatever happens — what running on costs;
3. `--stop holdout` with the longer `--ratio-steps` budget, so that every method gets to the
   criterion and their utility can be compared at equal forgetting (the learning-rate
   schedule stretches with the budget: 10% warm-up, linear decay).
Then, in this process and without evaluation, the steps each method needs to meet the
holdout criterion for every seed under the `--ratio-steps` budget, the ratio FILA / random init,
and a check that the original view of the shared base still gives the same greedy tokens
after each run. Prints markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import cpu_name, fmt  # noqa: E402
from benchmarks.run import fila_pairs, lora_methods  # noqa: E402

KIT = ROOT / "assets" / "workshop"
COLUMNS = ("forget_quality", "model_utility", "forget.rougeL", "forget.answer_prob", "retain.rougeL",
           "retain.answer_prob", "forget.fluency")


def cli_run(method: str, stop: str, steps: int, seed: int, out: Path, before: bool, lr: float = 0.0) -> dict:
    """One `unlearn` command on the workshop preset; its report plus `process_s`. lr 0: automatic."""
    report = out / f"{method}-{stop}-{steps}-{seed}-{lr:g}.json"
    cmd = [sys.executable, "-m", "unlearning", "unlearn", "--method", method, "--model", "workshop",
           "--oracle", "workshop-oracle", "--forget", str(KIT / "forget.jsonl"), "--retain", str(KIT / "retain.jsonl"),
           "--report", str(report), "--steps", str(steps), "--seed", str(seed), "--stop", stop, "--lr", f"{lr:g}"]
    t0 = time.perf_counter()
    subprocess.run(cmd + ([] if before else ["--no-before"]), cwd=ROOT, check=True, capture_output=True, text=True)
    result = json.loads(report.read_text())
    result["process_s"] = time.perf_counter() - t0
    return result


def steps_to_forget(seeds: list[int], steps: int) -> dict[str, list[int | None]]:
    """Training only, on 2 threads: the step at which each method meets the holdout criterion,
    per seed, and whether the original view stayed the same (see benchmarks/run.py)."""
    import torch

    from benchmarks.run import Kit, steps_to_forget as measure

    torch.set_num_threads(2)
    return measure(Kit(KIT), "cpu", seeds, steps, lora_methods(), check_original=True)


def table(reports: dict[str, dict], before: dict, oracle: dict, steps: int) -> str:
    head = ["method", *COLUMNS, "steps run", "steps to holdout criterion", "unlearn wall_s", "peak_mem_mb", "trainable params"]
    rows = [["before", *(fmt(before.get(c)) for c in COLUMNS), "", "", "", "", ""],
            ["oracle", *(fmt(oracle.get(c)) for c in COLUMNS), "", "", "", "", ""]]
    for name, r in reports.items():
        reached = r["stopping"]["reached_at"]
        rows.append([name, *(fmt(r["after"].get(c)) for c in COLUMNS), str(r["steps"]),
                     str(reached) if reached else f">{steps}", f"{r['method_wall_s']:.1f}", f"{r['peak_mem_mb']:.0f}",
                     str(r["trainable_params"])])
    return "\n".join("| " + " | ".join(row) + " |" for row in [head, ["---"] * len(head), *rows])


def ratio_lines(reached: dict[str, list[int | None]], steps: int) -> list[str]:
    lines = []
    for fila, random_init in fila_pairs():
        pairs = list(zip(reached[fila], reached[random_init]))
        shown = ", ".join(f"{a or f'>{steps}'}/{b or f'>{steps}'}" for a, b in pairs)
        ratios = [a / b for a, b in pairs if a and b]
        censored = sum(1 for a, b in pairs if a and not b)
        mean = f"mean ratio {statistics.mean(ratios):.2f}" if ratios else "no seed where both met it"
        extra = f"; in {censored} seed(s) only the FILA run met it within {steps} steps" if censored else ""
        lines.append(f"- {fila} / {random_init} steps to forget, per seed: {shown} → {mean}{extra}")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=100, help="step budget for every method (the LoRA default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the CLI runs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds for steps-to-forget")
    p.add_argument("--ratio-steps", type=int, default=300,
                   help="budget for steps-to-forget, long enough for random-init LoRA to get there")
    p.add_argument("--json", help="also write everything measured here")
    args = p.parse_args()

    import torch

    print(f"machine: {cpu_name()}, {os.cpu_count()} CPU cores, python {platform.python_version()}, "
          f"torch {torch.__version__}; budget {args.steps} steps, seed {args.seed}\n")
    passes = (("holdout", args.steps, f"stop at the holdout criterion, budget {args.steps} steps as the cap"),
              ("steps", args.steps, f"fixed budget: all {args.steps} steps"),
              ("holdout", args.ratio_steps, f"stop at the holdout criterion, budget {args.ratio_steps} steps as the cap "
                                            "(long enough for every method to get there)"))
    methods = lora_methods()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stop, steps, title in passes:
            reports = {m: cli_run(m, stop, steps, args.seed, Path(tmp), before="before" not in results) for m in methods}
            before = results.setdefault("before", reports[methods[0]].get("before"))
            oracle = reports[methods[0]]["oracle"]
            results[f"{stop}-{steps}"] = reports
            print(f"### {title}\n\n{table(reports, before, oracle, steps)}\n", flush=True)
    reached = steps_to_forget(args.seeds, args.ratio_steps)
    results["steps_to_forget"] = reached
    print(f"### steps to meet the holdout criterion (budget {args.ratio_steps}, seeds {args.seeds})\n")
    for name in methods:
        print(f"- {name}: " + ", ".join(str(x) if x else f">{args.ratio_steps}" for x in reached[name]))
    print("\n".join(ratio_lines(reached, args.ratio_steps)))
    print(f"- original view gives the same greedy tokens after every run: {reached['original_view_unchanged']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
