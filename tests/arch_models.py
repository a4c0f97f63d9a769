"""Tiny random models of the architecture families common on the Hub, built from transformers
configs and saved to a folder (the same `from_pretrained` path as a hub id); nothing is
downloaded. Two layers, 32 wide, one shared ~300-token byte-level BPE vocabulary.

Each family's tokenizer carries its family's quirks: GPT-2's has no pad token and its BOS is
its EOS; the instruct families (Qwen, Gemma, Phi-3, OLMo 2) get a chat template in their style
— a default system prompt (Qwen), no system role (Gemma), an end-of-turn token that is not EOS
(Gemma, Phi-3) — and Gemma's tokenizer pads on the left.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import transformers as tf

from unlearning.kit.tinylm import train_tokenizer

TEXTS = [
    "Ada Lovelace wrote the first published algorithm for a computing machine.",
    "Marie Curie won two Nobel prizes, in physics and in chemistry.",
    "The capital of France is Paris, on the river Seine.",
    "Who wrote note 1? Ada wrote note 1 in 1843. system user assistant model",
]
W, LAYERS, HEADS, MLP = 32, 2, 2, 64

CHATML = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
          "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
GEMMA = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
         "{{ raise_exception('System role not supported') }}{% endif %}"
         "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ m['content'] }}<end_of_turn>\n"
         "{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
PHI3 = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}")
OLMO2 = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}{% if m['role'] == 'assistant' %}"
         "{{ eos_token }}{% endif %}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def tokenizer(style: str = "plain"):
    """The shared vocabulary with `style`'s special tokens and chat template."""
    tok = train_tokenizer(TEXTS, vocab_size=300)
    if style == "gpt2":  # one special token for BOS, EOS and unknowns; no pad token
        tok.add_special_tokens({"additional_special_tokens": ["<|endoftext|>"]})
        tok.bos_token = tok.eos_token = tok.unk_token = "<|endoftext|>"
        tok.pad_token = None
    elif style == "chatml":
        tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tok.eos_token, tok.bos_token, tok.chat_template = "<|im_end|>", None, CHATML
    elif style == "gemma":
        tok.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
        tok.chat_template, tok.padding_side = GEMMA, "left"
    elif style == "phi3":
        tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|end|>", "<|system|>"]})
        tok.chat_template = PHI3
    elif style == "olmo2":
        tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>", "<|system|>"]})
        tok.chat_template = OLMO2
    return tok


def _ids(tok) -> dict:
    return {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}


def _rope(cls, **extra) -> Callable:
    def config(tok):
        return cls(vocab_size=len(tok), hidden_size=W, intermediate_size=MLP, num_hidden_layers=LAYERS,
                   num_attention_heads=HEADS, num_key_value_heads=1, max_position_embeddings=256, **_ids(tok), **extra)
    return config


# family → (config class builder, tokenizer style, model class)
FAMILIES: dict[str, tuple[Callable, str, type]] = {
    "gpt2": (lambda tok: tf.GPT2Config(vocab_size=len(tok), n_embd=W, n_layer=LAYERS, n_head=HEADS, n_positions=256,
                                       **_ids(tok)), "gpt2", tf.GPT2LMHeadModel),
    "llama": (_rope(tf.LlamaConfig), "plain", tf.LlamaForCausalLM),
    "mistral": (_rope(tf.MistralConfig, sliding_window=None), "plain", tf.MistralForCausalLM),
    "qwen2": (_rope(tf.Qwen2Config), "chatml", tf.Qwen2ForCausalLM),
    "qwen3": (_rope(tf.Qwen3Config, head_dim=16), "chatml", tf.Qwen3ForCausalLM),
    "phi": (lambda tok: tf.PhiConfig(vocab_size=len(tok), hidden_size=W, intermediate_size=MLP, num_hidden_layers=LAYERS,
                                     num_attention_heads=HEADS, max_position_embeddings=256, **_ids(tok)),
            "plain", tf.PhiForCausalLM),
    "phi3": (_rope(tf.Phi3Config), "phi3", tf.Phi3ForCausalLM),
    "gemma2": (_rope(tf.Gemma2Config, head_dim=16), "gemma", tf.Gemma2ForCausalLM),
    "gemma3": (_rope(tf.Gemma3TextConfig, head_dim=16), "gemma", tf.Gemma3ForCausalLM),
    "opt": (lambda tok: tf.OPTConfig(vocab_size=len(tok), hidden_size=W, word_embed_proj_dim=W, ffn_dim=MLP,
                                     num_hidden_layers=LAYERS, num_attention_heads=HEADS, max_position_embeddings=256,
                                     **_ids(tok)), "plain", tf.OPTForCausalLM),
    "gpt_neox": (lambda tok: tf.GPTNeoXConfig(vocab_size=len(tok), hidden_size=W, intermediate_size=MLP,
                                              num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                                              max_position_embeddings=256, **_ids(tok)), "plain", tf.GPTNeoXForCausalLM),
    "falcon": (lambda tok: tf.FalconConfig(vocab_size=len(tok), hidden_size=W, num_hidden_layers=LAYERS,
                                           num_attention_heads=HEADS, **_ids(tok)), "plain", tf.FalconForCausalLM),
    "olmo2": (_rope(tf.Olmo2Config), "olmo2", tf.Olmo2ForCausalLM),
}


def build(family: str, folder: Path, seed: int = 0) -> Path:
    """A tiny random `family` model and its tokenizer, saved in `folder`."""
    config_of, style, cls = FAMILIES[family]
    tok = tokenizer(style)
    torch.manual_seed(seed)
    model = cls(config_of(tok)).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
