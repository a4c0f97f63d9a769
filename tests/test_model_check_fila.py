"""model_check's size check with FILA: the Fisher pass's two float32 copies of the targeted
weights, counted from the config alone (hand-computed for a Llama and a GPT-2 config, and the
same rule as lora.adapters.target_linears on a built model)."""

from __future__ import annotations

import pytest
import torch

from unlearning import model_check
from unlearning.errors import UserError


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
