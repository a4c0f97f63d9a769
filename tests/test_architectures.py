"""Every architecture family common on the Hub × every registered method, on tiny random models
built here (tests/arch_models.py) and loaded by path, as a hub id would be: each unlearns a
few steps, its artifact is saved, loaded back and chatted with (ECO's guard corrupting a
flagged prompt's embeddings), and a LoRA artifact merges into a plain copy that computes what
its view computes. Per family: the stress tests and peft's own reading of the exported adapter.
GPT-2's Conv1D layers are checked against an nn.Linear twin of the same weights."""

from __future__ import annotations

import copy

import pytest
import torch
from peft.tuners.lora import LoraLayer
from transformers.pytorch_utils import Conv1D

from tests.arch_models import FAMILIES, build
from tests.test_methods import SPLITS, run_method
from unlearning.attach import load_unlearned
from unlearning.attacks import AttackSettings, attack_job
from unlearning.generate import prompt_ids
from unlearning.lora.adapters import Adapters, target_linears
from unlearning.methods import all_methods, get_method
from unlearning.models import Loaded, load_model
from unlearning.runs import Run
from unlearning.service.chat import chat_stream
from unlearning.settings import build as build_settings
from unlearning.lora.trainer import LoraMethod

METHODS = [m.name for m in all_methods()]
ECO_SMALL = {"epochs": 3, "folds": 2, "grid_points": 2, "search_steps": 1, "ngram_dims": 256, "seed": 3}


@pytest.fixture(scope="module")
def family_models(tmp_path_factory):
    """family → Loaded, built on first use and shared by the module's tests (each run adds and
    removes its own adapters, so the base stays as loaded)."""
    cache: dict[str, Loaded] = {}

    def get(family: str) -> Loaded:
        if family not in cache:
            cache[family] = load_model(str(build(family, tmp_path_factory.mktemp(family))), "cpu")
        return cache[family]
    return get


def unlearn(loaded: Loaded, method: str):
    if issubclass(get_method(method), LoraMethod):
        run = run_method(method, loaded, steps=2)
    else:
        eco = get_method(method)
        cfg = build_settings(eco.Config, ECO_SMALL)
        run = Run(lambda ctx: eco.run(ctx, loaded, SPLITS, cfg, {"oracle": None, "before": None})).start()
    run.wait()
    assert run.state == "done", run.traceback
    return run.result


def logits(model, tok) -> torch.Tensor:
    ids = torch.tensor([prompt_ids(tok, "Who wrote note 1?")])
    with torch.no_grad():
        return model(input_ids=ids).logits.float()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_unlearns_chats_and_merges(family, method, family_models, tmp_path):
    loaded = family_models(family)
    before = logits(loaded.model, loaded.tokenizer)
    made = unlearn(loaded, method)
    made.save(tmp_path)
    made.release()
    artifact = load_unlearned(loaded, tmp_path)
    try:
        *_, last = chat_stream(loaded, artifact, "Who wrote note 1?", max_new_tokens=4)
        assert isinstance(last.original, str) and isinstance(last.unlearned, str)
        if method == "eco":
            assert last.flag is not None
        else:
            with artifact.view("unlearned") as m:
                want = logits(m, loaded.tokenizer)
            merged = artifact.detached("unlearned").model
            assert not any(isinstance(m, LoraLayer) for m in merged.modules())
            torch.testing.assert_close(logits(merged, loaded.tokenizer), want, rtol=0, atol=1e-4)
            assert not torch.equal(want, before)
    finally:
        artifact.release()
    assert torch.equal(logits(loaded.model, loaded.tokenizer), before)  # the base as loaded


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_stress_tests(family, family_models):
    loaded = family_models(family)
    unlearned = unlearn(loaded, "ihl-fila")
    try:
        settings = AttackSettings(relearn_steps=2, sample=4, relearn_batch=2)
        run = Run(attack_job(loaded, unlearned, SPLITS, None, settings)).start()
        run.wait()
        assert run.state == "done", run.traceback
    finally:
        unlearned.release()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_export_reads_in_peft(family, family_models, tmp_path):
    """The artifact's adapter and FILA offset, read by peft itself onto a fresh copy of the
    model (the export README's recipe), compute the unlearned view."""
    from peft import PeftModel

    loaded = family_models(family)
    unlearned = unlearn(loaded, "ihl-fila")
    with unlearned.view("unlearned") as m:
        want = logits(m, loaded.tokenizer)
    unlearned.save(tmp_path)
    unlearned.release()
    fresh = copy.deepcopy(loaded.model)
    fresh = PeftModel.from_pretrained(fresh, str(tmp_path / "offset")).merge_and_unload()
    fresh = PeftModel.from_pretrained(fresh, str(tmp_path / "adapter")).merge_and_unload()
    torch.testing.assert_close(logits(fresh, loaded.tokenizer), want, rtol=0, atol=1e-4)


# ---------------------------------------------------------------- GPT-2's Conv1D


def linear_twin(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose Conv1D layers are nn.Linear layers holding the same weights
    transposed: x·W + b (Conv1D, W (in, out)) = x·(Wᵀ)ᵀ + b (Linear)."""
    twin = copy.deepcopy(model)
    for name, m in list(twin.named_modules()):
        if isinstance(m, Conv1D):
            fan_in, fan_out = m.weight.shape
            linear = torch.nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                linear.weight.copy_(m.weight.T)
                linear.bias.copy_(m.bias)
            parent, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent), child, linear)
    return twin


def test_gpt2_targets_its_conv1d_layers(family_models):
    model = family_models("gpt2").model
    targets = target_linears(model)
    assert targets and all(isinstance(m, Conv1D) for m in targets.values())
    assert {n.rsplit(".", 1)[1] for n in targets} == {"c_attn", "c_proj", "c_fc"}


def test_gpt2_fila_matches_an_nn_linear_twin(family_models, monkeypatch):
    """FILA on GPT-2 (Conv1D, W stored (in, out)) and on its nn.Linear twin: the same
    Fisher-weighted init (A0, B0), the same logits at step 0 (the offset cancels it) and
    after training, to 1e-5."""
    loaded = family_models("gpt2")
    twin = Loaded(linear_twin(loaded.model).eval(), loaded.tokenizer, "gpt2-linear-twin", "cpu")
    torch.testing.assert_close(logits(twin.model, twin.tokenizer), logits(loaded.model, loaded.tokenizer),
                               rtol=0, atol=1e-5)
    inits, at_init = [], []
    write_init = Adapters.write_init

    def spy(self, init):
        write_init(self, init)
        inits.append(init)
        with self.use() as m:  # step 0: the FILA init and its offset on, no training step yet
            at_init.append(logits(m, loaded.tokenizer))

    monkeypatch.setattr(Adapters, "write_init", spy)
    trained = []
    for model in (loaded, twin):
        run = run_method("ihl-fila", model, steps=3)
        run.wait()
        assert run.state == "done", run.traceback
        with run.result.view("unlearned") as m:
            trained.append(logits(m, model.tokenizer))
        run.result.release()
    (conv_init, linear_init), original = inits, logits(loaded.model, loaded.tokenizer)
    assert conv_init.keys() == linear_init.keys()
    for name in conv_init:
        for a, b in zip(conv_init[name], linear_init[name]):  # the same up to float rounding of the gradients
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(at_init[0], original, rtol=0, atol=1e-5)
    torch.testing.assert_close(at_init[0], at_init[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(trained[0], trained[1], rtol=0, atol=1e-4)  # 6e-6 measured: 3 AdamW steps amplify rounding
    assert (trained[0] - original).abs().max() > 1e-3  # and training moved it
    TWIN_GAP.update(init=float((at_init[0] - at_init[1]).abs().max()), trained=float((trained[0] - trained[1]).abs().max()))


TWIN_GAP: dict[str, float] = {}  # max |Δlogit| between GPT-2 and its twin, for the report (pytest -s prints it)
