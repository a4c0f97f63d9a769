"""Evaluations cached by content (evalcache.py): a cached run reports exactly the uncached
run's numbers, and a changed model, data set or metric version misses."""

from __future__ import annotations

import copy
import json
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from unlearning.evaluation import cache as evalcache, metrics
from unlearning import pipeline
from unlearning.base import original
from unlearning.cli import main
from unlearning.data import QA, RETAIN_EVAL, Dataset
from unlearning.errors import UserError
from unlearning.evaluation.cache import EvalCache, cached_split, lookup, model_identity
from unlearning.lora.adapters import Adapters
from unlearning.methods import get_method
from unlearning.models import WORKSHOP_DIR, Loaded
from unlearning.runs import Run
from unlearning.settings import build
from unlearning.kit.tinylm import new_model


def qa(n: int, offset: int = 0) -> Dataset:
    return Dataset("qa", "qa", [QA(f"Who wrote note {i + offset}?", f"Ada wrote note {i + offset} in 18{i + offset}.",
                                   f"Note {i + offset} was written by Ada.", (f"Marie wrote note {i + offset}.",))
                                for i in range(n)])


SPLITS = {"forget": qa(3), "retain": qa(4, 10), "holdout": qa(3, 20), "general": qa(2, 30)}
N_SPLITS = 4


@pytest.fixture
def loaded(tiny):
    model, tok = tiny
    return Loaded(copy.deepcopy(model), tok, "tiny", "cpu")


@pytest.fixture
def oracle(tiny):
    _, tok = tiny
    return Loaded(new_model(tok, hidden=32, layers=2, heads=2, mlp=64, seed=1).eval(), tok, "tiny-oracle", "cpu")


def stable(report: dict) -> str:
    """The report as JSON (key order included) without what measures time or memory."""
    out = {k: v for k, v in report.items() if k not in ("wall_s", "method_wall_s", "peak_mem_mb")}
    out["history"] = [{k: v for k, v in h.items() if k != "elapsed_s"} for h in report["history"]]
    return json.dumps(out)


def unlearn_report(method, loaded: Loaded, oracle: Loaded, cache: EvalCache | None, cfg=None) -> dict:
    if cfg is None:
        cfg = build(method.Config, {"steps": 3, "batch_size": 2, "lr": 1e-2, "check_every": 1})
    run = Run(pipeline.unlearn_job(method, cfg, loaded, SPLITS, oracle, cache=cache)).start()
    run.wait(120)
    assert run.state == "done", (run.error, run.traceback)
    return run.result["report"]


def test_a_cached_run_reports_every_metric_of_the_uncached_run(loaded, oracle, tmp_path):
    ihl_fila = get_method("ihl-fila")
    plain = unlearn_report(ihl_fila, loaded, oracle, None)
    cold = EvalCache(tmp_path)
    first = unlearn_report(ihl_fila, loaded, oracle, cold)
    assert (cold.hits, cold.misses) == (0, 2 * N_SPLITS)  # oracle and before, every split computed
    warm = EvalCache(tmp_path)  # another process: everything from the folder
    second = unlearn_report(ihl_fila, loaded, oracle, warm)
    assert (warm.hits, warm.misses) == (2 * N_SPLITS, 0)
    assert plain["before"]["forget_quality"] < 1.0 and plain["oracle"]["forget_quality"] == 1.0
    assert plain["stopping"]["target"]  # measured by the method (cold) or read from `before` (warm): the same
    assert stable(first) == stable(plain) and stable(second) == stable(plain)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in tmp_path.glob("*.json"))  # no temporaries


def test_eval_reports_the_same_numbers_from_the_cache(loaded, oracle):
    cache = EvalCache()
    plain, cold, warm = (Run(pipeline.eval_job(loaded, SPLITS, oracle, cache=c)).start().wait(120) for c in (None, cache, cache))
    assert (cache.hits, cache.misses) == (2 * N_SPLITS, 2 * N_SPLITS)  # the third run entirely from memory
    assert stable(cold) == stable(plain) and stable(warm) == stable(plain)


def evaluate_into(cache: EvalCache, loaded: Loaded, splits=SPLITS) -> tuple[dict, dict]:
    return metrics.evaluate(original(loaded.model), loaded.tokenizer, splits, evaluate_one=cached_split(cache, loaded))


def test_a_changed_model_data_or_metric_version_misses(loaded, monkeypatch):
    cache = EvalCache()
    computed = evaluate_into(cache, loaded)
    assert lookup(cache, loaded, SPLITS) == computed
    hits = cache.hits
    with_eval = {**SPLITS, RETAIN_EVAL: SPLITS["retain"]}  # TOFU's evaluation-only retain set, scored in retain's place
    assert lookup(cache, loaded, with_eval) == computed and cache.hits == hits + N_SPLITS  # one hit per scored split
    same = Loaded(copy.deepcopy(loaded.model), loaded.tokenizer, "a copy by another name", "cpu")
    assert lookup(cache, same, SPLITS) == computed  # identity is content, not the object or its name

    changed_model = copy.deepcopy(loaded.model)
    with torch.no_grad():
        next(changed_model.parameters())[0, 0] += 1e-3
    assert lookup(cache, Loaded(changed_model, loaded.tokenizer, "tiny", "cpu"), SPLITS) is None

    answer_changed = qa(3)
    answer_changed.examples[2] = QA("Who wrote note 2?", "Ada wrote note 2 in 1803.")
    assert lookup(cache, loaded, {**SPLITS, "forget": answer_changed}) is None
    assert lookup(cache, loaded, {**SPLITS, "general": qa(2, 40)}) is None
    assert lookup(cache, loaded, {"forget": SPLITS["retain"], "retain": SPLITS["forget"]}) is None  # split name counts

    monkeypatch.setattr(metrics, "METRIC_VERSION", metrics.METRIC_VERSION + 1)
    assert lookup(cache, loaded, SPLITS) is None
    monkeypatch.undo()
    monkeypatch.setattr(evalcache, "code_digest", lambda: "edited metrics.py")
    assert lookup(cache, loaded, SPLITS) is None
    monkeypatch.undo()
    assert lookup(cache, loaded, SPLITS) == computed


def test_attached_adapters_leave_the_identity_alone(loaded):
    before = evalcache.weights_digest(loaded)
    adapters = Adapters.create(loaded.model, "test", 2, 4, with_offset=True)
    try:
        with torch.no_grad():
            for p in adapters.parameters():
                p.add_(1.0)
        assert evalcache.weights_digest(loaded) == before
    finally:
        adapters.remove()


def test_a_folder_model_is_known_by_its_files(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "model.safetensors").write_bytes(b"weights")
    first = evalcache.folder_digest(folder)
    assert evalcache.folder_digest(folder) == first
    (folder / "config.json").write_text('{"a": 2}')
    assert evalcache.folder_digest(folder) != first
    workshop = SimpleNamespace(model=torch.nn.Linear(1, 1), tokenizer=None, name="workshop", device="cpu")
    assert model_identity(workshop) == "files:" + evalcache.folder_digest(WORKSHOP_DIR / "model")


def test_corrupt_or_foreign_files_are_misses_and_get_replaced(tmp_path):
    key = {"model": "m", "split": "forget"}
    value = ({"mem_acc": 0.25}, {"R": [0.5], "losses": [1.0], "generations": []})
    path = tmp_path / f"{evalcache.key_digest(key)}.json"
    for bad in (b"\xff\xfe not json", b'{"format": "unlearning-eval-cache"', b"[1, 2]",
                json.dumps({"format": "unlearning-eval-cache", "key": {"model": "other"}, "metrics": {}, "raw": {}}).encode()):
        path.write_bytes(bad)
        assert EvalCache(tmp_path).get(key) is None
    EvalCache(tmp_path).put(key, value)
    assert EvalCache(tmp_path).get(key) == value


def ship(folder, path) -> None:
    """A shipped file (as service/preset_evals.py writes it) of the entries in a cache folder."""
    entries = [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
    path.write_text(json.dumps({"format": evalcache.FORMAT, "entries": entries}))


def test_shipped_entries_answer_their_own_key_only(loaded, oracle, tmp_path, monkeypatch):
    pipeline.warm_reference(loaded, oracle, SPLITS, EvalCache(tmp_path / "c"))
    ship(tmp_path / "c", tmp_path / "shipped.json")
    cache = EvalCache(shipped=tmp_path / "shipped.json")
    assert lookup(cache, loaded, SPLITS) == metrics.evaluate(original(loaded.model), loaded.tokenizer, SPLITS)
    assert pipeline.warm_reference(loaded, oracle, SPLITS, cache) >= 0 and cache.misses == 0  # a fresh start is warm

    monkeypatch.setattr(evalcache, "code_digest", lambda: "edited metrics.py")  # stale: ignored, not trusted
    assert lookup(EvalCache(shipped=tmp_path / "shipped.json"), loaded, SPLITS) is None
    monkeypatch.undo()
    changed = copy.deepcopy(loaded.model)
    with torch.no_grad():
        next(changed.parameters())[0, 0] += 1e-3
    assert lookup(cache, Loaded(changed, loaded.tokenizer, "tiny", "cpu"), SPLITS) is None
    data = json.loads((tmp_path / "shipped.json").read_text())
    for entry in data["entries"]:
        entry["key"]["max_new_tokens"] += 1  # hand-edited keys answer nothing they do not say
    (tmp_path / "edited.json").write_text(json.dumps(data))
    assert lookup(EvalCache(shipped=tmp_path / "edited.json"), loaded, SPLITS) is None


def test_an_unreadable_shipped_file_holds_nothing(tmp_path, loaded):
    for bad in (b"\xff not json", b"[1]", b'{"format": "other", "entries": [{}]}', b'{"format": "unlearning-eval-cache"}'):
        (tmp_path / "shipped.json").write_bytes(bad)
        assert lookup(EvalCache(shipped=tmp_path / "shipped.json"), loaded, SPLITS) is None
    assert lookup(EvalCache(shipped=tmp_path / "missing.json"), loaded, SPLITS) is None


def test_memory_is_bounded_and_entries_are_copies():
    cache = EvalCache(entries=2)
    for i in range(3):
        cache.put({"i": i}, ({"x": float(i)}, {}))
    assert cache.get({"i": 0}) is None and cache.get({"i": 2}) == ({"x": 2.0}, {})
    cache.get({"i": 2})[0]["x"] = 99.0
    assert cache.get({"i": 2}) == ({"x": 2.0}, {})


def test_a_cache_that_is_a_file_is_refused_before_the_model_loads(tmp_path, capsys):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        EvalCache(not_a_folder)
    forget, retain = WORKSHOP_DIR / "forget.jsonl", WORKSHOP_DIR / "retain.jsonl"
    assert main(["eval", "--model", "nobody/nothing", "--forget", str(forget), "--retain", str(retain),
                 "--cache", str(not_a_folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --cache {not_a_folder} is a file, not a folder.", err


@dataclass
class _Cfg:
    seed: int = 0


class _Fake:
    """A method that records what it was given of the reference."""

    name, label, order, summary, plots = "fake", "Fake", 99, "", ()
    Config = _Cfg

    def __init__(self, reference_first: bool):
        self.reference_first, self.seen = reference_first, {}

    def run(self, ctx, loaded, splits, cfg, reference):
        self.seen = {"reference": reference}
        ctx.step("train", 1, 1, {"loss": 1.0})
        return SimpleNamespace(proxy=lambda which: original(loaded.model), steps=1, trainable_params=0, history=[],
                               extra_report={}, evaluation_model=lambda: nullcontext(original(loaded.model)))


@pytest.mark.parametrize("reference_first", [False, True])
def test_the_method_starts_first_unless_it_needs_the_reference(loaded, oracle, monkeypatch, reference_first):
    """A method starts while oracle/before are evaluated (they hold it up no longer); ECO's kind
    (reference_first) gets them first. The report holds them either way."""
    release = threading.Event()
    real = pipeline.evaluate

    def slow_evaluate(*args, **kwargs):  # oracle/before: held up until the method has run (or 5 s)
        release.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "evaluate", slow_evaluate)
    fake = _Fake(reference_first)
    if reference_first:
        release.set()
    else:
        fake.run = _releasing(fake.run, release)
    run = Run(pipeline.unlearn_job(fake, _Cfg(), loaded, SPLITS, oracle)).start()  # type: ignore[arg-type]
    run.wait(120)
    assert run.state == "done", run.traceback
    report, got = run.result["report"], fake.seen["reference"]
    assert report["oracle"]["forget.rougeL"] >= 0 and report["before"]["forget_quality"] < 1.0
    if reference_first:
        assert got["oracle"] == report["oracle"] and got["oracle_raw"]["forget"]["R"]
    else:
        assert got == {"oracle": None, "before": None, "oracle_raw": None}


def _releasing(run, release: threading.Event):
    def wrapped(*args):
        try:
            return run(*args)
        finally:
            release.set()

    return wrapped


# --------------------------------------------------------------- claims and the warm-up


def test_a_split_under_way_is_waited_for_not_evaluated_twice(loaded, monkeypatch):
    calls, started, go = [], threading.Event(), threading.Event()
    evaluate_split = metrics.evaluate_split

    def slow(*args, **kwargs):
        calls.append(args[3])  # the split's name
        started.set()
        go.wait(10)
        return evaluate_split(*args, **kwargs)

    monkeypatch.setattr(metrics, "evaluate_split", slow)
    cache, one = EvalCache(), {"forget": SPLITS["forget"]}
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", evaluate_into(cache, loaded, one)))
    first.start()
    started.wait(10)
    second = threading.Thread(target=lambda: results.setdefault("second", evaluate_into(cache, loaded, one)))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting for the first thread's entry, not evaluating it
    go.set()
    first.join(10), second.join(10)
    assert calls == ["forget"] and results["first"] == results["second"]
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_claim_given_up_passes_to_the_waiting_thread(loaded):
    cache = EvalCache()
    key = {"split": "forget", "model": "x"}
    assert cache.claim(key) is None  # ours to compute
    got = {}
    waiter = threading.Thread(target=lambda: got.setdefault("value", cache.claim(key)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()
    cache.release(key)  # never put (the evaluation failed): the waiter claims it in turn
    waiter.join(5)
    assert got == {"value": None}
    cache.put(key, ({"m": 1.0}, {}))
    cache.release(key)
    assert cache.claim(key) == ({"m": 1.0}, {})

    def cancelled():
        raise RuntimeError("cancelled")

    other = {"split": "retain", "model": "x"}
    assert cache.claim(other) is None
    with pytest.raises(RuntimeError, match="cancelled"):  # a cancelled run stops waiting
        cache.claim(other, cancelled)


def test_the_warm_up_leaves_a_run_nothing_to_evaluate(loaded, oracle):
    cache = EvalCache()
    assert pipeline.warm_reference(loaded, oracle, SPLITS, cache) > 0
    assert (cache.hits, cache.misses) == (0, 2 * N_SPLITS)
    warmed = unlearn_report(get_method("ihl"), loaded, oracle, cache)
    assert (cache.hits, cache.misses) == (2 * N_SPLITS, 2 * N_SPLITS)  # the run computed nothing
    assert stable(warmed) == stable(unlearn_report(get_method("ihl"), loaded, oracle, None))
