"""What the Studio can tell about a model from its config.json alone, before the weights are
read or downloaded: whether it is a causal language model the Studio can work with, and
whether it fits the device (parameters × bytes per parameter against free memory). A hub id's
config comes through hub.snapshot (the one download path); a gated, missing or unreachable
model is one sentence here, not a traceback from the download.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .hub import snapshot

GIB = 1024**3
HEADROOM = 0.9  # of free memory the weights may take: activations, the optimizer and LoRA need the rest
VISION_KEYS = ("vision_config", "image_size", "num_channels", "patch_size")
FISHER_WHAT = "two float32 copies of the weights LoRA targets"
NO_FISHER = "ihl or gd, with a random LoRA init, need none"


def read_config(name: str, source: str, local: bool) -> dict[str, Any]:
    """config.json of `source`, as a dict: a folder here when `local`, else a hub id whose
    config.json alone is fetched (never a folder here that shares its name)."""
    folder = Path(source) if local else fetch_config(name, source)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise UserError(f"Model '{name}' has a config.json that is not a JSON object, so it cannot be read.")
    return config


def fetch_config(name: str, repo_id: str) -> Path:
    """The folder holding `repo_id`'s config.json; the Hub's refusals as one sentence each."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = snapshot(repo_id, patterns=["config.json"])
    except GatedRepoError:
        raise UserError(f"Model '{name}' is gated on the Hub: accept its licence on its page and log in "
                        "(HF_TOKEN or `hf auth login`) before the Studio can download it.") from None
    except RepositoryNotFoundError:  # the Hub answers the same for a private model
        raise UserError(f"Model '{name}' does not exist on the Hub (or it is private); check the id, "
                        "e.g. 'openai-community/gpt2'.") from None
    except RevisionNotFoundError:
        raise UserError(f"Model '{name}' has no such revision on the Hub.") from None
    except LocalEntryNotFoundError:  # before EntryNotFoundError, its parent
        raise UserError(f"Model '{name}' could not be loaded: it is not on this machine and the Hub could not be reached; connect, "
                        "or give the folder of a saved model.") from None
    except EntryNotFoundError:
        raise UserError(f"Model '{name}' has no config.json on the Hub, so it is not a transformers model.") from None
    except OSError as e:  # another HTTP or network failure
        raise UserError(f"Model '{name}' could not be fetched from the Hub ({_short(e)}).") from None
    if not (folder / "config.json").is_file():
        raise UserError(f"Model '{name}' has no config.json on the Hub, so it is not a transformers model.")
    return folder


def check_architecture(name: str, config: dict[str, Any]) -> None:
    """One sentence when `config` is not a causal (decoder) language model."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    kind = str(config.get("model_type", ""))
    heads = [str(a) for a in config.get("architectures") or []]
    need = "the Studio unlearns from causal (decoder) language models such as GPT-2, Llama, Qwen or Gemma"
    if any(k in config for k in VISION_KEYS) and not config.get("text_config"):
        raise UserError(f"Model '{name}' is a vision model ({kind or 'no model type'}), "
                        f"not a language model; {need}.")
    if config.get("is_encoder_decoder"):
        raise UserError(f"Model '{name}' is an encoder-decoder model ({kind}), which the Studio cannot unlearn "
                        f"from; {need}.")
    if not kind:
        return  # a model with its own code (trust_remote_code) may leave it out: from_pretrained decides
    # BERT and its kin: masked-word models that transformers can also run as decoders (is_decoder)
    causal_head = any(h.endswith(("CausalLM", "LMHeadModel")) for h in heads)
    if kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not config.get("is_decoder") and not causal_head:
        raise UserError(f"Model '{name}' is an encoder-only model ({kind}): it reads text but does not write it "
                        f"word by word, so there is no answer to unlearn; {need}.")
    if kind not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not config.get("auto_map"):
        raise UserError(f"Model '{name}' (model type '{kind}') is not a causal language model transformers knows; {need}.")


def meta_model(config: dict[str, Any]) -> torch.nn.Module | None:
    """The model built on the meta device from its config (no memory, no weights); None when
    transformers cannot build it from the config alone (its own code)."""
    from transformers import CONFIG_MAPPING, AutoModelForCausalLM

    try:
        cfg = CONFIG_MAPPING[config["model_type"]].from_dict(config)
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(cfg)
    except Exception:  # noqa: BLE001  an unknown or custom architecture: from_pretrained will say what is wrong
        return None


def parameter_count(config: dict[str, Any]) -> int | None:
    """The model's parameters, counted on its meta copy; None when it cannot be built."""
    model = meta_model(config)
    return None if model is None else sum(p.numel() for p in model.parameters())


def targeted_weights(model: torch.nn.Module) -> int:
    """Entries of the weights LoRA (and FILA's Fisher pass) targets: every nn.Linear or GPT-2
    Conv1D except the output head (lora.adapters.target_linears' rule, restated here because
    the LoRA package imports this module's caller)."""
    from transformers.pytorch_utils import Conv1D

    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if get_head is not None else None
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear | Conv1D) and m is not head)


def fisher_bytes(config: dict[str, Any]) -> int:
    """FILA's Fisher pass holds two float32 sums (forget and retain) of every targeted weight
    on the model's device (lora/fila.py: accumulate_fisher); 0 when the model cannot be built."""
    model = meta_model(config)
    return 0 if model is None else 2 * 4 * targeted_weights(model)


def check_fisher_room(name: str, model: torch.nn.Module, device: str, placed: bool) -> None:
    """One sentence when a model already loaded on `device` (for chat, or taught; `placed` by
    accelerate) leaves too little memory free beside its weights for FILA's Fisher pass."""
    extra = 2 * 4 * targeted_weights(model)
    room = free_memory(device, "auto" if placed else None)
    if room is None or extra <= HEADROOM * room[0]:
        return
    free, where = room
    raise UserError(f"Model '{name}' is loaded, but FILA's Fisher pass needs {extra / GIB:.1f} GiB beside its "
                    f"weights ({FISHER_WHAT}) and only {free / GIB:.1f} GiB of {where} is free; {NO_FISHER}.")


def free_memory(device: str, device_map: str | None) -> tuple[int, str] | None:
    """(bytes free, what that is in words) where the weights will go; None when the GPU cannot
    be asked (ZeroGPU lends it only inside a GPU call)."""
    ram = available_ram()
    if device != "cuda":
        return ram, "CPU memory"
    try:
        gpus = [int(torch.cuda.mem_get_info(i)[0]) for i in range(torch.cuda.device_count())]
    except RuntimeError:
        return None
    if device_map:
        return sum(gpus) + ram, "GPU and CPU memory together"
    return gpus[torch.cuda.current_device()], "GPU memory"


def available_ram() -> int:
    """Bytes of CPU memory available to a new process: MemAvailable (free + reclaimable cache)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # free pages only: a lower bound


def check_fits(name: str, config: dict[str, Any], device: str, dtype: torch.dtype, device_map: str | None,
               fisher: bool = False) -> None:
    """One sentence, with advice, when the weights will not fit the free memory; with `fisher`
    (a FILA-based method: its init's Fisher pass), the weights and the two float32 copies of
    the targeted weights that pass holds beside them."""
    n = parameter_count(config)
    if n is None:
        return
    weights = n * torch.empty((), dtype=dtype).element_size()
    extra = fisher_bytes(config) if fisher else 0
    need = weights + extra
    room = free_memory(device, device_map)
    if room is None or need <= HEADROOM * room[0]:
        return
    free, where = room
    dt = str(dtype).removeprefix("torch.")
    advice = ("accelerate would spill it to disk, which is too slow to be useful; pick a smaller model"
              if device_map else
              "load it with --device-map auto to spread it over the GPUs and CPU memory (ECO runs then, but LoRA "
              "methods must hold every layer on the GPU), or pick a smaller model" if device == "cuda" else
              "run on a GPU (bfloat16 halves it), or pick a smaller model")
    fila = f" plus {extra / GIB:.1f} GiB for FILA's Fisher pass ({FISHER_WHAT}; {NO_FISHER})" if extra else ""
    raise UserError(f"Model '{name}' has {n / 1e9:.2f} B parameters, {weights / GIB:.1f} GiB in {dt}{fila}, but only "
                    f"{free / GIB:.1f} GiB of {where} is free; {advice}.")


def _short(e: Exception, n: int = 160) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[: n - 1] + "…"
