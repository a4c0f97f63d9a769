"""A LoRA run's files: peft's adapter folders and run.json, each way of reading them failing
with one sentence that names the file.

`adapter/` (and FILA's `offset/`) hold adapter_config.json + adapter_model.safetensors as
PeftModel.save_pretrained writes them (loadable with PeftModel.from_pretrained); run.json
holds the steps and the history for the report.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import limits
from ..artifacts import read_json
from ..errors import UserError

PREFIX = "base_model.model."  # what PeftModel.save_pretrained puts before module names
WEIGHTS = "adapter_model.safetensors"

Weights = dict[str, tuple[torch.Tensor, torch.Tensor]]  # module name → (A (r, in), B (out, r))


def write_adapter(folder: Path, config: LoraConfig, base_name: str, weights: Weights) -> None:
    """One adapter in peft's format."""
    folder.mkdir(parents=True, exist_ok=True)
    config = copy.copy(config)
    config.base_model_name_or_path = base_name
    config.save_pretrained(str(folder))
    state = {}
    for module, (a, b) in weights.items():
        state[f"{PREFIX}{module}.lora_A.weight"] = a.detach().cpu().contiguous()
        state[f"{PREFIX}{module}.lora_B.weight"] = b.detach().cpu().contiguous()
    save_file(state, str(folder / WEIGHTS), metadata={"format": "pt"})


def read_adapter(folder: Path) -> tuple[LoraConfig, dict[str, torch.Tensor]]:
    """The adapter's config and weights; a missing or damaged file is one sentence naming it."""
    for file in (folder / "adapter_config.json", folder / WEIGHTS):
        if not file.is_file():
            raise UserError(f"The LoRA adapter in {folder} is incomplete: '{file.name}' is missing.")
    try:  # a damaged config: JSONDecodeError (a ValueError), or TypeError for fields of the wrong type
        config = LoraConfig.from_pretrained(str(folder))
    except (OSError, TypeError, ValueError, KeyError) as e:
        raise UserError(f"'{folder / 'adapter_config.json'}' is corrupted ({_short(e)}).") from None
    rank_ok = isinstance(config.r, int) and 1 <= config.r <= limits.MAX_RANK  # a huge r would fill the memory
    if not (rank_ok and isinstance(config.lora_alpha, (int, float))):
        raise UserError(f"'{folder / 'adapter_config.json'}' is corrupted (its rank 'r' is not between 1 and "
                        f"{limits.MAX_RANK}, or its 'lora_alpha' is not a number).")
    try:
        state = load_file(str(folder / WEIGHTS))
    except (OSError, SafetensorError) as e:
        raise UserError(f"'{folder / WEIGHTS}' is corrupted ({_short(e)}).") from None
    return config, state


def adapted_modules(state: dict[str, torch.Tensor]) -> list[str]:
    """Every layer an adapter's weights name, in full (peft may shorten config.target_modules)."""
    return sorted({k.removeprefix(PREFIX).rsplit(".lora_", 1)[0] for k in state})


def weight_of(state: dict[str, torch.Tensor], module: str, part: str) -> torch.Tensor | None:
    """`part` ("lora_A" or "lora_B") of `module` in a saved adapter's weights."""
    return state.get(f"{PREFIX}{module}.{part}.weight")


def read_run(path: Path) -> dict:
    """run.json (steps and history, for the report); optional, but a damaged one is refused."""
    if not path.exists():
        return {}
    run = read_json(path, f"'{path}' is missing.")
    if not isinstance(run, dict) or not isinstance(run.get("steps", 0), int) or not isinstance(run.get("history", []), list):
        raise UserError(f"'{path}' is corrupted (it is not an object with 'steps' and 'history').")
    return run


def _short(e: Exception, n: int = 100) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= n else text[: n - 1] + "…"
