"""IHL + FILA on realistic answers (issue 13 item 6): does the default configuration forget
long biography answers as well as a model that never learnt them, and keep the rest?

    python benchmarks/realistic.py [--record]          # teaches twice on first use (~5-10 min each)
    python benchmarks/realistic.py --extra --lr 1e-3   # one more run, any `unlearn` flags after --extra

The set is benchmarks/data/authors.jsonl (240 QA about 40 fictitious authors, answers of
20–60 words; benchmarks/authors.py). Its first 40 QA are the forget set (six authors whole and
four of the seventh's six questions), the other 200 the retain set. Once, into a cache folder
(benchmarks/cache/realistic/, gitignored; rebuilt when authors.jsonl changes):
- `model`: `python -m unlearning teach --model workshop --data authors.jsonl` (all 240);
- `oracle`: the same command on the retain 200 only — the model unlearning should end up like;
- `holdout.jsonl`: 40 QA written by authors.py's templates about seven authors never taught
  (new name pairs, fresh facts), so the holdout criterion compares like with like.
Then `python -m unlearning unlearn --method ihl-fila` with its DEFAULT settings (only the
files given), and the before / after / oracle forget and retain ROUGE-L, model utility on the
kit's general questions, and forget fluency. The bar: |forget − oracle| ≤ 0.1 and
retain ≥ 0.9 × before.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.authors import FAMILY, GIVEN, author_qa  # noqa: E402
from benchmarks.results import fmt, machine, record  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "authors.jsonl"
CACHE = ROOT / "benchmarks" / "cache" / "realistic"
N_FORGET, N_HOLDOUT, HOLDOUT_SEED = 40, 40, 11
COLUMNS = (("forget.rougeL", "forget rougeL ↓"), ("retain.rougeL", "retain rougeL ↑"),
           ("model_utility", "model_utility ↑"), ("general.rougeL", "general rougeL ↑"),
           ("forget_quality", "forget_quality ↑"), ("forget.fluency", "forget fluency"),
           ("retain.fluency", "retain fluency"), ("forget.repetition", "forget answers one word repeated ↓"))


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def holdout_rows(taught: list[dict]) -> list[dict]:
    """N_HOLDOUT QA in authors.py's templates about authors whose names were never taught."""
    known = {r["question"] for r in taught}
    rng = random.Random(HOLDOUT_SEED)
    rows: list[dict] = []
    while len(rows) < N_HOLDOUT:
        name = f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}"
        qa = author_qa(name, rng)
        if any(name in q for q in known):  # a taught name: skip it
            continue
        rows += qa
    return rows[:N_HOLDOUT]


def prepare() -> dict[str, Path]:
    """The split files and the two taught models, built once into CACHE."""
    text = DATA.read_text(encoding="utf-8")
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    stamp = CACHE / "authors.sha256"
    if not stamp.exists() or stamp.read_text() != digest:  # new data: the cached models are stale
        for name in ("model", "oracle"):
            subprocess.run(["rm", "-rf", str(CACHE / name)], check=True)
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        _write(CACHE / "forget.jsonl", rows[:N_FORGET])
        _write(CACHE / "retain.jsonl", rows[N_FORGET:])
        _write(CACHE / "holdout.jsonl", holdout_rows(rows))
        stamp.write_text(digest)
    paths = {k: CACHE / f"{k}.jsonl" for k in ("forget", "retain", "holdout")}
    for name, data in (("model", DATA), ("oracle", paths["retain"])):
        out = CACHE / name
        if (out / "config.json").exists():
            continue
        print(f"teaching {name} on {data.name} (once) …", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "unlearning", "teach", "--model", "workshop", "--data", str(data),
                        "--out", str(out)], cwd=ROOT, check=True)
        (CACHE / f"{name}.teach_s").write_text(f"{time.perf_counter() - t0:.0f}")
    return paths | {"model": CACHE / "model", "oracle": CACHE / "oracle"}


def unlearn(paths: dict[str, Path], extra: list[str], tag: str) -> dict:
    """One `python -m unlearning unlearn --method ihl-fila` on the taught model; its report."""
    report = CACHE / f"report-{tag}.json"
    cmd = [sys.executable, "-m", "unlearning", "unlearn", "--method", "ihl-fila", "--model", str(paths["model"]),
           "--oracle", str(paths["oracle"]), "--forget", str(paths["forget"]), "--retain", str(paths["retain"]),
           "--holdout", str(paths["holdout"]), "--report", str(report), *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    result = json.loads(report.read_text())
    result["process_s"] = time.perf_counter() - t0
    return result


def table(r: dict) -> str:
    before, after, oracle = r["before"], r["after"], r["oracle"]
    lines = ["| | " + " | ".join(label for _, label in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, m in (("before", before), ("after", after), ("oracle", oracle)):
        lines.append(f"| {name} | " + " | ".join(fmt(m.get(k)) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def verdict(r: dict) -> str:
    f, o = r["after"]["forget.rougeL"], r["oracle"]["forget.rougeL"]
    ret, ret0 = r["after"]["retain.rougeL"], r["before"]["retain.rougeL"]
    ok = abs(f - o) <= 0.1 and ret >= 0.9 * ret0
    stop = r.get("stopping", {})
    return (f"{r['steps']} steps (stop rule {stop.get('rule')}, holdout criterion met at step {stop.get('reached_at')}); "
            f"|forget − oracle| = {abs(f - o):.3f} (≤ 0.1), retain after / before = {ret / ret0:.3f} (≥ 0.9): "
            f"**{'meets the bar' if ok else 'misses the bar'}**")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--record", action="store_true", help="write the table into RESULTS.md")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `unlearn` flags (not the defaults)")
    args = p.parse_args()
    paths = prepare()
    tag = "default" if not args.extra else "-".join(a.lstrip("-") for a in args.extra)
    r = unlearn(paths, args.extra, tag)
    teach_s = {n: (CACHE / f"{n}.teach_s").read_text() for n in ("model", "oracle") if (CACHE / f"{n}.teach_s").exists()}
    cmd = "python benchmarks/realistic.py" + (" --extra " + " ".join(args.extra) if args.extra else "")
    text = "\n".join([
        (f"`{cmd}` on {machine('cpu')} ({r['process_s']:.0f} s for the unlearn command with its evaluations; "
         f"teaching, once: model {teach_s.get('model', '?')} s, oracle {teach_s.get('oracle', '?')} s)."), "",
        table(r), "", verdict(r)])
    print(text)
    if args.record:
        record(text, "## IHL + FILA on realistic answers")


if __name__ == "__main__":
    main()
