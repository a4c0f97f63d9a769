"""What each CLI command does, on top of the engine (cli.py only parses arguments).

Long work runs as a `Run` whose events drive a progress bar on stderr, so the CLI exercises
the same event stream the UI consumes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .data import Dataset, load_file
from .errors import UserError
from .models import load_model
from .pipeline import complete_splits
from .runs import Run, RunContext


def follow(work: Callable[[RunContext], Any], name: str) -> Any:
    """Run `work` in a background Run, draw its events as a progress bar, return its result."""
    from tqdm import tqdm

    run = Run(work, name).start()
    bar = tqdm(total=1000, desc=name, file=sys.stderr, leave=False, mininterval=0.5, disable=not sys.stderr.isatty(), bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}")
    try:
        for ev in run.events():
            if ev.kind == "progress" and ev.fraction is not None:
                bar.n = int(ev.fraction * 1000)
                bar.set_description_str(f"{name}: {ev.message}" if ev.message else name)
            elif ev.kind == "step" and ev.step and ev.total:
                bar.n = int(1000 * ev.step / ev.total)
                bar.set_postfix_str(" ".join(f"{k}={v:.3g}" for k, v in ev.values.items() if k != "lr"))
            elif ev.kind == "log":
                tqdm.write(ev.message, file=sys.stderr)
            bar.refresh()
    except KeyboardInterrupt:
        run.cancel()
        run.wait()
        raise
    finally:
        bar.close()
    run.wait()
    if run.state == "failed":
        if run.traceback:
            print(run.traceback, file=sys.stderr)
            raise SystemExit(1)
        raise UserError(run.error or f"{name} failed.")  # a failed run always has its error
    if run.state == "cancelled":
        raise UserError(f"{name} was cancelled.")
    return run.result


def load_splits(args) -> dict[str, Dataset]:
    """forget/retain from the user, holdout/general defaulting to the workshop kit's, and the
    held-out wordings of the probes when given. With --benchmark: the suite's splits from the
    Hub (files given as well replace the suite's), and its models unless --model / --oracle."""
    if getattr(args, "benchmark", None):
        return _benchmark_splits(args)
    if not (args.forget and args.retain):
        raise UserError("Give --forget and --retain files, or a --benchmark.")
    paraphrased = getattr(args, "paraphrased", None)
    return complete_splits(load_file(args.forget), load_file(args.retain),
                           load_file(args.holdout) if args.holdout else None,
                           load_file(args.general) if args.general else None,
                           load_file(paraphrased) if paraphrased else None)


def _benchmark_splits(args) -> dict[str, Dataset]:
    from . import suites

    bench = suites.load(args.benchmark)
    args.model = args.model or bench.model
    args.oracle = args.oracle or bench.oracle
    given = {role: load_file(path) for role in ("forget", "retain", "holdout", "general", "paraphrased")
             if (path := getattr(args, role, None))}
    mine = {**bench.splits, **given}
    splits = complete_splits(mine["forget"], mine["retain"], mine.get("holdout"), mine.get("general"),
                             given.get("paraphrased", bench.paraphrased))
    return {**splits, **bench.extra}


def leaderboard_note(report: dict, args) -> None:
    """With --benchmark: the report's numbers under the leaderboard's column names, as its own block."""
    if getattr(args, "benchmark", None):
        from .suites import leaderboard

        report["leaderboard"] = {"benchmark": args.benchmark, **leaderboard(report, args.benchmark)}


def eval_cache(args):
    """The --cache folder as an EvalCache (checked before the slow model load), or None."""
    from .evaluation.cache import EvalCache

    return EvalCache(args.cache) if args.cache else None


def _cache_note(cache) -> None:
    if cache is not None:
        print(f"evaluation cache {cache.folder}: {cache.hits} of {cache.hits + cache.misses} split evaluations reused"
              + (f" (could not write: {cache.write_error})" if cache.write_error else ""), file=sys.stderr)


def write_report(report: dict, path: str | None) -> None:
    if not path:
        return
    try:
        Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as e:
        raise UserError(f"The report could not be written to {path} ({e.strerror}).") from e
    print(f"report written to {path}", file=sys.stderr)


def unlearn(args) -> None:
    """Unlearn, report (before / after / oracle, cost, history) and save the artifact. Under
    `accelerate launch` every process trains its share; only the main one does the rest."""
    from .lora import distributed
    from .methods import get_method
    from .pipeline import unlearn_job
    from .settings import from_flags

    method = get_method(args.method)
    cfg = from_flags(method.Config, args)
    splits = load_splits(args)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out} is a file, not a folder.")
    cache = eval_cache(args)
    dp = distributed.start(args.device)  # None unless launched with more than one process
    if dp is not None:
        distributed.check_job(method, args.device_map)
    loaded = load_model(args.model, args.device, args.trust_remote_code, args.device_map, fisher=method.fisher_pass)
    if dp is not None and not dp.main:
        follow(distributed.worker_job(dp, method, cfg, loaded, splits), f"unlearn ({method.name}, process {dp.rank})")
        return
    oracle = load_model(args.oracle, args.device, args.trust_remote_code, args.device_map) if args.oracle else None
    result = follow(unlearn_job(method, cfg, loaded, splits, oracle, evaluate_before=not args.no_before, cache=cache,
                                group=dp),
                    f"unlearn ({method.name})")
    _cache_note(cache)
    report = result["report"]
    report["world_size"] = dp.world if dp is not None else 1
    if out is not None:
        result["unlearned"].save(out)
        report["artifact"] = str(out)
        print(f"artifact saved to {out}", file=sys.stderr)
    print_metrics(report)
    leaderboard_note(report, args)
    print(f"{method.name}: {report['steps']} steps, {report['wall_s']:.1f}s total ({report['method_wall_s']:.1f}s unlearning), "
          f"peak {report['peak_mem_mb']:.0f} MB, {report['trainable_params']} trainable parameters")
    write_report(report, args.report)


def evaluate_command(args) -> None:
    from .artifacts import read_manifest
    from .attach import load_unlearned
    from .pipeline import eval_job

    splits = load_splits(args)
    if args.unlearned:
        read_manifest(args.unlearned)  # a bad folder is reported before the slow model load
    cache = eval_cache(args)
    loaded = load_model(args.model, args.device, args.trust_remote_code, args.device_map)
    oracle = load_model(args.oracle, args.device, args.trust_remote_code, args.device_map) if args.oracle else None
    unlearned = load_unlearned(loaded, args.unlearned) if args.unlearned else None
    report = follow(eval_job(loaded, splits, oracle, unlearned, cache), "evaluating")
    _cache_note(cache)
    leaderboard_note(report, args)
    print_metrics(report)
    write_report(report, args.report)


def attack(args) -> None:
    """Run the stress tests on an artifact; print each attack's summary and write the report."""
    from .artifacts import read_manifest
    from .attach import load_unlearned
    from .attacks import AttackSettings, attack_job, paraphrase_sets
    from .settings import from_flags

    cfg = from_flags(AttackSettings, args)
    cfg.names()  # an unknown attack is refused before the slow model load
    splits = {"forget": load_file(args.forget), "retain": load_file(args.retain)}
    paraphrased = paraphrase_sets(args.forget, args.retain, args.paraphrased)
    read_manifest(args.unlearned)
    loaded = load_model(args.model, args.device, args.trust_remote_code, args.device_map)
    oracle = load_model(args.oracle, args.device, args.trust_remote_code, args.device_map) if args.oracle else None
    unlearned = load_unlearned(loaded, args.unlearned)
    report = follow(attack_job(loaded, unlearned, splits, oracle, cfg, paraphrased), f"attack ({unlearned.method})")
    report["artifact"] = str(args.unlearned)
    robustness = report["robustness"]
    for name in cfg.names():
        print(f"{name:10s} {robustness[name]['wall_s']:6.1f}s  {robustness[name]['summary']}")
    if "note" in robustness:
        print(robustness["note"])
    print(f"{robustness['sample']['note']}; {report['wall_s']:.1f}s in all, peak {report['peak_mem_mb']:.0f} MB")
    write_report(report, args.report)


def print_metrics(report: dict) -> None:
    """A compact table on stdout: metric, before, after, oracle."""
    from .evaluation.metrics import METRIC_INFO

    cols = [c for c in ("before", "after", "oracle") if report.get(c)]
    keys = sorted(set().union(*(report[c].keys() for c in cols)))
    print(f"{'metric':28s}" + "".join(f"{c:>10s}" for c in cols) + "   better")
    for k in keys:
        arrow = METRIC_INFO.get(k.split(".")[-1], ("", ""))[0]
        row = "".join(f"{report[c].get(k, float('nan')):10.4f}" for c in cols)
        print(f"{k:28s}{row}   {arrow}")


def teach(args) -> None:
    """Fine-tune --model on --data (replaying what it knew) and save the taught model to --out."""
    from .kit.teach import TeachSettings
    from .kit.teach import teach as teach_model
    from .kit.workshop import replay_data
    from .settings import from_flags

    cfg = from_flags(TeachSettings, args)
    data = [load_file(f) for f in args.data]
    replay = [load_file(f) for f in args.replay] if args.replay is not None else replay_data(args.model)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out} is a file, not a folder.")
    loaded = load_model(args.model, args.device, args.trust_remote_code, args.device_map)

    def work(ctx: RunContext):
        on_step = lambda s, total, r: ctx.step("train", s, total, {"loss": r["loss"], "lr": r["lr"]})
        on_epoch = lambda e: ctx.log(f"epoch {e['epoch']}/{e['epochs']}: {e['elapsed_s']:.0f}s, "
                                     f"ROUGE-L recall of the new data {e['recall']:.3f} (a sample of {cfg.probe_size})")
        return teach_model(loaded.model, loaded.tokenizer, data, replay, cfg, on_step, on_epoch, ctx.check_cancel)

    history = follow(work, "teaching")
    out.mkdir(parents=True, exist_ok=True)
    loaded.model.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    print(f"taught {sum(len(d) for d in data)} examples ({sum(len(d) for d in replay)} replayed from earlier data) "
          f"in {len(history)} steps, {history[-1]['elapsed_s']:.0f}s; final loss {history[-1]['loss']:.4f}; saved to {out}")


def chat(args) -> None:
    """Print the original answer, then (with --unlearned) the unlearned one."""
    from .artifacts import read_manifest
    from .attach import load_unlearned
    from .service.chat import check_prompt

    check_prompt(args.prompt)
    if args.unlearned:
        read_manifest(args.unlearned)  # a bad folder is reported before the slow model load
    loaded = load_model(args.model, args.device, args.trust_remote_code, args.device_map)
    if not args.unlearned:
        print("original:", _reply(loaded.model, loaded, args))
        return
    unlearned = load_unlearned(loaded, args.unlearned)
    flag = unlearned.flag(args.prompt)
    if flag is not None:
        print(f"classifier: {'FLAGGED' if flag['flagged'] else 'not flagged'} (score {flag['score']:.3f}, threshold {flag['threshold']:.3f})")
    for which in ("original", "unlearned"):
        with unlearned.view(which) as model:
            print(f"{which}:", _reply(model, loaded, args))


def _reply(model, loaded, args) -> str:
    """The whole reply, decoded as the app's chat decodes it (generate.reply_texts)."""
    from .generate import prompt_ids, reply_texts

    ids = prompt_ids(loaded.tokenizer, args.prompt)
    text = ""
    for text in reply_texts(model, loaded.tokenizer, ids, args.max_new_tokens, loaded.device):
        pass
    return text
