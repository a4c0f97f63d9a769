"""The lean BERT forward (unlearning/eco/bert.py) computes what transformers' BertModel does:
MiniLM's sentence embeddings equal the reference path's within 1e-5, one prompt or a padded
batch, with the packed oneDNN weights or plain F.linear."""

from __future__ import annotations

import pytest
import torch

from unlearning.eco import bert
from unlearning.eco.bert import FastBert
from unlearning.eco.features import DEFAULT_ENCODER, get_encoder

PROMPTS = ["Where was Yara Bramante born?", "How do I boil an egg?",
           "Quick question, what did Ivo Castellane study, and where? Tell me everything you know.",
           "Y a r a  Br4m4nt3", "hi"]


@pytest.fixture(scope="module")
def minilm():
    return get_encoder(DEFAULT_ENCODER, "cpu")  # loaded once per process, shared by every test file


def tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32)
    return BertModel(cfg, add_pooling_layer=False).eval()


def test_minilm_uses_the_lean_forward(minilm):
    assert minilm.fast is not None


@pytest.mark.parametrize("texts", [[p] for p in PROMPTS] + [PROMPTS], ids=[*PROMPTS, "padded batch"])
def test_minilm_fast_embeddings_equal_the_reference(minilm, texts):
    fast, ref = minilm._encode(texts), minilm._encode(texts, reference=True)
    assert fast.shape == ref.shape == (len(texts), 384)
    assert (fast - ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize("packed", [True, False], ids=["oneDNN packed", "F.linear"])
def test_hidden_states_equal_bertmodel_with_padding_and_token_types(monkeypatch, packed):
    if not packed:
        monkeypatch.setattr(bert.torch.backends.mkldnn, "is_available", lambda: False)
    model = tiny_bert()
    ids = torch.tensor([[2, 7, 9, 11, 3], [2, 5, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    types = torch.tensor([[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]])
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    out = FastBert(model)(ids, mask, types)
    real = mask.bool()  # padded positions are never pooled; compare the real tokens
    assert torch.allclose(out[real], ref[real], atol=1e-5)
    with torch.no_grad():
        plain = model(input_ids=ids[:1], attention_mask=mask[:1]).last_hidden_state
    assert torch.allclose(FastBert(model)(ids[:1], mask[:1]), plain, atol=1e-5)  # no padding, no token types
    assert not torch.allclose(plain, ref[:1], atol=1e-3)  # the token types did matter above


def test_only_plain_bert_encoders_qualify():
    from transformers import BertConfig, BertModel

    assert FastBert.supports(tiny_bert())
    relu = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
                                intermediate_size=32, hidden_act="relu"))
    assert not FastBert.supports(relu)
    assert not FastBert.supports(torch.nn.Linear(2, 2))
