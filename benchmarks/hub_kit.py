"""A workshop kit at hub size, built locally from a config (nothing downloaded).

    python benchmarks/hub_kit.py --out /tmp/hub-kit --device cuda     # Qwen2.5-0.5B's shape, ~3 min on an H100
    python benchmarks/hub_kit.py --out /tmp/tiny-kit --shape tiny     # seconds, to try the script on a CPU

The same corpus, tokenizer and teaching recipe as `python -m unlearning workshop --build`
(unlearning/kit/workshop.py), but the two models (`model/` taught forget + retain, `oracle/`
taught retain only) have the architecture and size of a real hub model: Qwen2 with
Qwen2.5-0.5B's layer shapes (24 layers, hidden 896, 14 heads / 2 KV heads, MLP 4864; 358 M
parameters outside the embeddings). Only the vocabulary differs: the kit's own 2,048-token
tokenizer, since Qwen's cannot be downloaded here. `python -m benchmarks --kit DIR` then runs
the benchmark table on it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHAPES = {
    # Qwen/Qwen2.5-0.5B's config.json, less the vocabulary.
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                         num_key_value_heads=2, rope_theta=1_000_000.0),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, rope_theta=10_000.0),
}
# A 0.5 B model from scratch needs a gentler learning rate than the kit's 2 M one (3e-3).
RECIPES = {"qwen2.5-0.5b": dict(epochs=40, lr=3e-4), "tiny": dict(epochs=2, lr=3e-3)}


def make_model(shape: str):
    def make(tokenizer, seed: int):
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM

        torch.manual_seed(seed)
        config = Qwen2Config(vocab_size=len(tokenizer), max_position_embeddings=512, tie_word_embeddings=True,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])
        model = Qwen2ForCausalLM(config)
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        return model

    return make


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for the kit (data files, model/, oracle/)")
    p.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-0.5b")
    p.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    args = p.parse_args()

    import torch

    from unlearning.kit import workshop
    from unlearning.kit.teach import TeachSettings

    torch.backends.cuda.matmul.allow_tf32 = True  # the kit's recipe in fp32 weights, TF32 matmuls
    recipe = TeachSettings(batch_size=16, seed=0, **RECIPES[args.shape])
    out = Path(args.out)
    t0 = time.perf_counter()
    workshop.build(out, recipe, make_model=make_model(args.shape), device=args.device)
    params = sum(p.numel() for p in make_model(args.shape)(_tokenizer(out), 0).parameters())
    print(f"built the {args.shape} kit ({params / 1e6:.0f} M parameters) in {time.perf_counter() - t0:.0f} s")
    name = f"workshop data on a {args.shape} shape model built from its config ({params / 1e6:.0f} M parameters)"
    (out / "kit.json").write_text(json.dumps({"name": name, "shape": args.shape, "params": params}) + "\n")
    info = workshop.describe(out, device=args.device)
    for name, r in info["recall"].items():
        print(f"  {name:16s} ROUGE-L recall: forget {r['forget']:.3f} retain {r['retain']:.3f}")
    for what, ok in workshop.checks(info)[:4]:  # the last check (file sizes) is for the shipped kit
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")


def _tokenizer(out: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(out / "model")


if __name__ == "__main__":
    main()
