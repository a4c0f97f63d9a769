"""The benchmark table: every method on one kit, side by side, and the ratios that matter.

    python -m benchmarks                        # workshop preset on this machine's device (~15 min on 2 CPU cores)
    python -m benchmarks --record               # and write it into benchmarks/RESULTS.md
    python -m benchmarks --kit /tmp/hub-kit --device cuda --record   # a hub-size kit (benchmarks/hub_kit.py)

What runs, in this order:
1. each method through the CLI (`python -m unlearning unlearn --method M …`) with its default
   settings, each in its own process so `peak_mem_mb` is its own: the report's evaluations
   give the forget/retain metrics, `method_wall_s` the method's own time (no evaluation),
   `steps` what it ran (the LoRA methods: their 100 default steps, benchmarks/defaults.py);
2. FILA / random-init steps to forget: the same loss with FILA and with peft's default
   initialisation, training only, stopping at the holdout criterion within `--ratio-steps`
   (long enough for random init to get there), for each seed;
3. ECO guarded / original generation latency: the guard saved by step 1 and the plain model
   generate `--tokens` new tokens for one prompt at a time (as in chat), unflagged (retain)
   and flagged (forget) prompts, calls interleaved, best of `--rounds`;
4. memory of the original + unlearned views / one model: the bytes of every tensor needed to
   serve both views of one loaded base (the base, the adapters; ECO: its sentence encoder and
   head), counted once each, over the base alone. Two separate models would be 2.00.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKSHOP = ROOT / "assets" / "workshop"

from benchmarks.results import RESULTS, fmt, machine, record  # noqa: E402

# (report key, label with the better direction)
COLUMNS = (("forget.rougeL", "forget rougeL ↓"), ("forget.answer_prob", "forget answer_prob ↓"),
           ("forget_quality", "forget_quality ↑"), ("retain.rougeL", "retain rougeL ↑"),
           ("retain.answer_prob", "retain answer_prob ↑"), ("model_utility", "model_utility ↑"))


def methods() -> list[str]:
    """Every registered method, in menu order: a new method file joins the table."""
    from unlearning.methods import method_names

    return method_names()


# Extra rows: an ECO configuration per scoring protocol and search target (METHODS.md §ECO 4b, 5).
VARIANTS = {"eco --protocol paper": ("eco", ["--protocol", "paper"]),
            "eco --protocol paper --target forget_quality": ("eco", ["--protocol", "paper", "--target", "forget_quality"])}


def rows() -> dict[str, tuple[str, list[str]]]:
    """Every row of the method table: each method with its defaults, then the ECO variants."""
    return {**{m: (m, []) for m in methods()}, **VARIANTS}


def lora_methods() -> list[str]:
    from unlearning.methods import all_methods
    from unlearning.lora.trainer import LoraMethod

    return [m.name for m in all_methods() if issubclass(m, LoraMethod)]


def fila_pairs() -> list[tuple[str, str]]:
    """(FILA method, random-init method with the same loss terms): what FILA buys, same loss."""
    from unlearning.methods import get_method
    from unlearning.lora.trainer import LoraSettings

    def loss(name: str) -> set:
        return {(t.name, t.split, t.fn) for t in get_method(name).objective(LoraSettings())}

    lora = lora_methods()
    pairs = []
    for fila in (n for n in lora if get_method(n).init.offset):
        twin = next((n for n in lora if not get_method(n).init.offset and loss(n) == loss(fila)), None)
        if twin is not None:
            pairs.append((fila, twin))
    return pairs


class Kit:
    """The files and the two models of a workshop-style kit folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        default = folder.resolve() == WORKSHOP.resolve()
        self.model = "workshop" if default else str(folder / "model")
        self.oracle = "workshop-oracle" if default else str(folder / "oracle")
        about = folder / "kit.json"  # written by benchmarks/hub_kit.py
        self.name = ("workshop preset" if default else
                     json.loads(about.read_text())["name"] if about.is_file() else f"kit {folder}")

    def data_args(self) -> list[str]:
        return [a for s in ("forget", "retain", "holdout", "general") for a in (f"--{s}", str(self.folder / f"{s}.jsonl"))]

    def splits(self) -> dict:
        from unlearning.data import load_file

        return {s: load_file(self.folder / f"{s}.jsonl") for s in ("forget", "retain", "holdout", "general")}


# ------------------------------------------------------------------ 1. methods, through the CLI
def cli_run(kit: Kit, method: str, device: str, out: Path, before: bool, flags: list[str] | None = None,
            row: str | None = None) -> dict:
    row = row or method
    slug = row.replace(" ", "").replace("--", "-")
    report = out / f"{slug}.json"
    cmd = [sys.executable, "-m", "unlearning", "unlearn", "--method", method, "--model", kit.model,
           "--oracle", kit.oracle, *kit.data_args(), "--device", device, "--report", str(report),
           "--out", str(out / (method if row == method else slug)), *(flags or [])] + ([] if before else ["--no-before"])
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(report.read_text())
    result["process_s"] = time.perf_counter() - t0
    return result


# ------------------------------------------------------------------ 2. steps to forget
def steps_to_forget(kit: Kit, device: str, seeds: list[int], steps: int, methods: list[str] | None = None,
                    check_original: bool = False) -> dict:
    """Training only, stopping at the holdout criterion: the step at which each method (by
    default those of `fila_pairs()`) meets it, per seed (None: not within `steps`). With
    `check_original`, also whether the original view of the shared base still gives the same
    greedy tokens on the forget questions after every run (key "original_view_unchanged")."""
    from unlearning.generate import generate_ids, prompt_ids
    from unlearning.methods import get_method
    from unlearning.models import load_model
    from unlearning.runs import Run
    from unlearning.settings import build

    methods = methods if methods is not None else list(itertools.chain(*fila_pairs()))
    splits = kit.splits()
    loaded = load_model(kit.model, device)
    prompts = [prompt_ids(loaded.tokenizer, ex.question) for ex in splits["forget"].examples]
    before = generate_ids(loaded.model, loaded.tokenizer, prompts) if check_original else None
    out: dict = {m: [] for m in methods}
    unchanged = True
    for seed in seeds:
        for name in methods:
            method = get_method(name)
            cfg = build(method.Config, {"steps": steps, "seed": seed, "stop": "holdout"})
            run = Run(lambda ctx: method.run(ctx, loaded, splits, cfg, {"oracle": None, "before": None})).start()
            run.wait()
            if run.state != "done":
                raise SystemExit(f"{name} seed {seed}: {run.error}")
            out[name].append(run.result.extra_report["stopping"]["reached_at"])
            if check_original:
                with run.result.view("original") as model:
                    unchanged &= generate_ids(model, loaded.tokenizer, prompts) == before
            run.result.release()
    if check_original:
        out["original_view_unchanged"] = unchanged
    return out


def fila_ratios(reached: dict, steps: int) -> list[tuple[str, str]]:
    rows = []
    for fila, random_init in fila_pairs():
        pairs = list(zip(reached[fila], reached[random_init]))
        shown = ", ".join(f"{a or f'>{steps}'}/{b or f'>{steps}'}" for a, b in pairs)
        ratios = [a / b for a, b in pairs if a and b]
        value = f"**{statistics.mean(ratios):.2f}**" if ratios else "—"
        rows.append((f"{fila} / {random_init} steps to forget (per seed: {shown})", value))
    return rows


# ------------------------------------------------------------------ 3. ECO latency
def eco_latency(kit: Kit, device: str, guard_folder: Path, tokens: int, rounds: int, n: int) -> dict:
    from benchmarks.eco import generation_latency
    from unlearning.attach import load_unlearned
    from unlearning.models import load_model

    splits = kit.splits()
    loaded = load_model(kit.model, device)
    guard = load_unlearned(loaded, guard_folder).guard
    retain_q, forget_q = splits["retain"].prompts()[:n], splits["forget"].prompts()[:n]
    flags = guard.classifier.flags(retain_q + forget_q)
    return {"unflagged": generation_latency(loaded.model, guard, loaded.tokenizer, retain_q, tokens, rounds),
            "flagged": generation_latency(loaded.model, guard, loaded.tokenizer, forget_q, tokens, rounds),
            "flag_rate_retain": sum(flags[:n]) / n, "flag_rate_forget": sum(flags[n:]) / n}


# ------------------------------------------------------------------ 4. memory of the two views
def tensor_bytes(*modules) -> int:
    """Bytes of every parameter and buffer of `modules`, each storage counted once."""
    storages = {}
    for module in modules:
        for t in itertools.chain(module.parameters(), module.buffers()):
            s = t.untyped_storage()
            storages[(s.device, s.data_ptr())] = s.nbytes()
    return sum(storages.values())


def views_memory(kit: Kit, device: str, folders: dict[str, Path]) -> dict[str, dict]:
    """Per artifact: bytes of one model, of both views, and (CUDA) the allocator's growth."""
    import torch

    from unlearning.attach import load_unlearned
    from unlearning.models import load_model

    loaded = load_model(kit.model, device)
    one = tensor_bytes(loaded.model)
    out = {}
    for name, folder in folders.items():
        allocated = torch.cuda.memory_allocated() if device == "cuda" else None
        unlearned = load_unlearned(loaded, folder)
        modules = [loaded.model]
        if name == "eco":
            clf = unlearned.guard.classifier
            modules += [clf.featurizer.encoder.model, clf.head]
        both = tensor_bytes(*modules)
        grown = (torch.cuda.memory_allocated() - allocated) if device == "cuda" else None
        out[name] = {"one_mb": one / 2**20, "both_mb": both / 2**20, "ratio": both / one,
                     "cuda_growth_mb": grown / 2**20 if grown is not None else None}
        unlearned.release()
    return out


# ------------------------------------------------------------------ the table
def method_table(reports: dict[str, dict]) -> str:
    first = next(iter(reports.values()))
    head = ["method", "steps", "method wall_s", "process wall_s", "peak_mem_mb", *(label for _, label in COLUMNS)]
    rows = [["before", "", "", "", "", *(fmt(first["before"].get(k)) for k, _ in COLUMNS)],
            ["oracle (the target)", "", "", "", "", *(fmt(first["oracle"].get(k)) for k, _ in COLUMNS)]]
    for name, r in reports.items():
        rows.append([name, str(r["steps"]), f"{r['method_wall_s']:.1f}", f"{r['process_s']:.1f}",
                     f"{r['peak_mem_mb']:.0f}", *(fmt(r["after"].get(k)) for k, _ in COLUMNS)])
    return "\n".join("| " + " | ".join(row) + " |" for row in [head, ["---"] * len(head), *rows])


def ratio_table(reached: dict, ratio_steps: int, latency: dict, memory: dict) -> str:
    rows = fila_ratios(reached, ratio_steps)
    for kind in ("unflagged", "flagged"):
        t = latency[kind]
        rows.append((f"ECO guarded / original generation latency, {kind} prompts "
                     f"({t['guarded_cold_wall']:.1f} / {t['original_wall']:.1f} ms wall; the guard classifies each new prompt)",
                     f"**{t['guarded_cold_wall'] / t['original_wall']:.2f}**"))
    for name, m in memory.items():
        extra = f"; CUDA allocator grew {m['cuda_growth_mb']:.1f} MB" if m["cuda_growth_mb"] is not None else ""
        rows.append((f"memory of original + unlearned views / one model, {name} "
                     f"({m['both_mb']:.1f} / {m['one_mb']:.1f} MB of tensors{extra})", f"**{m['ratio']:.3f}**"))
    return "\n".join(["| ratio | value |", "|---|---|", *(f"| {what} | {value} |" for what, value in rows)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("--kit", type=Path, default=WORKSHOP, help="a workshop-style kit folder (default: the bundled one)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--methods", nargs="+", default=list(rows()), choices=list(rows()),
                   help="rows of the method table: methods, and ECO variants such as 'eco --protocol paper'")
    p.add_argument("--table-only", action="store_true",
                   help="the method table alone (no steps-to-forget, latency or memory ratios); recorded in its own section")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds for steps-to-forget")
    p.add_argument("--ratio-steps", type=int, default=300, help="step budget for steps-to-forget")
    p.add_argument("--tokens", type=int, default=32, help="new tokens per generation in the latency test")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--prompts", type=int, default=12, help="prompts of each kind in the latency test")
    p.add_argument("--record", action="store_true", help=f"write the table into {RESULTS.name}")
    p.add_argument("--json", type=Path, help="also write every number measured here")
    args = p.parse_args(argv)

    from unlearning.models import resolve_device

    device = resolve_device(args.device)
    kit = Kit(args.kit)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        reports = {}
        for i, m in enumerate(args.methods):
            method, flags = rows()[m]
            reports[m] = cli_run(kit, method, device, out, before=i == 0, flags=flags, row=m)
            print(f"{m}: {reports[m]['process_s']:.0f} s", file=sys.stderr, flush=True)
        if args.table_only:
            return record_table(args, argv, kit, device, reports, t_start)
        reached = steps_to_forget(kit, device, args.seeds, args.ratio_steps)
        latency = eco_latency(kit, device, out / "eco", args.tokens, args.rounds, args.prompts)
        memory = views_memory(kit, device, {"ihl-fila": out / "ihl-fila", "eco": out / "eco"})
    minutes = (time.perf_counter() - t_start) / 60
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        f"`{command.strip()}` ({time.strftime('%Y-%m-%d')}, {minutes:.0f} min) — {kit.name}, device {device}: "
        f"{machine(device)}.", "",
        "Each method with its defaults, through the CLI, one process each (`peak_mem_mb`: the process's peak "
        "resident set on the CPU, the CUDA allocator's peak on a GPU). `method wall_s` is the method alone; "
        "`process wall_s` adds start-up, loading and the evaluations (oracle and after; the first also 'before').", "",
        method_table(reports), "",
        f"Ratios (steps to forget: training only, holdout criterion, budget {args.ratio_steps} steps, seeds "
        f"{', '.join(map(str, args.seeds))}; latency: {args.tokens} new tokens, one prompt at a time, best of "
        f"{args.rounds} rounds, mean of {args.prompts} prompts; the classifier flagged "
        f"{latency['flag_rate_forget']:.0%} of the forget and {latency['flag_rate_retain']:.0%} of the retain prompts):", "",
        ratio_table(reached, args.ratio_steps, latency, memory),
    ])
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"reports": reports, "steps_to_forget": reached, "latency": latency,
                                         "memory": memory}, indent=2, default=str) + "\n")
    if args.record:
        record(text, f"## Benchmark table: {kit.name}, {device}")


def record_table(args, argv, kit: Kit, device: str, reports: dict, t_start: float) -> None:
    minutes = (time.perf_counter() - t_start) / 60
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    eco = {row: r.get("eco") or {} for row, r in reports.items() if r.get("method") == "eco"}
    text = "\n".join([
        f"`{command.strip()}` ({time.strftime('%Y-%m-%d')}, {minutes:.0f} min) — {kit.name}, device {device}: "
        f"{machine(device)}.", "",
        "Every method (and ECO per scoring protocol and search target) with its defaults, through the CLI, one "
        "process each; ROUGE-L is rouge_score's stemmed recall. `peak_mem_mb` is the run's own peak.", "",
        method_table(reports), "",
        *(f"- {row}: protocol {e.get('protocol', 'prompt')}, search target {e.get('search_target', 'metric')}, "
          f"strength {fmt(e.get('strength'))}, classifier recall {fmt(e.get('classifier_recall'))}, "
          f"FPR {fmt(e.get('classifier_fpr'))}" for row, e in eco.items()),
    ])
    print(text)
    if args.record:
        record(text, f"## Method table: {kit.name}, {device}")


if __name__ == "__main__":
    main()
