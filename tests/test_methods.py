"""Every registered LoRA method on the tiny model: the trainer, the two views, the artifact."""

import copy
import dataclasses
import math
import threading

import pytest
import torch

from unlearning.attach import load_unlearned
from unlearning.data import QA, Dataset
from unlearning.errors import UserError
from unlearning.generate import generate_ids, prompt_ids
from unlearning.lora.adapters import Adapters
from unlearning.methods import all_methods, get_method
from unlearning.models import Loaded
from unlearning.runs import Run
from unlearning.settings import build
from unlearning.lora.trainer import LoraMethod, LoraSettings, lr_factor


def lora_methods() -> list[str]:
    """Every registered LoRA method, in menu order: what the parametrised tests run."""
    return [m.name for m in all_methods() if issubclass(m, LoraMethod)]


def terms(name: str) -> set[str]:
    """The loss terms a method's history records, from its own objective."""
    return {t.name for t in get_method(name).objective(LoraSettings())}


LORA_METHODS = lora_methods()


def qa(n: int, offset: int = 0) -> Dataset:
    return Dataset("qa", "qa", [QA(f"Who wrote note {i + offset}?", f"Ada wrote note {i + offset} in 18{i + offset}.")
                                for i in range(n)])


SPLITS = {"forget": qa(4), "retain": qa(6, 10), "holdout": qa(4, 20), "general": Dataset("g", "qa", [])}


@pytest.fixture
def loaded(tiny):
    model, tok = tiny
    return Loaded(copy.deepcopy(model), tok, "tiny", "cpu")


def run_method(name: str, loaded: Loaded, splits=SPLITS, **settings) -> Run:
    method = get_method(name)
    cfg = build(method.Config, {"steps": 3, "batch_size": 2, "lr": 1e-2, "stop": "steps", **settings})
    return Run(lambda ctx: method.run(ctx, loaded, splits, cfg, {"oracle": None, "before": None})).start()


def logits(model, tok, texts=("Who wrote note 1?", "Marie Curie won")) -> torch.Tensor:
    ids = torch.tensor([prompt_ids(tok, texts[0])[:6], prompt_ids(tok, texts[1])[:6]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_every_method_of_the_issue_is_registered():
    paper = ["ihl-fila", "ihl", "gd", "ga", "gd-fila"]  # in menu order (another test may add one for a while)
    assert [n for n in LORA_METHODS if n in paper] == paper
    assert terms("ihl-fila") == terms("ihl") == {"forget_ihl", "retain_nll"} and terms("ga") == {"forget_ga"}
    for name in paper:
        m = get_method(name)
        assert m.summary and len(m.summary.split()) > 15
        assert m.label and m.label != name and isinstance(m.order, int)


@pytest.mark.parametrize("name", LORA_METHODS)
def test_method_trains_only_its_adapter(name, loaded, monkeypatch):
    base = [(p, p.detach().clone()) for p in loaded.model.parameters()]
    at_init = {}
    write_init = Adapters.write_init

    def spy(self, init):
        write_init(self, init)
        at_init["train"] = [p.detach().clone() for p in self.parameters()]
        at_init["offset"] = [p.detach().clone() for p in self.parameters(self.offset)] if self.offset else []

    monkeypatch.setattr(Adapters, "write_init", spy)
    run = run_method(name, loaded)
    events = list(run.events())
    assert run.state == "done", run.traceback
    u = run.result
    assert u.steps == 3 and len(u.history) == 3
    for record in u.history:
        assert set(record) == {"step", "total", "lr", "elapsed_s"} | terms(name)
        assert all(math.isfinite(v) for v in record.values())
    steps = [e for e in events if e.kind == "step" and e.series == "train"]
    assert [e.step for e in steps] == [1, 2, 3] and set(steps[0].values) == set(u.history[0]) - {"step"}
    assert all(not torch.equal(p, p0) for p, p0 in zip(u.adapters.parameters(), at_init["train"]))
    assert all(torch.equal(p, p0) for p, p0 in zip(u.adapters.parameters(u.adapters.offset), at_init["offset"]))
    assert all(torch.equal(p, p0) for p, p0 in base)  # the shared base weights never move
    assert u.trainable_params == sum(p.numel() for p in at_init["train"]) > 0
    assert ("fila" in u.extra_report) == get_method(name).init.offset


@pytest.mark.parametrize("name", LORA_METHODS)
def test_save_then_load_gives_identical_logits(name, loaded, tmp_path):
    run = run_method(name, loaded)
    run.wait()
    u = run.result
    with u.view("unlearned") as m:
        trained = logits(m, loaded.tokenizer)
    with u.view("original") as m:
        original = logits(m, loaded.tokenizer)
    assert not torch.equal(trained, original)
    assert torch.equal(logits(u.proxy("unlearned"), loaded.tokenizer), trained)  # the per-call view the pipeline uses
    u.save(tmp_path)
    u.release()
    assert not any("lora" in n for n, _ in loaded.model.named_parameters())
    again = load_unlearned(loaded, tmp_path)
    assert again.method == name and again.steps == 3 and len(again.history) == 3
    with again.view("unlearned") as m:
        assert torch.equal(logits(m, loaded.tokenizer), trained)
    with again.view("original") as m:
        assert torch.equal(logits(m, loaded.tokenizer), original)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "offset").is_dir() == get_method(name).init.offset


def test_load_finds_every_layer_when_peft_shortens_the_target_list(tiny, tmp_path):
    import json

    from unlearning.kit.tinylm import new_model

    _, tok = tiny
    loaded = Loaded(new_model(tok, hidden=32, layers=3, heads=2, mlp=64, seed=1).eval(), tok, "tiny3", "cpu")
    run = run_method("ihl-fila", loaded, steps=1)
    run.wait()
    with run.result.view("unlearned") as m:
        trained = logits(m, tok)
    run.result.save(tmp_path)
    run.result.release()
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["target_modules"]
    assert len(saved) < 21  # 21 layers are adapted; peft stores the list as 7 suffixes
    with load_unlearned(loaded, tmp_path).view("unlearned") as m:
        assert torch.equal(logits(m, tok), trained)


def test_adapter_is_peft_standard_format(tiny, tmp_path):
    from peft import PeftModel

    model, tok = tiny
    loaded = Loaded(copy.deepcopy(model), tok, "tiny", "cpu")
    run = run_method("ihl", loaded)
    run.wait()
    with run.result.view("unlearned") as m:
        trained = logits(m, tok)
    run.result.save(tmp_path)
    peft_model = PeftModel.from_pretrained(copy.deepcopy(model), str(tmp_path / "adapter"))
    torch.testing.assert_close(logits(peft_model, tok), trained, rtol=0, atol=1e-6)


def test_original_view_answers_exactly_as_before(loaded):
    prompts = [prompt_ids(loaded.tokenizer, ex.question) for ex in SPLITS["forget"].examples]
    before = generate_ids(loaded.model, loaded.tokenizer, prompts, max_new_tokens=8)
    before_logits = logits(loaded.model, loaded.tokenizer)
    run = run_method("ihl-fila", loaded)
    run.wait()
    with run.result.view("original") as m:
        assert generate_ids(m, loaded.tokenizer, prompts, max_new_tokens=8) == before
        assert torch.equal(logits(m, loaded.tokenizer), before_logits)
    assert torch.equal(logits(loaded.model, loaded.tokenizer), before_logits)  # outside any view too


@pytest.mark.parametrize("name", ["ihl-fila", "ihl"])
def test_cancel_stops_within_one_step_and_restores_the_base(name, loaded):
    before = logits(loaded.model, loaded.tokenizer)
    modules = [n for n, _ in loaded.model.named_modules()]
    run = run_method(name, loaded, steps=500)
    seen_at_cancel = None
    for event in run.events():
        if event.kind == "step" and event.series == "train" and seen_at_cancel is None:
            run.cancel()
            seen_at_cancel = event.step
    run.wait()
    assert run.state == "cancelled"
    last = max(e.step for e in run.since(0) if e.kind == "step" and e.series == "train")
    assert last <= seen_at_cancel + 1
    assert [n for n, _ in loaded.model.named_modules()] == modules  # adapters gone, layers unwrapped
    assert not hasattr(loaded.model, "peft_config")
    assert torch.equal(logits(loaded.model, loaded.tokenizer), before)


@pytest.mark.parametrize("name", ["ihl-fila", "gd"])
def test_the_evaluation_model_is_a_private_merged_copy(name, loaded):
    """The after-evaluation's model: the run's adapters (and FILA's offset) merged into a
    copy's weights: the same logits as the unlearned view, no LoRA layer, and the shared base
    keeps its adapters and its original view."""
    from peft.tuners.lora import LoraLayer

    run = run_method(name, loaded)
    run.wait()
    with run.result.view("unlearned") as m:
        want = logits(m, loaded.tokenizer)
    with run.result.view("original") as m:
        original = logits(m, loaded.tokenizer)
    with run.result.evaluation_model() as plain:
        assert plain is not loaded.model and not any(isinstance(x, LoraLayer) for x in plain.modules())
        assert torch.allclose(logits(plain, loaded.tokenizer), want, atol=1e-5)
    assert any(isinstance(x, LoraLayer) for x in loaded.model.modules())
    with run.result.view("unlearned") as m:
        assert torch.equal(logits(m, loaded.tokenizer), want)
    with run.result.view("original") as m:
        assert torch.equal(logits(m, loaded.tokenizer), original)


def test_two_runs_share_one_base_without_seeing_each_other(loaded):
    a = run_method("ihl", loaded)
    a.wait()
    with a.result.view("unlearned") as m:
        a_logits = logits(m, loaded.tokenizer)
    b = run_method("gd-fila", loaded, seed=1)
    b.wait()
    assert b.state == "done", b.traceback
    with a.result.view("unlearned") as m:
        assert torch.equal(logits(m, loaded.tokenizer), a_logits)
    with b.result.view("unlearned") as m:
        assert not torch.equal(logits(m, loaded.tokenizer), a_logits)
    b.result.release()
    with a.result.view("unlearned") as m:
        assert torch.equal(logits(m, loaded.tokenizer), a_logits)


def test_holdout_stop_ends_the_run_when_the_criterion_is_met(loaded):
    # the untrained tiny model knows the forget set no better than the holdout set: met at once
    run = run_method("ihl", loaded, steps=50, stop="holdout")
    run.wait()
    stopping = run.result.extra_report["stopping"]
    assert run.result.steps == stopping["reached_at"] == 1
    assert set(stopping["target"]) == {"mem_acc"}
    assert any(e.series == "holdout" for e in run.since(0) if e.kind == "step")


@pytest.mark.parametrize("stop, every, want", [
    ("steps", 0, [5, 10, 12]),         # automatic: only the plot reads it, every 5 steps and the last
    ("steps", 4, [4, 8, 12]),          # as asked
    ("holdout", 0, list(range(1, 13))),  # automatic: it decides the stop, every step
])
def test_the_holdout_criterion_is_measured_as_often_as_it_is_needed(loaded, stop, every, want, monkeypatch):
    from unlearning.lora.stopping import HoldoutCriterion
    monkeypatch.setattr(HoldoutCriterion, "reached", lambda self, measured: False)  # never stop early
    run = run_method("ihl", loaded, steps=12, stop=stop, check_every=every)
    run.wait()
    assert [c["step"] for c in run.result.extra_report["stopping"]["checks"]] == want
    assert [e.step for e in run.since(0) if e.kind == "step" and e.series == "holdout"] == want


def test_knowledge_in_two_halves_side_by_side_is_the_knowledge_in_one_pass(loaded):
    from concurrent.futures import ThreadPoolExecutor

    from unlearning.batches import encode_dataset
    from unlearning.lora.stopping import knowledge
    ds = qa(7)  # an odd count: halves of 3 and 4
    items = encode_dataset(loaded.tokenizer, ds)
    one = knowledge(loaded.model, loaded.tokenizer, ds, items)
    with ThreadPoolExecutor(1) as pool:
        halves = knowledge(loaded.model, loaded.tokenizer, ds, items, pool=pool)
    n_tokens = sum(sum(1 for y in it.labels[1:] if y != -100) for it in items)
    assert halves == one and set(one) == {"mem_acc"}
    assert round(one["mem_acc"] * n_tokens) == pytest.approx(one["mem_acc"] * n_tokens)  # a share of the tokens


def test_every_training_step_lets_chat_go_first(loaded, monkeypatch):
    from unlearning.lora import trainer
    calls = []
    monkeypatch.setattr(trainer, "defer_to_chat", lambda model: calls.append(model))
    run = run_method("ihl-fila", loaded, steps=4)
    run.wait()
    assert run.state == "done" and calls == [loaded.model] * 4


def test_holdout_stop_needs_a_holdout_set(loaded):
    splits = {**SPLITS, "holdout": Dataset("h", "qa", [])}
    run = run_method("ihl", loaded, splits, stop="holdout")
    run.wait()
    assert run.state == "failed" and "holdout" in run.error


def test_passages_train_too(loaded):
    from unlearning.data import Passage

    text = "Ada Lovelace wrote the first published algorithm for a computing machine in 1843."
    splits = {**SPLITS, "forget": Dataset("f", "passage", [Passage(text)]),
              "holdout": Dataset("h", "passage", [Passage("Marie Curie won two Nobel prizes, in physics and chemistry.")])}
    run = run_method("ihl-fila", loaded, splits, steps=2)
    run.wait()
    assert run.state == "done", run.traceback
    assert set(run.result.extra_report["stopping"]["target"]) == {"mem_acc", "extraction_n"}


def test_bad_settings_are_user_errors():
    method = get_method("ihl-fila")
    with pytest.raises(UserError, match="--rank"):
        build(method.Config, {"rank": 5})
    with pytest.raises(UserError, match="--stop"):
        build(method.Config, {"stop": "never"})


def test_lr_schedule_warms_up_then_decays_linearly():
    factors = [lr_factor(s, 10, 2) for s in range(10)]
    assert factors[:2] == [1 / 3, 2 / 3] and factors[2] == 1.0
    assert factors[-1] == pytest.approx(1 / 8) and all(a > b for a, b in zip(factors[2:], factors[3:]))
    assert lr_factor(0, 5, 0) == 1.0


def test_views_take_the_base_lock(loaded):
    run = run_method("ihl", loaded, steps=1)
    run.wait()
    u = run.result
    entered = threading.Event()
    with u.view("unlearned"):
        t = threading.Thread(target=lambda: (u.lock.acquire(), entered.set(), u.lock.release()))
        t.start()
        assert not entered.wait(0.2)
    t.join(2)
    assert entered.is_set()


def test_automatic_learning_rate_follows_the_model_size(tiny):
    from types import SimpleNamespace

    from tests.reference import LARGE_MODEL_LR, SMALL_MODEL_LR
    from unlearning.lora.trainer import LoraSettings, learning_rate

    model, _ = tiny
    assert LoraSettings().lr == 0.0  # automatic by default
    assert (LoraSettings().steps, LoraSettings().stop) == (100, "steps")  # benchmarks/defaults.py says why
    assert learning_rate(LoraSettings(), model) == SMALL_MODEL_LR == 2e-4
    big = SimpleNamespace(parameters=lambda: [torch.empty(60_000_000, device="meta")])
    assert learning_rate(LoraSettings(), big) == LARGE_MODEL_LR == 1e-4
    assert learning_rate(LoraSettings(lr=5e-4), big) == 5e-4  # a chosen rate is kept


def test_the_inverted_hinge_methods_have_their_own_defaults(tiny):
    """λ_r = 3 for both; 4e-4 on small models for ihl-fila (trainer.IhlSettings: measured on long
    answers), 3e-3 for its random-init ablation (benchmarks/RESULTS.md, issue 23)."""
    from types import SimpleNamespace

    from unlearning.lora.trainer import IhlSettings, learning_rate

    model, _ = tiny
    for name, rate in (("ihl-fila", 4e-4), ("ihl", 3e-3)):
        cfg = build(get_method(name).Config, {})
        assert isinstance(cfg, IhlSettings) and (cfg.retain_weight, cfg.forget_weight, cfg.lr) == (3.0, 1.0, 0.0)
        assert learning_rate(cfg, model) == rate
    big = SimpleNamespace(parameters=lambda: [torch.empty(60_000_000, device="meta")])
    assert learning_rate(IhlSettings(), big) == 1e-4
    assert build(get_method("gd-fila").Config, {}).retain_weight == 1.0  # the other LoRA methods keep theirs


# The automatic rates (small model, large model) and stopping rule each LoRA method defaults to:
# benchmarks/sweep.py and RESULTS.md, "Defaults that end like the oracle (issue 23)".
DEFAULTS = {"ihl-fila": ((4e-4, 1e-4), 100, "steps"), "ihl": ((3e-3, 1e-4), 100, "holdout"),
            "gd": ((1e-3, 1e-4), 100, "steps"), "gd-fila": ((1e-4, 1e-4), 100, "holdout"),
            "ga": ((1.2e-3, 1e-4), 100, "steps"), "npo": ((3e-3, 1e-4), 100, "steps"),
            "simnpo": ((1e-2, 1e-4), 100, "steps"), "rmu": ((1e-3, 1e-4), 100, "steps")}


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_each_lora_method_has_its_measured_defaults(name, tiny):
    from types import SimpleNamespace

    from unlearning.lora.trainer import auto_lr, learning_rate

    (small, large), steps, stop = DEFAULTS[name]
    cfg = build(get_method(name).Config, {})
    assert (cfg.lr, cfg.steps, cfg.stop) == (0.0, steps, stop)  # 0: automatic, recorded as such in the report
    assert learning_rate(cfg, tiny[0]) == small
    big = SimpleNamespace(parameters=lambda: [torch.empty(60_000_000, device="meta")])
    assert learning_rate(cfg, big) == large == 1e-4  # conservative on hub-size models: no sweep there says otherwise
    lr_help = next(f for f in dataclasses.fields(cfg) if f.name == "lr").metadata["help"]
    assert lr_help == auto_lr(small, large).metadata["help"]  # the UI and --help say the rate it uses
