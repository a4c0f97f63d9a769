"""Benchmark ECO prompts on the workshop preset (issue 4). Prints markdown.

    python benchmarks/eco.py                  # ~1 min on 2 CPU cores
    python benchmarks/eco.py --cli            # also time the acceptance `unlearn` command (~1.5 min more)
    python benchmarks/eco.py --cli --record   # and write the tables into benchmarks/RESULTS.md (## ECO)

In one process, side by side:
1. setup: one `eco` run (classifier training with k-fold CV, robustness probe, strength
   search) against the oracle's forget rougeL, timed by part;
2. classifier latency per prompt, for prompts it has never seen (cold caches), one at a
   time as in chat and in batches of 32 as in evaluation, on the encoder's lean forward
   (eco/bert.py) and on transformers' forward side by side, each prompt timed on both in
   alternating order; and the k-fold recall/FPR of a classifier trained on each path
   (`--classifier`: this part alone, ~1 min);
3. generation latency of the original model and the guard on unflagged (retain) and flagged
   (forget) prompts, one prompt at a time as in chat, exactly `--tokens` new tokens each.
   The guard is timed with cold caches (it classifies a new prompt: the chat case) and warm
   ones (classification cached: the pure cost of the gate). The three calls for a prompt run
   back to back in rotating order, so drift on a shared machine hits all of them alike.
   Acceptance: guarded (cold) on unflagged prompts ≤ 1.05 × original + classifier time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.results import cpu_name  # noqa: E402

KIT = ROOT / "assets" / "workshop"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## ECO"


def machine() -> str:
    return f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} thread(s), load {os.getloadavg()[0]:.1f}"


def setup(loaded, splits, oracle):
    """One eco run; returns (unlearned, seconds)."""
    from unlearning.eco.objective import forget_metric
    from unlearning.methods import get_method
    from unlearning.settings import build

    target = forget_metric(oracle.model, oracle.tokenizer, splits["forget"], "rougeL")

    from unlearning.runs import Run, RunContext

    quiet = RunContext(Run(lambda ctx: None, name="eco benchmark")).quiet()  # a run never started: this thread, no events
    eco = get_method("eco")
    t0 = time.perf_counter()
    unlearned = eco.run(quiet, loaded, splits, build(eco.Config, {}), {"oracle": {"forget.rougeL": target}, "before": None})
    return unlearned, time.perf_counter() - t0


def cold(guard) -> None:
    """Forget every cached score and embedding, as for a prompt never seen before."""
    guard.classifier._cache.clear()
    guard.classifier.featurizer.encoder._cache.clear()


PATHS = ("lean", "transformers")  # the encoder's forward: eco/bert.py, or BertModel's (the old path)


@contextmanager
def encoder_path(encoder, path: str):
    """Run the encoder through `path` inside the block."""
    fast = encoder.fast
    encoder.fast = fast if path == "lean" else None
    try:
        yield
    finally:
        encoder.fast = fast


def classifier_latency(classifier, prompts: list[str], rounds: int = 3) -> dict[str, dict[str, float]]:
    """Per path: median CPU and wall ms per new prompt (cold caches) one at a time, and CPU ms
    per prompt in batches of 32. Each prompt is timed on both paths back to back, in
    alternating order, so drift on a shared machine hits both alike."""
    encoder = classifier.featurizer.encoder
    cpu: dict[str, list[float]] = {p: [] for p in PATHS}
    wall: dict[str, list[float]] = {p: [] for p in PATHS}
    for r in range(rounds):
        for i, text in enumerate(prompts):
            for path in PATHS if (r + i) % 2 == 0 else PATHS[::-1]:
                with encoder_path(encoder, path):
                    classifier._cache.clear()
                    encoder._cache.clear()
                    c0, w0 = time.thread_time(), time.perf_counter()
                    classifier.scores([text])
                    cpu[path].append(time.thread_time() - c0)
                    wall[path].append(time.perf_counter() - w0)
    out = {}
    for path in PATHS:
        with encoder_path(encoder, path):
            classifier._cache.clear()
            encoder._cache.clear()
            t0 = time.thread_time()
            for i in range(0, len(prompts), 32):
                classifier.scores(prompts[i : i + 32])
            out[path] = {"single": 1000 * statistics.median(cpu[path]), "single_wall": 1000 * statistics.median(wall[path]),
                         "batched": 1000 * (time.thread_time() - t0) / len(prompts)}
    return out


def classifier_quality(encoder, splits) -> dict[str, dict[str, float]]:
    """Per path: the workshop classifier trained from scratch on that path (cold encoder
    cache, the eco method's defaults: 4096 n-gram dims, α 0.01, 5 folds), its k-fold recall
    and FPR and how many unseen holdout prompts it flags; and the largest score difference
    between the two classifiers on every forget, retain and holdout prompt."""
    from unlearning.eco.features import Featurizer
    from unlearning.eco.training import HeadSettings, fit_classifier, general_prompts

    probe = splits["forget"].prompts() + splits["retain"].prompts() + splits["holdout"].prompts()
    out, scores = {}, {}
    for path in PATHS:
        with encoder_path(encoder, path):
            encoder._cache.clear()
            clf, stats = fit_classifier(Featurizer(encoder, 4096), splits["forget"].prompts(),
                                        splits["retain"].prompts() + general_prompts(), alpha=0.01, folds=5, hs=HeadSettings())
            clf._cache.clear()
            scores[path] = clf.scores(probe)
            out[path] = {"recall": stats["classifier_recall"], "fpr": stats["classifier_fpr"], "threshold": stats["threshold"],
                         "holdout_flagged": sum(clf.flags(splits["holdout"].prompts()))}
    encoder._cache.clear()
    out["max_score_diff"] = {"value": max(abs(a - b) for a, b in zip(*scores.values()))}
    return out


def path_table(lat: dict, quality: dict, n_prompts: int, rounds: int) -> str:
    rows = [f"Classifier per new prompt on each encoder path ({n_prompts} prompts × {rounds} rounds, cold caches, "
            "median; the classifier trained from scratch on each path):", "",
            "| encoder forward | CPU ms, one at a time | wall ms, one at a time | CPU ms, batches of 32 "
            "| k-fold recall | k-fold FPR | τ | holdout flagged |", "|---|---|---|---|---|---|---|---|"]
    for path, label in zip(PATHS, ("lean (eco/bert.py, packed weights)", "transformers BertModel (before)")):
        t, q = lat[path], quality[path]
        rows.append(f"| {label} | {t['single']:.1f} | {t['single_wall']:.1f} | {t['batched']:.1f} | {q['recall']:.3f} "
                    f"| {q['fpr']:.4f} | {q['threshold']:.4f} | {q['holdout_flagged']} |")
    rows += ["", f"Ratio lean / transformers, CPU ms one at a time: **{lat['lean']['single'] / lat['transformers']['single']:.2f}**; "
             f"largest score difference between the two classifiers on every forget, retain and holdout prompt: "
             f"{quality['max_score_diff']['value']:.1e}."]
    return "\n".join(rows)


def generation_latency(model, guard, tok, questions: list[str], tokens: int, rounds: int) -> dict[str, float]:
    """CPU ms (and wall ms, keys *_wall) per prompt, one prompt at a time: the original
    model, the guard with cold caches (a new prompt), the guard with warm ones, and the
    classifier alone (cold). With one torch thread all the work is in this thread, so its
    CPU time is the cost of the call whatever else the machine is doing."""
    from unlearning.generate import prompt_ids

    kwargs = dict(max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    names = ("original", "guarded_cold", "guarded_warm", "classify")
    cpu: dict[str, list[float]] = {k: [] for k in names}
    wall: dict[str, list[float]] = {k: [] for k in names}

    def timed(name: str, call, prepare=None) -> None:
        if prepare is not None:
            prepare()  # not timed: emptying or filling the caches
        c0, w0 = time.thread_time(), time.perf_counter()
        call()
        cpu[name].append(time.thread_time() - c0)
        wall[name].append(time.perf_counter() - w0)

    with torch.no_grad():
        warm_up = torch.tensor([prompt_ids(tok, questions[0])], device=model.device)
        model.generate(input_ids=warm_up, attention_mask=torch.ones_like(warm_up), **kwargs)
        for r in range(rounds):
            for i, q in enumerate(questions):
                ids = torch.tensor([prompt_ids(tok, q)], device=model.device)
                mask = torch.ones_like(ids)
                calls = [
                    ("original", lambda: model.generate(input_ids=ids, attention_mask=mask, **kwargs), None),
                    ("guarded_cold", lambda: guard.generate(input_ids=ids, attention_mask=mask, **kwargs), lambda: cold(guard)),
                    ("guarded_warm", lambda: guard.generate(input_ids=ids, attention_mask=mask, **kwargs),
                     lambda: guard.classifier.scores([q])),
                    ("classify", lambda: guard.classifier.scores([q]), lambda: cold(guard)),
                ]
                shift = (r + i) % len(calls)  # rotate the order so drift hits every column alike
                for name, call, prepare in calls[shift:] + calls[:shift]:
                    timed(name, call, prepare)
    def best(times: list[float]) -> float:
        # Fastest of the rounds for each prompt (noise only ever adds time), averaged over prompts.
        per_prompt = [min(times[i :: len(questions)]) for i in range(len(questions))]
        return 1000 * statistics.mean(per_prompt)

    out = {k: best(v) for k, v in cpu.items()}
    out.update({f"{k}_wall": best(v) for k, v in wall.items()})
    return out


def novel_prompts(n: int) -> list[str]:
    """One-sentence prompts the classifier has never seen: reworded built-in general prompts."""
    from unlearning.eco.training import general_prompts

    return [f"Quick question, {p[0].lower()}{p[1:]}" for p in general_prompts()[:n]]


def cli_acceptance() -> dict:
    """The issue's command, timed as a user would run it; with the r.json checks. (The
    engine runs a model as small as the workshop's on one torch thread: models.set_cpu_threads.)"""
    out = Path("/tmp/eco-bench")
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "unlearning", "unlearn", "--method", "eco", "--model", "workshop",
           "--oracle", "workshop-oracle", "--forget", str(KIT / "forget.jsonl"), "--retain", str(KIT / "retain.jsonl"),
           "--report", str(out / "r.json"), "--out", str(out / "guard")]
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    r = json.loads((out / "r.json").read_text())
    b, a, o = r["before"], r["after"], r["oracle"]
    return {"wall_s": wall, "cpu_s": cpu, "load": os.getloadavg()[0], "report_wall_s": r["wall_s"], "method_wall_s": r["method_wall_s"],
            "after.forget.rougeL": a["forget.rougeL"], "oracle.forget.rougeL": o["forget.rougeL"],
            "before.retain.rougeL": b["retain.rougeL"], "after.retain.rougeL": a["retain.rougeL"],
            "before.forget_quality": b["forget_quality"], "after.forget_quality": a["forget_quality"],
            "ok_rouge": a["forget.rougeL"] <= o["forget.rougeL"] + 0.1,
            "ok_retain": a["retain.rougeL"] >= 0.98 * b["retain.rougeL"],
            "ok_fq": a["forget_quality"] > b["forget_quality"], "ok_time": wall < 60}


def _verdict(cli: dict) -> str:
    failed = [k[3:] for k, v in cli.items() if k.startswith("ok_") and not v]  # ok_time → "time"
    return "yes" if not failed else "no: " + ", ".join(failed)


def tables(eco: dict, setup_s: float, clf: dict, quality: dict, unflagged: dict, flagged: dict, cli: list[dict],
           args) -> str:
    unseen = eco["unseen_fpr"]
    rows = [f"Machine: {machine()}.", "",
            "| setup | seconds |", "|---|---|",
            f"| whole `eco` run (classifier + probe + search) | {setup_s:.1f} |",
            f"| classifier (encoder load, features, {eco['cv_folds']}-fold CV, final head, probe) | {eco['classifier_s']:.1f} |",
            f"| strength search ({len(eco['search'])} points) | {eco['search_s']:.1f} |", "",
            "| classifier | value |", "|---|---|",
            f"| k-fold recall on forget prompts | {eco['classifier_recall']:.3f} |",
            f"| k-fold FPR on held-out retain + general prompts | {eco['classifier_fpr']:.4f} |",
            f"| FPR on unseen holdout / workshop-general prompts | {unseen.get('holdout', 0):.3f} / {unseen.get('general', 0):.3f} |",
            f"| CPU ms per new prompt, one at a time | {clf['lean']['single']:.1f} |",
            f"| CPU ms per new prompt, batches of 32 | {clf['lean']['batched']:.1f} |", "",
            f"Generation, one prompt at a time, {args.tokens} new tokens, CPU ms per prompt (best of {args.rounds} "
            f"rounds, mean of {args.prompts} prompts; cold: the guard classifies a new prompt; warm: its score is cached):", "",
            "| prompts | original | guarded, cold | guarded, warm | classifier | cold / (orig + clf) | warm / orig "
            "| same, wall clock |", "|---|---|---|---|---|---|---|---|"]
    for name, t in (("unflagged (retain)", unflagged), ("flagged (forget)", flagged)):
        ratio = t["guarded_cold"] / (t["original"] + t["classify"])
        ratio_wall = t["guarded_cold_wall"] / (t["original_wall"] + t["classify_wall"])
        rows.append(f"| {name} | {t['original']:.1f} | {t['guarded_cold']:.1f} | {t['guarded_warm']:.1f} | "
                    f"{t['classify']:.1f} | {ratio:.3f} | {t['guarded_warm'] / t['original']:.3f} | "
                    f"{ratio_wall:.3f} / {t['guarded_warm_wall'] / t['original_wall']:.3f} |")
    if cli:
        rows += ["", "Acceptance command (`python -m unlearning unlearn --method eco --model workshop --oracle "
                 "workshop-oracle --forget … --retain … --report r.json --out guard/`); CPU is user + sys of the "
                 "process, load the 1-minute load average of the machine after it:", "",
                 "| wall (s) | CPU (s) | load | method (s) | after / oracle forget.rougeL "
                 "| retain.rougeL before → after | forget_quality before → after | all criteria |",
                 "|---|---|---|---|---|---|---|---|"]
        rows += [f"| {c['wall_s']:.1f} | {c['cpu_s']:.1f} | {c['load']:.1f} | {c['method_wall_s']:.1f} | "
                 f"{c['after.forget.rougeL']:.3f} / {c['oracle.forget.rougeL']:.3f} | "
                 f"{c['before.retain.rougeL']:.3f} → {c['after.retain.rougeL']:.3f} | "
                 f"{c['before.forget_quality']:.2g} → {c['after.forget_quality']:.2g} | {_verdict(c)} |" for c in cli]
    return "\n".join(rows) + "\n\n" + path_table(clf, quality, len(novel_prompts(64)), 3)


def record(text: str, command: str) -> None:
    """Replace (or add) the ## ECO section of RESULTS.md; other sections are left alone."""
    from benchmarks.results import record as record_section

    record_section(f"`{command}` ({time.strftime('%Y-%m-%d')})\n\n{text}", SECTION)


def classifier_only(splits) -> None:
    """The classifier's two encoder paths alone: a classifier trained on the lean path, timed on both."""
    from unlearning.eco.features import DEFAULT_ENCODER, get_encoder

    encoder = get_encoder(DEFAULT_ENCODER)
    quality = classifier_quality(encoder, splits)
    from unlearning.eco.features import Featurizer
    from unlearning.eco.training import HeadSettings, fit_classifier, general_prompts

    clf, _ = fit_classifier(Featurizer(encoder, 4096), splits["forget"].prompts(),
                            splits["retain"].prompts() + general_prompts(), alpha=0.01, folds=5, hs=HeadSettings())
    print(f"Machine: {machine()}.\n")
    print(path_table(classifier_latency(clf, novel_prompts(64)), quality, 64, 3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=12, help="prompts per kind for the generation timings")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tokens", type=int, default=32, help="new tokens per generation")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: a shared small CPU)")
    p.add_argument("--cli", action="store_true", help="also time the acceptance unlearn command")
    p.add_argument("--record", action="store_true", help=f"write the tables into {RESULTS.name}")
    p.add_argument("--classifier", action="store_true", help="only the classifier on each encoder path (no --record)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from unlearning.data import load_file
    from unlearning.models import load_model

    splits = {n: load_file(KIT / f"{n}.jsonl") for n in ("forget", "retain", "holdout", "general")}
    if args.classifier:
        classifier_only(splits)
        return
    loaded, oracle = load_model("workshop", "cpu"), load_model("workshop-oracle", "cpu")
    unlearned, setup_s = setup(loaded, splits, oracle)
    guard, tok = unlearned.guard, loaded.tokenizer
    eco = unlearned.extra_report["eco"]
    clf = classifier_latency(guard.classifier, novel_prompts(64))
    quality = classifier_quality(guard.classifier.featurizer.encoder, splits)
    retain_q = splits["retain"].prompts()[: args.prompts]
    forget_q = splits["forget"].prompts()[: args.prompts]
    assert not any(guard.classifier.flags(retain_q)) and all(guard.classifier.flags(forget_q))
    unflagged = generation_latency(loaded.model, guard, tok, retain_q, args.tokens, args.rounds)
    flagged = generation_latency(loaded.model, guard, tok, forget_q, args.tokens, args.rounds)
    cli = [cli_acceptance()] if args.cli else []
    text = tables(eco, setup_s, clf, quality, unflagged, flagged, cli, args)
    print(text)
    if args.record:
        record(text, "python benchmarks/eco.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
