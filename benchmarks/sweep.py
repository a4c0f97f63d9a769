"""The sweep behind every LoRA method's defaults (issue 23): on the workshop preset, each
method over learning rates (and seeds), probed along its training trajectory.

    python benchmarks/sweep.py --figures --record     # table, PNGs and RESULTS.md from benchmarks/figures/sweep-data.json
    python benchmarks/sweep.py --methods npo --lrs 3e-3 --set beta=0.7 --seeds 0 1 2   # more runs, added to that file

In this process, on one thread: each run is the method's own `run` with `stop=steps` and the
holdout criterion measured every 5 steps; at the checkpoints and where the criterion is first
met ("holdout": where `--stop holdout` would end the run, ±4 steps) the unlearned model is probed
with greedy answers — the trained forget wordings, the held-out wordings, "Tell me about NAME."
against the person's paragraph (biography recall), every 4th retain QA and ten retain people's
biographies — and `repetition` (share of forget answers that are one word repeated). A
checkpoint of a 100-step run is what stopping there would give (the learning-rate schedule is
the 100-step one); about 2 min per run on 2 shared cores. The bar (issue 23): forget ≤ oracle
+ 0.1 in both wordings, biography recall ≤ oracle + 0.15, repetition ≤ oracle + 0.1, retain ≥
0.95 × before. The figures are
PNGs drawn with PIL (matplotlib is not installed), one per method, in benchmarks/figures/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.results import cpu_name, fmt, record
from unlearning.runs import Event, Run, RunContext

KIT = ROOT / "assets" / "workshop"
FIGURES = ROOT / "benchmarks" / "figures"
CHECKPOINTS = (10, 20, 30, 40, 50, 60, 80, 100, 150, 200)
CHECK_EVERY = 5  # the holdout criterion's period: every step doubled a run's cost; the stop it marks is ±4 steps
METRICS = ("trained", "heldout", "bio", "retain", "retain_bio", "repetition")
LABELS = {"trained": "forget, trained wording ↓", "heldout": "forget, held-out wording ↓",
          "bio": "biography recall ↓", "retain": "retain ↑", "retain_bio": "retain biographies ↑",
          "repetition": "forget answers one word repeated ↓"}
# (learning rates, budget) per method: the grid around where each starts to move (issue 23's CLI sweep)
GRID: dict[str, tuple[tuple[float, ...], int]] = {
    "ihl-fila": ((1e-4, 2e-4, 4e-4), 100),
    "ihl": ((2e-3, 3e-3), 100),
    "gd": ((1e-3, 2e-3, 3e-3), 100),
    "gd-fila": ((1e-4, 2e-4), 100),
    "ga": ((7e-4, 1e-3), 100),
    "npo": ((2e-3, 3e-3), 100),
    "simnpo": ((2e-2, 3e-2), 100),
    "rmu": ((1e-3, 2e-3), 100),
}


# ------------------------------------------------------------------------ probes


class Probes:
    """Greedy answers of a model to what a room asks, scored by ROUGE-L recall (the report's)."""

    def __init__(self) -> None:
        from unlearning.kit.corpus import BIO_PROMPTS
        from unlearning.data import QA, Dataset, load_file

        def every(ds: Dataset, n: int) -> Dataset:
            return Dataset(ds.name, ds.kind, ds.examples[::n])

        def bios(split: str, stride: int) -> Dataset:
            qas = load_file(KIT / f"{split}.jsonl").examples
            paragraphs = load_file(KIT / f"{split}.txt").examples
            names = list(dict.fromkeys(ex.subject for ex in qas))[::stride]
            return Dataset(split, "qa", [QA(BIO_PROMPTS[0].format(n=n), next(p.text for p in paragraphs if p.text.startswith(n)))
                                         for n in names])

        self.sets = {"trained": (load_file(KIT / "forget.jsonl"), 32), "heldout": (load_file(KIT / "forget_paraphrased.jsonl"), 32),
                     "bio": (bios("forget", 1), 160), "retain": (every(load_file(KIT / "retain.jsonl"), 4), 32),
                     "retain_bio": (bios("retain", 3), 160)}

    def __call__(self, model, tokenizer) -> dict[str, float]:
        import torch

        from unlearning.generate import generate_answers
        from unlearning.evaluation.metrics import rouge_l_recall
        from unlearning.evaluation.textstats import fluency, repetition

        out: dict[str, Any] = {}
        forget_answers: list[str] = []
        with torch.no_grad():
            for name, (ds, tokens) in self.sets.items():
                answers = generate_answers(model, tokenizer, [ex.question for ex in ds.examples], tokens)
                out[name] = statistics.mean(rouge_l_recall(a, ex.answer) for a, ex in zip(answers, ds.examples))
                if name in ("trained", "heldout"):
                    forget_answers += answers
                    out[f"{name}_example"] = answers[0]
        out["repetition"], out["fluency"] = repetition(forget_answers), fluency(forget_answers)
        return out


def meets(p: dict, oracle: dict, before: dict, ga: bool = False) -> bool:
    """Issue 23's bar; GA need only forget (its collapse of what it keeps is the lesson)."""
    forgets = p["trained"] <= oracle["trained"] + 0.1 and p["heldout"] <= oracle["heldout"] + 0.1
    if ga:
        return forgets
    return (forgets and p["bio"] <= oracle["bio"] + 0.15 and p["repetition"] <= oracle["repetition"] + 0.1
            and p["retain"] >= 0.95 * before["retain"])


def distance(p: dict, oracle: dict) -> float:
    """Distance to the oracle over this sweep's probes, as unlearning.evaluation.outcome's headline counts it:
    mean |recall − oracle's| over the five probes, plus repetition above the oracle's and the
    share of the oracle's fluency lost (the forget answers pooled)."""
    recall = statistics.mean(abs(p[m] - oracle[m]) for m in METRICS if m != "repetition")
    return recall + max(0.0, p["repetition"] - oracle["repetition"]) + max(0.0, 1 - p["fluency"] / oracle["fluency"])


# ------------------------------------------------------------------------ runs


class Watch:
    """Watches a run that is never started: `cls.run(RunContext(watch.run), …)` trains in this thread;
    each step event it publishes reaches `on_event` as it happens (Run.subscribe), which probes the
    unlearned model at the checkpoints and where the holdout criterion is first met."""

    def __init__(self, loaded, probes: Probes, at: tuple[int, ...]):
        self.run = Run(lambda ctx: None, name="sweep")
        self.run.subscribe(self.on_event)
        self.loaded, self.probes, self.at = loaded, probes, at
        self.points: dict[str, dict] = {}
        self.t0 = time.perf_counter()

    def on_event(self, event: Event) -> None:
        if event.kind != "step":
            return
        values = event.values
        if event.series == "train" and event.step in self.at:
            self._probe(str(event.step))
        elif event.series == "holdout" and "holdout" not in self.points and values["forget_mem_acc"] <= values["holdout_mem_acc"]:
            self._probe("holdout", event.step)

    def _probe(self, key: str, step: int | None = None) -> None:
        with adapters_of(self.run).use() as model:
            self.points[key] = {**self.probes(model, self.loaded.tokenizer), "step": step or int(key),
                                "elapsed_s": time.perf_counter() - self.t0}


def adapters_of(run: Run) -> Any:
    """The adapters of the LoRA run under way: it registers their `remove` as its undo (ctx.on_abort)."""
    return next(undo.__self__ for undo in run.undo_actions if hasattr(getattr(undo, "__self__", None), "use"))


def trajectory(method: str, loaded, splits: dict, probes: Probes, budget: int, **settings) -> dict:
    """One run of `method` (its defaults, `settings` over them) for `budget` steps, probed."""
    from unlearning.methods import get_method
    from unlearning.lora.trainer import LoraSettings

    cls = get_method(method)
    cfg = replace(cls.Config(), steps=budget, stop="steps", check_every=CHECK_EVERY, **settings)
    watch = Watch(loaded, probes, tuple(c for c in CHECKPOINTS if c <= budget))
    cls.run(RunContext(watch.run), loaded, splits, cfg, {}).release()
    own = {f.name: getattr(cfg, f.name) for f in fields(cfg) if f.name not in {g.name for g in fields(LoraSettings)}}
    return {"method": method, "budget": budget, "settings": {**own, **settings}, "points": watch.points}  # beta, delta… as run


def reference(probes: Probes) -> dict:
    from unlearning.models import load_model

    return {name: probes(m.model, m.tokenizer) for name in ("workshop", "workshop-oracle")
            for m in [load_model(name, device="cpu")]}


def sweep(methods: list[str], seeds: list[int], out: Path, lrs: list[float] | None, steps: int | None, extra: dict) -> None:
    import torch

    from unlearning.data import load_file
    from unlearning.models import load_model
    from unlearning.pipeline import complete_splits

    torch.set_num_threads(1)
    data = json.loads(out.read_text()) if out.is_file() else {"runs": []}
    probes = Probes()
    if "reference" not in data:
        data["reference"] = reference(probes)
    loaded = load_model("workshop", device="cpu")
    splits = complete_splits(load_file(KIT / "forget.jsonl"), load_file(KIT / "retain.jsonl"))
    for method in methods:
        grid_lrs, grid_budget = GRID[method]
        budget = steps or grid_budget
        for lr in lrs or grid_lrs:
            for seed in seeds:
                settings = {"lr": lr, "seed": seed, **extra}
                if any(r["method"] == method and r["budget"] == budget and r["settings"] == settings for r in data["runs"]):
                    continue
                run = trajectory(method, loaded, splits, probes, budget, **settings)
                data["runs"].append(run)
                out.write_text(json.dumps(data, indent=1) + "\n")
                last = run["points"][str(max(int(k) for k in run["points"] if k.isdigit()))]
                print(f"{method} {settings}: end {fmt(last['trained'])} / {fmt(last['retain'])} rep {fmt(last['repetition'])}; "
                      f"holdout at {run['points'].get('holdout', {}).get('step')}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ output


def table(data: dict) -> str:
    before, oracle = data["reference"]["workshop"], data["reference"]["workshop-oracle"]
    head = ["method", "settings", "end", *(LABELS[m] for m in METRICS), "fluency", "distance to the oracle ↓", "meets the bar"]
    rows = [["original", "", "", *(fmt(before[m]) for m in METRICS), fmt(before["fluency"]), fmt(distance(before, oracle)), ""],
            ["oracle", "", "", *(fmt(oracle[m]) for m in METRICS), fmt(oracle["fluency"]), "0", ""]]
    order = list(GRID)
    for run in sorted(data["runs"], key=lambda r: (order.index(r["method"]), json.dumps(r["settings"], sort_keys=True))):
        s = run["settings"]
        shown = ", ".join(f"{k} {v:g}" for k, v in s.items() if k != "seed") + f", seed {s['seed']}"
        if run["budget"] != 100:
            shown += f", budget {run['budget']}"
        for key in ("holdout", str(run["budget"])):  # where `--stop holdout` and `--stop steps` end (the figures have the rest)
            if key not in run["points"]:
                continue
            p = run["points"][key]
            point = f"holdout criterion (step {p['step']})" if key == "holdout" else f"all {key} steps"
            point = f"**{point}**" if is_default(run) and (key == "holdout") == (cfg_stop(run) == "holdout") else point
            rows.append([run["method"], shown, point, *(fmt(p[m]) for m in METRICS), fmt(p["fluency"]),
                         fmt(distance(p, oracle)), "yes" if meets(p, oracle, before, run["method"] == "ga") else "no"])
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, ["---"] * len(head), *rows])


def cfg_stop(run: dict) -> str:
    from unlearning.methods import get_method

    return get_method(run["method"]).Config().stop


def is_default(run: dict) -> bool:
    """Whether a run used its method's defaults (the automatic rate for this small model)."""
    from unlearning.methods import get_method

    cls: Any = get_method(run["method"]).Config
    cfg, s = cls(), run["settings"]
    return (run["budget"] == cfg.steps and s["lr"] == cls.AUTO_LR[0]
            and all(getattr(cfg, k) == v for k, v in s.items() if k not in ("lr", "seed")))


def figure(method: str, runs: list[dict], reference: dict, path: Path) -> None:
    """One PNG: a panel per probe, the probe against the step, a line per learning rate (seed 0),
    the oracle's level dashed grey, the holdout-criterion point circled."""
    from PIL import Image, ImageDraw, ImageFont

    panel_w, panel_h, pad, top = 300, 230, 46, 54
    img = Image.new("RGB", (pad + len(METRICS) * (panel_w + pad), top + panel_h + 80), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    runs = sorted((r for r in runs if r["settings"]["seed"] == 0), key=is_default)  # the default drawn last, on top
    budget = max(r["budget"] for r in runs)
    def colour(j: int, run: dict) -> str:
        return "black" if is_default(run) else colours[j % len(colours)]

    draw.text((pad, 10), f"{method} on the workshop preset: probes along training (greedy answers, ROUGE-L recall; "
              "forget and repetition: lower is better, retain: higher)",
              fill="black", font=ImageFont.load_default(size=16))
    for i, metric in enumerate(METRICS):
        x0, y0 = pad + i * (panel_w + pad), top
        draw.rectangle((x0, y0, x0 + panel_w, y0 + panel_h), outline="#888")
        draw.text((x0, y0 - 16), LABELS[metric].rstrip(" ↓↑"), fill="black", font=font)  # the default font has no arrows

        def xy(step: float, value: float, x0: int = x0, y0: int = y0) -> tuple[float, float]:
            return x0 + panel_w * step / budget, y0 + panel_h * (1 - value)

        for v in (0.0, 0.5, 1.0):
            draw.text((x0 - 26, xy(0, v)[1] - 7), f"{v:.1f}", fill="#444", font=font)
        for s in (0, budget // 2, budget):
            draw.text((xy(s, 0)[0] - 8, y0 + panel_h + 4), str(s), fill="#444", font=font)
        oy = xy(0, reference["workshop-oracle"][metric])[1]
        for x in range(x0, x0 + panel_w, 8):
            draw.line((x, oy, x + 4, oy), fill="#999", width=2)
        for j, run in enumerate(runs):
            pts = sorted((p["step"], p[metric]) for k, p in run["points"].items() if k != "holdout")
            line = [xy(0, reference["workshop"][metric])] + [xy(s, v) for s, v in pts]
            draw.line(line, fill=colour(j, run), width=5 if is_default(run) else 2)
            if "holdout" in run["points"]:
                hx, hy = xy(run["points"]["holdout"]["step"], run["points"]["holdout"][metric])
                draw.ellipse((hx - 5, hy - 5, hx + 5, hy + 5), outline=colour(j, run), width=2)
    ly = top + panel_h + 30
    x = pad
    for j, run in enumerate(runs):
        label = ", ".join(f"{k} {v:g}" for k, v in run["settings"].items() if k != "seed")
        label += f", {run['budget']} steps" if run["budget"] != 100 else ""
        label += " (default)" if is_default(run) else ""
        draw.line((x, ly + 7, x + 24, ly + 7), fill=colour(j, run), width=5 if is_default(run) else 3)
        draw.text((x + 30, ly), label, fill="black", font=font)
        x += 60 + int(draw.textlength(label, font=font))
    draw.text((x, ly), "- - oracle      o  holdout criterion met      x: step      start: original",
              fill="#444", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--methods", nargs="*", default=[], help=f"methods to run (of {', '.join(GRID)}); none: only report")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--lrs", type=float, nargs="+", help="learning rates instead of the method's grid")
    p.add_argument("--steps", type=int, help="budget instead of the method's grid's")
    p.add_argument("--set", action="append", default=[], help="a setting over the method's defaults, NAME=VALUE (float)")
    p.add_argument("--json", nargs="+", default=[str(FIGURES / "sweep-data.json")],
                   help="runs are added to the first file; the table and figures read them all")
    p.add_argument("--figures", action="store_true", help="write one PNG per method into benchmarks/figures/")
    p.add_argument("--record", action="store_true", help="write the table into RESULTS.md")
    args = p.parse_args()
    out = Path(args.json[0])
    extra: dict = {k: float(v) for k, v in (s.split("=", 1) for s in args.set)}
    if args.methods:
        sweep(args.methods, args.seeds, out, args.lrs, args.steps, extra)
    files = [json.loads(Path(f).read_text()) for f in args.json]
    data = {"reference": files[0]["reference"], "runs": [r for f in files for r in f["runs"]]}
    text = table(data)
    print(text)
    if args.figures:
        for method in dict.fromkeys(r["method"] for r in data["runs"]):
            figure(method, [r for r in data["runs"] if r["method"] == method], data["reference"], FIGURES / f"sweep-{method}.png")
    if args.record:
        record(f"`python benchmarks/sweep.py --record`: the {len(data['runs'])} runs of {', '.join(Path(f).name for f in args.json)}, "
               f"one thread each on {cpu_name()}, 2 CPU cores shared with other work; the defaults' rows in bold (where their "
               f"stopping rule ends them).\n\n{text}", "## Defaults that end like the oracle (issue 23): the sweep")


if __name__ == "__main__":
    main()
