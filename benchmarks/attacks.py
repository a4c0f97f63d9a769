"""Benchmark the stress tests (issue 14): every attack on the workshop preset, per method.

    python benchmarks/attacks.py                              # every method: unlearn, then attack (~25 min)
    python benchmarks/attacks.py --methods ihl-fila eco       # just these
    python benchmarks/attacks.py --artifact /tmp/run/ /tmp/eco/   # attack artifacts already made

Each method is unlearned through the CLI in its own process (`--no-before`, default
settings), then attacked in this process exactly as `python -m unlearning attack` does
(the same job, the defaults: relearn K = 20, every split scored on a seeded sample of at
most 40 questions, so all four attacks stay under a minute per method on 2 CPU cores).
Printed, not timed by a test: wall seconds per attack, the figures behind each summary,
and whether the original view still gives the same greedy tokens on every forget question
after the attacks. Prints markdown for RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import cpu_name

KIT = ROOT / "assets" / "workshop"
ATTACK_ORDER = ("relearn", "quantize", "paraphrase", "prompts")


def unlearn(method: str, out: Path) -> float:
    """`python -m unlearning unlearn` on the workshop preset; the artifact goes to `out`."""
    cmd = [sys.executable, "-m", "unlearning", "unlearn", "--method", method, "--model", "workshop",
           "--oracle", "workshop-oracle", "--forget", str(KIT / "forget.jsonl"), "--retain", str(KIT / "retain.jsonl"),
           "--out", str(out), "--no-before"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def attack(folder: Path) -> dict:
    """The attack job on one artifact, with the original view's greedy tokens on every forget
    question compared before and after (`original_unchanged`)."""
    from unlearning.attach import load_unlearned
    from unlearning.attacks import attack_job, paraphrase_sets
    from unlearning.data import load_file
    from unlearning.generate import generate_ids, prompt_ids
    from unlearning.models import load_model
    from unlearning.runs import Run

    loaded, oracle = load_model("workshop", "cpu"), load_model("workshop-oracle", "cpu")
    unlearned = load_unlearned(loaded, folder)
    forget, retain = KIT / "forget.jsonl", KIT / "retain.jsonl"
    splits = {"forget": load_file(forget), "retain": load_file(retain)}
    ids = [prompt_ids(loaded.tokenizer, qa.question) for qa in splits["forget"].examples]

    def greedy() -> list[list[int]]:
        with unlearned.view("original") as model:
            return generate_ids(model, loaded.tokenizer, ids, 24)

    before = greedy()
    run = Run(attack_job(loaded, unlearned, splits, oracle, paraphrased=paraphrase_sets(forget, retain))).start()
    run.wait()
    if run.state != "done":
        raise SystemExit(f"attack on {folder} ended {run.state}: {run.error or run.traceback}")
    report = run.result
    report["original_unchanged"] = greedy() == before
    unlearned.release()
    return report


def _trio(cell: dict, key: str = "forget.rougeL") -> str:
    """unlearned / oracle / original."""
    return " / ".join(f"{cell[w][key]:.2f}" for w in ("unlearned", "oracle", "original"))


def row(method: str, r: dict) -> list[str]:
    rob = r["robustness"]
    rel, q, para, pr = (rob[a] for a in ATTACK_ORDER)
    wrappers = [w for w in pr if isinstance(pr[w], dict)]
    worst = max(wrappers, key=lambda w: pr[w]["unlearned"]["forget.rougeL"])
    flags = [f"{w} {pr[w]['unlearned']['flag_rate']:.0%}" for w in wrappers if "flag_rate" in pr[w]["unlearned"]]
    return [method, *(f"{rob[a]['wall_s']:.1f}" for a in ATTACK_ORDER), f"{sum(rob[a]['wall_s'] for a in ATTACK_ORDER):.1f}",
            " → ".join(f"{x:.2f}" for x in (rel["unlearned"][0], rel["unlearned"][-1])) + " (oracle "
            + " → ".join(f"{x:.2f}" for x in (rel["oracle"][0], rel["oracle"][-1])) + f", original {rel['original'][0]:.2f})",
            _trio(q["8"]), _trio(q["4"]), _trio(para), f"{worst}: {_trio(pr[worst])}",
            ", ".join(flags), "yes" if r["original_unchanged"] else "NO"]


def table(rows: list[list[str]]) -> str:
    head = ["method", "relearn s", "quantize s", "paraphrase s", "prompts s", "all four s",
            "relearn: held-out forget rougeL, step 0 → 20", "8 bits forget rougeL (unl. / oracle / orig.)",
            "4 bits", "paraphrased", "prompts, worst wrapper", "ECO flag rate per wrapper", "original view unchanged"]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows])


def main() -> None:
    from unlearning.methods import method_names

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="*", help="methods to unlearn and attack (default: every registered one)")
    parser.add_argument("--artifact", nargs="*", type=Path, help="attack these artifact folders instead")
    args = parser.parse_args()
    rows, summaries = [], []
    with tempfile.TemporaryDirectory() as tmp:
        if args.artifact:
            folders = {str(f): f for f in args.artifact}
        else:
            folders = {}
            for method in args.methods or method_names():
                folders[method] = Path(tmp) / method
                print(f"unlearning with {method}: {unlearn(method, folders[method]):.0f}s", file=sys.stderr)
        for name, folder in folders.items():
            report = attack(folder)
            label = report["method"] if args.artifact else name
            rows.append(row(label, report))
            summaries += [f"- **{label}** {a}: {report['robustness'][a]['summary']}" for a in ATTACK_ORDER]
            if "note" in report["robustness"]:
                summaries.append(f"- **{label}**: {report['robustness']['note']}")
            print(f"attacked {label}: {report['wall_s']:.1f}s", file=sys.stderr)
    sample = report["robustness"]["sample"]
    print(f"Workshop preset, {cpu_name()} ({platform.machine()}), the attack job's defaults (relearn K = 20 at lr 3e-3, "
          f"LoRA rank 8); {sample['note']} (forget {sample['forget']}, retain {sample['retain']}, held-out wordings "
          f"{sample['forget_paraphrased']}). Wall seconds per attack; figures are ROUGE-L recall.\n")
    print(table(rows))
    print()
    print("\n".join(summaries))


if __name__ == "__main__":
    main()
