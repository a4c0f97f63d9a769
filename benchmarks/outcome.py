"""Every method at its defaults on the workshop preset, against issue 23's bar: one table.

    python benchmarks/outcome.py [--record]     # ~10 min on 2 shared CPU cores (the reference cached)
    python benchmarks/outcome.py --reports /tmp/outcome --reuse   # the table from reports already there

Each method runs through the CLI with no setting but the kit's files (`python -m unlearning
unlearn --method M --model workshop --oracle workshop-oracle --forget … --retain … --cache
DIR`), and the table reads the report's probes (docs/methods.md §Metrics, "Probes"): the
trained wording, the held-out wording, "Tell me about NAME." (biography recall against the
person's paragraph) and the prompt wrapper that brings back the most, each for the unlearned
model, the oracle and the original. The bar: forget ROUGE-L ≤ oracle + 0.1 on the trained and
held-out wordings, biography recall ≤ oracle + 0.15, repetition ≤ oracle + 0.1 (the most of
any forget probe), retain ROUGE-L ≥ 0.95 × before; GA need only forget (its collapse of what
it should keep is named in its report).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import fmt, machine, record
from benchmarks.run import methods

KIT = ROOT / "assets" / "workshop"
# (column, probe key prefix in the report's before/after/oracle dicts)
PROBES = (("trained wording", "probes.forget_trained"), ("held-out wording", "probes.forget_heldout"),
          ("Tell me about NAME", "probes.forget_bio"), ("worst wrapper", "probes.forget_wrapped"))
FORGET_ONLY = {"ga"}  # its bar is forgetting alone


def run(method: str, folder: Path, cache: Path, seed: int = 0) -> dict:
    path = folder / f"{method}-seed{seed}.json"
    cmd = [sys.executable, "-m", "unlearning", "unlearn", "--method", method, "--model", "workshop", "--oracle",
           "workshop-oracle", "--forget", str(KIT / "forget.jsonl"), "--retain", str(KIT / "retain.jsonl"),
           "--report", str(path), "--cache", str(cache)] + (["--seed", str(seed)] if seed else [])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed:\n{done.stderr[-2000:]}")
    report = json.loads(path.read_text())
    report["process_s"] = time.perf_counter() - t0
    path.write_text(json.dumps(report) + "\n")
    return report


def probe(metrics: dict, prefix: str, stat: str = "rougeL") -> float | None:
    """`prefix.stat`, or for a probe scored per variant (the wrappers) the most of any variant."""
    if f"{prefix}.{stat}" in metrics:
        return metrics[f"{prefix}.{stat}"]
    found = [v for k, v in metrics.items() if k.startswith(prefix + ".") and k.endswith("." + stat) and v is not None]
    return max(found) if found else None


def repetition(metrics: dict) -> float | None:
    found = [x for _, key in PROBES if (x := probe(metrics, key, "repetition")) is not None]
    return max(found) if found else None


def verdict(method: str, after: dict, oracle: dict, before: dict) -> list[str]:
    """What misses the bar (empty: it meets it)."""
    def over(key: str, margin: float) -> bool:
        a, o = probe(after, key), probe(oracle, key)
        return a is None or o is None or a > o + margin

    misses = [name for name, key in PROBES[:2] if over(key, 0.1)]
    if method in FORGET_ONLY:
        return misses
    if over(PROBES[2][1], 0.15):
        misses.append("biography")
    rep_a, rep_o = repetition(after), repetition(oracle)
    if rep_a is None or rep_o is None or rep_a > rep_o + 0.1:
        misses.append("repetition")
    if after.get("retain.rougeL", 0.0) < 0.95 * before.get("retain.rougeL", 1.0):
        misses.append("retain")
    return misses


def table(reports: dict[str, dict]) -> str:
    head = ["method", "steps", *(f"{name}: unlearned / oracle / original ↓" for name, _ in PROBES),
            "repetition: unlearned / oracle / original ↓", "retain rougeL: unlearned / original ↑",
            "model_utility: unlearned / original ↑", "oracle_distance ↓", "meets the bar"]
    rows = []
    for row, r in reports.items():
        name = row.split()[0]
        a, o, b = r["after"], r["oracle"], r.get("before") or {}
        misses = verdict(name, a, o, b)
        ok = "yes" if not misses else "no: " + ", ".join(misses)
        if name in FORGET_ONLY:
            ok += f" (forgetting only; retain {fmt(a.get('retain.rougeL'))}, utility {fmt(a.get('model_utility'))})"
        rows.append([row, str(r.get("steps", "")), *(" / ".join(fmt(probe(m, key)) for m in (a, o, b)) for _, key in PROBES),
                     " / ".join(fmt(repetition(m)) for m in (a, o, b)),
                     f"{fmt(a.get('retain.rougeL'))} / {fmt(b.get('retain.rougeL'))}",
                     f"{fmt(a.get('model_utility'))} / {fmt(b.get('model_utility'))}", fmt(a.get("oracle_distance", r.get("oracle_distance"))), ok])
    return "\n".join("| " + " | ".join(row) + " |" for row in [head, ["---"] * len(head), *rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="+", default=methods(), help="methods to run (default: every registered one)")
    p.add_argument("--reports", type=Path, default=Path("/tmp/outcome"), help="folder for the reports")
    p.add_argument("--cache", type=Path, default=Path("/tmp/evalcache"), help="the reference evaluations' cache")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (0 is the default; others get rows of their own)")
    p.add_argument("--reuse", action="store_true", help="read reports already in --reports instead of running")
    p.add_argument("--record", action="store_true", help="write the table into RESULTS.md")
    args = p.parse_args()
    args.reports.mkdir(parents=True, exist_ok=True)
    reports = {}
    for m in args.methods:
        for seed in args.seeds:
            row, path = m if seed == 0 else f"{m} (seed {seed})", args.reports / f"{m}-seed{seed}.json"
            reports[row] = json.loads(path.read_text()) if args.reuse and path.is_file() else run(m, args.reports, args.cache, seed)
            print(f"{row}: {reports[row].get('process_s', 0):.0f} s", file=sys.stderr, flush=True)
    head = (f"`python benchmarks/outcome.py` ({time.strftime('%Y-%m-%d')}) on {machine('cpu')}: every method at its "
            "defaults on the workshop preset (no flag but the kit's files), one CLI process each; ROUGE-L recall of "
            "greedy answers; \"worst wrapper\": the prompt wrapper with the highest forget ROUGE-L; repetition: the "
            "most of any forget probe. A row \"(seed s)\" is the same command with --seed s."
            + (" Table read back from the reports of that run (--reuse)." if args.reuse else ""))
    text = f"{head}\n\n{table(reports)}"
    print(text)
    if args.record:
        record(text, "## Defaults that end like the oracle (issue 23): every method at its defaults")


if __name__ == "__main__":
    main()
