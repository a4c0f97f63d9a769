"""model_check's size check with FILA: the Fisher pass's two float32 copies of the targeted
weights, counted from the config alone (hand-computed for a Llama and a GPT-2 config, and the
same rule as lora.adapters.target_linears on a built model); and asked for by every path that
starts a FILA method (the methods that declare `fisher_pass`) before any work: the CLI (exit 2,
one sentence), the service (Studio.check), and a model already loaded for chat."""

from __future__ import annotations

import json

import pytest
import torch

from tests.bad_input_cases import FORGET, RETAIN, one_sentence, run_cli
from unlearning import model_check
from unlearning.errors import UserError
from unlearning.methods import all_methods, get_method
from unlearning.service import ModelCache, Session, Studio, UnlearnJob


def llama(**kw):
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       vocab_size=100, **kw).to_dict()


def gpt2():
    from transformers import GPT2Config

    return GPT2Config(n_embd=32, n_layer=3, n_head=2, vocab_size=100, n_positions=64).to_dict()


def test_fisher_bytes_by_hand():
    # Llama: q, k, v, o (64×64 each) and gate, up, down (64×128) per layer; the head is not a target
    assert model_check.fisher_bytes(llama()) == 2 * 4 * 2 * (4 * 64 * 64 + 3 * 64 * 128)
    # GPT-2's Conv1D: c_attn 32×96, attn c_proj 32×32, c_fc 32×128, mlp c_proj 128×32 per layer
    assert model_check.fisher_bytes(gpt2()) == 2 * 4 * 3 * (32 * 96 + 32 * 32 + 32 * 128 + 128 * 32)
    assert model_check.fisher_bytes({"model_type": "no-such-model"}) == 0


def test_the_count_is_loras_targets():
    from transformers import AutoModelForCausalLM, LlamaConfig

    from unlearning.lora.adapters import target_linears

    model = AutoModelForCausalLM.from_config(LlamaConfig(**llama()))
    assert model_check.targeted_weights(model) == sum(m.weight.numel() for m in target_linears(model).values())


def test_a_fila_method_counts_the_fisher_pass(monkeypatch):
    """Weights that fit alone, but not with the Fisher pass beside them: one sentence that says so."""
    config = llama()
    weights = model_check.parameter_count(config) * 4  # float32
    fisher = model_check.fisher_bytes(config)
    room = int((weights + fisher / 2) / model_check.HEADROOM)
    monkeypatch.setattr(model_check, "free_memory", lambda device, device_map: (room, "CPU memory"))
    model_check.check_fits("tiny", config, "cpu", torch.float32, None)  # ihl, gd: fits
    with pytest.raises(UserError, match="FILA's Fisher pass") as info:
        model_check.check_fits("tiny", config, "cpu", torch.float32, None, fisher=True)
    assert "\n" not in str(info.value) and "CPU memory" in str(info.value)


def test_the_fila_methods_declare_the_fisher_pass():
    from unlearning.lora.trainer import FisherInit

    assert {m.name for m in all_methods() if m.fisher_pass} == {"ihl-fila", "gd-fila"}
    assert all(m.fisher_pass == isinstance(getattr(m, "init", None), FisherInit) for m in all_methods())


def between(config, monkeypatch) -> None:
    """Free memory where the weights fit alone (float32, on the CPU) but not with the Fisher pass."""
    weights = model_check.parameter_count(config) * 4
    room = int((weights + model_check.fisher_bytes(config) / 2) / model_check.HEADROOM)
    monkeypatch.setattr(model_check, "free_memory", lambda device, device_map: (room, "CPU memory"))


@pytest.fixture
def config_only_hub(monkeypatch, tmp_path):
    """'tiny/llama' on a stand-in hub that holds its config.json alone, with room for its weights only."""
    config = llama()
    asked = []

    def snapshot(repo_id, repo_type="model", patterns=None, revision=None):
        asked.append((repo_id, list(patterns or [])))
        (tmp_path / "hub").mkdir(exist_ok=True)
        (tmp_path / "hub" / "config.json").write_text(json.dumps(config))
        return tmp_path / "hub"

    monkeypatch.setattr(model_check, "snapshot", snapshot)
    between(config, monkeypatch)
    return asked


def test_check_model_counts_the_fisher_pass_only_when_asked(config_only_hub):
    from unlearning.models import check_model

    check_model("tiny/llama", "cpu")  # chat, ihl, gd: fits
    with pytest.raises(UserError) as info:
        check_model("tiny/llama", "cpu", fisher=True)
    one_sentence(str(info.value), "'tiny/llama'", "FILA's Fisher pass", "CPU memory", "ihl or gd")


@pytest.mark.parametrize("method", ["ihl-fila", "gd-fila"])
def test_cli_refuses_a_fila_run_that_would_not_fit(method, config_only_hub, capsys):
    line = run_cli(capsys, "unlearn", "--method", method, "--model", "tiny/llama", "--device", "cpu",
                   "--forget", FORGET, "--retain", RETAIN, "--steps", "1", "--no-before")
    one_sentence(line, "'tiny/llama'", "FILA's Fisher pass")
    assert config_only_hub == [("tiny/llama", ["config.json"])]  # refused before the weights were fetched


def test_the_service_refuses_a_fila_run_before_the_download(config_only_hub):
    studio, session = Studio(ModelCache(device="cpu")), Session()
    session.use_preset()
    try:
        with pytest.raises(UserError) as info:
            studio.start(session, UnlearnJob("tiny/llama", "ihl-fila"))
        one_sentence(str(info.value), "'tiny/llama'", "FILA's Fisher pass")
        assert session.run is None and studio.models.names() == []
        assert config_only_hub == [("tiny/llama", ["config.json"])]
    finally:
        session.close()


def test_a_model_loaded_for_chat_is_checked_for_the_fisher_pass(tmp_path, monkeypatch):
    """Loaded for chat (its weights already in memory): the Fisher sums alone must fit what is left."""
    from tests.arch_models import build

    folder = str(build("llama", tmp_path / "llama"))
    studio, session = Studio(ModelCache(device="cpu", local_models=True)), Session()
    session.use_preset()
    try:
        loaded = studio.models.get(folder)
        extra = 2 * 4 * model_check.targeted_weights(loaded.model)
        monkeypatch.setattr(model_check, "free_memory", lambda device, device_map: (extra, "CPU memory"))
        studio.check(session, UnlearnJob(folder, "ihl"))  # a random init holds nothing beside the weights
        with pytest.raises(UserError) as info:
            studio.check(session, UnlearnJob(folder, "gd-fila"))
        one_sentence(str(info.value), f"'{folder}' is loaded", "FILA's Fisher pass", "ihl or gd")
        assert session.run is None
    finally:
        session.close()
