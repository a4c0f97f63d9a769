"""Why IHL + FILA does what it does on realistic answers: trajectories over settings.

    python benchmarks/realistic_sweep.py                          # the default configuration
    python benchmarks/realistic_sweep.py --set lr=1e-3 --set retain_weight=4 --every 25

Needs the models of benchmarks/realistic.py (its cache folder; run it once first). Loads the
taught model once and trains IHL + FILA in this process with the given settings (the
defaults of trainer.LoraSettings otherwise), and every `--every` steps measures, with the
adapters on: ROUGE-L recall and fluency of the greedy answers to the 40 forget questions and to
a fixed seeded sample of `--retain-sample` retain questions, and the forget answers'
mem_acc (the holdout criterion's measure). The first row (step 0) is the taught model, and the
oracle's row is added when it is taught. FILA's ε share comes from the init's report.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.realistic import CACHE  # noqa: E402
from benchmarks.results import fmt, machine  # noqa: E402
from benchmarks.sweep import adapters_of  # noqa: E402
from unlearning.runs import Event, Run, RunContext  # noqa: E402

KIT = ROOT / "assets" / "workshop"


def watched(every: int, probe) -> Run:
    """A run that is never started: LoraMethod.run trains in this thread with `RunContext(run)`;
    its log lines go to stderr and every `every` steps its step event calls `probe(step, values)`."""
    run = Run(lambda ctx: None, name="realistic sweep")

    def on_event(event: Event) -> None:
        if event.kind == "log":
            print(event.message, file=sys.stderr, flush=True)
        elif event.kind == "step" and event.series == "train" and event.step % every == 0:
            probe(event.step, event.values)

    run.subscribe(on_event)
    return run


def measure(model, tok, forget, retain) -> list[str]:
    from unlearning.evaluation.metrics import evaluate_split

    f, gens = evaluate_split(model, tok, forget, "forget")
    r, _ = evaluate_split(model, tok, retain, "retain")
    return [fmt(f["rougeL"]), fmt(r["rougeL"]), fmt(f["mem_acc"]), fmt(f["fluency"]), fmt(r["fluency"]),
            gens["generations"][0]["output"][:70].replace("|", "/")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", action="append", default=[], help="a LoraSettings field, name=value (repeatable)")
    p.add_argument("--every", type=int, default=25)
    p.add_argument("--retain-sample", type=int, default=40)
    p.add_argument("--method", default="ihl-fila")
    p.add_argument("--no-oracle", action="store_true")
    p.add_argument("--kit", choices=("realistic", "workshop"), default="realistic",
                   help="the taught realistic set (default) or the workshop preset")
    p.add_argument("--show", type=int, default=3, help="forget answers printed after training")
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 lets two sweeps share 2 cores)")
    args = p.parse_args()
    import torch

    from unlearning.data import Dataset, load_file
    from unlearning.evaluation.metrics import evaluate_split
    from unlearning.methods import get_method
    from unlearning.models import load_model
    from unlearning.settings import build

    torch.set_num_threads(args.threads)
    folder = CACHE if args.kit == "realistic" else KIT
    forget, retain_all = load_file(folder / "forget.jsonl"), load_file(folder / "retain.jsonl")
    sample = random.Random(0).sample(retain_all.examples, min(args.retain_sample, len(retain_all)))
    retain = Dataset(retain_all.name, "qa", sample)
    splits = {"forget": forget, "retain": retain_all, "holdout": load_file(folder / "holdout.jsonl")}
    model_name, oracle_name = ((str(CACHE / "model"), str(CACHE / "oracle")) if args.kit == "realistic"
                               else ("workshop", "workshop-oracle"))
    loaded = load_model(model_name, "cpu")
    method = get_method(args.method)
    values = {k: v for k, v in (s.split("=", 1) for s in args.set)}
    cfg = build(method.Config, values)
    rows, t0 = [], time.perf_counter()
    rows.append(["0 (taught)", "", *measure(loaded.model, loaded.tokenizer, forget, retain)])
    unseen = evaluate_split(loaded.model, loaded.tokenizer, splits["holdout"], "holdout")[0]  # the oracle's stand-in

    def probe(step: int, values: dict[str, float]) -> None:
        with adapters_of(run).use() as model:
            rows.append([str(step), f"{values['total']:.3f}", *measure(model, loaded.tokenizer, forget, retain)])
        print(" | ".join(rows[-1]), f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    run = watched(args.every, probe)
    result = method.run(RunContext(run), loaded, splits, cfg, {"before": None})
    stopping, fila = result.extra_report["stopping"], result.extra_report.get("fila", {})
    with adapters_of(run).use() as model:
        shown = evaluate_split(model, loaded.tokenizer, Dataset(forget.name, "qa", forget.examples[:args.show]), "forget")
    result.release()
    if not args.no_oracle and (args.kit == "workshop" or (CACHE / "oracle" / "config.json").exists()):
        oracle = load_model(oracle_name, "cpu")
        rows.append(["oracle", "", *measure(oracle.model, oracle.tokenizer, forget, retain)])
    head = ["step", "loss", "forget rougeL", f"retain rougeL ({args.retain_sample})", "forget mem_acc",
            "forget fluency", "retain fluency", "first forget answer"]
    flags = " ".join(f"--set {s}" for s in args.set) or "(defaults)"
    print(f"`python benchmarks/realistic_sweep.py --kit {args.kit} {flags}` — {args.method}, {cfg}; on {machine('cpu')}; "
          f"{time.perf_counter() - t0:.0f} s. Holdout criterion (target {stopping['target']}) met at step "
          f"{stopping['reached_at']}; FILA ε share {fmt(fila.get('eps_share'))}. The taught model on the holdout "
          f"(never taught): rougeL {fmt(unseen['rougeL'])}, mem_acc {fmt(unseen['mem_acc'])}.\n")
    print("\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows]))
    for g in shown[1]["generations"]:
        print(f"\n- Q: {g['prompt']}\n  after: {g['output']}\n  gold: {g['reference']}")


if __name__ == "__main__":
    main()
