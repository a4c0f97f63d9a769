"""Load a causal LM and its tokenizer: a hub id, a local folder, or the bundled workshop kit.

`workshop` and `workshop-oracle` name the offline models in assets/workshop/. Everything
else goes through `from_pretrained`, so a hub id and a local folder take the same path.
Remote code stays off unless the caller turns it on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .errors import UserError
from .generate import adopt_conventions
from .hub import snapshot
from .model_check import check_architecture, check_fits, read_config

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ASSETS = Path(__file__).resolve().parent.parent / "assets"
WORKSHOP_DIR = ASSETS / "workshop"
ALIASES = {"workshop": WORKSHOP_DIR / "model", "workshop-oracle": WORKSHOP_DIR / "oracle"}
# owner/name as the Hub spells it: letters, digits, '-', '_', '.', never '..' or a leading dot.
# \Z, not $: '$' would also accept a trailing newline.
HUB_ID = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?\Z")
SMALL_MODEL_PARAMS = 50_000_000
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass
class Loaded:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str  # as the user gave it
    device: str  # "cpu" or "cuda"
    device_map: dict[str, Any] | None = None  # module → device, when accelerate placed it (--device-map)


def resolve_device(device: str = "auto") -> str:
    """'auto' → cuda when available, else cpu; an explicit 'cuda' without one is a user error."""
    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"Device '{device}' is not one of auto, cpu, cuda.")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("Device 'cuda' was asked for, but no CUDA GPU is available here; use --device cpu.")
    return device


def pick_dtype(device: str) -> torch.dtype:
    """float32 on the CPU (exact, and bf16 matmuls are slow there); bf16 on GPUs that have it."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def resolve_source(name: str) -> str:
    """The folder or hub id `from_pretrained` should read, after checking it is well-formed."""
    name = name.strip()
    if name in ALIASES:
        return str(ALIASES[name])
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"Model folder '{name}' has no config.json, so it is not a saved model.")
        if not any((path / f).is_file() for f in WEIGHT_FILES):
            raise UserError(f"Model folder '{name}' has no weights (model.safetensors or pytorch_model.bin).")
        return str(path)
    if name.startswith((".", "/", "~")) or "\\" in name:
        raise UserError(f"'{name}' is a file, not a model folder." if path.exists() else f"Model folder '{name}' does not exist.")
    if not HUB_ID.match(name):
        raise UserError(f"'{name}' is neither a model folder nor a valid hub id like 'owner/model-name'.")
    return name


def check_visitor_model(name: str) -> None:
    """A model name typed by a website visitor may be an alias or a hub id, never a path.

    `load_model` reads folders on this machine (the CLI's operator owns it); the app calls
    this first unless its operator allowed local models, so a visitor can neither load nor
    probe the server's files ('../', '/', '~', or a relative name that is a folder here).
    """
    name = name.strip()
    if name in ALIASES:
        return
    if not HUB_ID.match(name):  # (a hub id that is also a folder here is fetched from the Hub: fetch_from_hub)
        raise UserError(f"'{name}' is not a hub id like 'owner/model-name'; folders on the server can be opened "
                        "only when its operator allows local models (UNLEARNING_LOCAL_MODELS=1).")


HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]  # config, tokenizer, weights


def fetch_from_hub(name: str, code: bool = False) -> str:
    """A visitor's model: the folder of its files from the Hub (or the Hub cache, offline),
    never a folder here that shares its name, so neither what loads nor the error a visitor
    reads tells which folders the server has. `.bin` weights only where there are no
    safetensors; the model's own code only when remote code is on."""
    patterns = HUB_FILES + (["*.py"] if code else [])
    folder = snapshot(name, patterns=patterns)
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        folder = snapshot(name, patterns=[*patterns, "pytorch_model*.bin"])
    return str(folder)


def check_model(name: str, device: str = "auto", device_map: str | None = None, hub_only: bool = False,
                fisher: bool = False) -> None:
    """What `load_model` checks before any weights are read or downloaded, alone: for a model
    not loaded yet that a FILA method (`fisher`) will run on (service/models.py)."""
    if name.strip() in ALIASES:
        return
    resolved = name if hub_only else resolve_source(name)
    dev = resolve_device(device)
    _check_config(name, resolved, Path(resolved).is_dir() and not hub_only, dev, device_map, fisher)


def _check_config(name: str, resolved: str, own_files: bool, dev: str, device_map: str | None, fisher: bool) -> None:
    config = read_config(name, resolved, local=own_files)
    check_architecture(name, config)
    check_fits(name, config, dev, pick_dtype(dev), device_map, fisher)


def load_model(name: str, device: str = "auto", trust_remote_code: bool = False,
               device_map: str | None = None, hub_only: bool = False, fisher: bool = False) -> Loaded:
    """Load model + tokenizer on `device` in the dtype that suits it, in eval mode.

    `device_map="auto"` (DESIGN.md §Scale) lets accelerate's big-model loading place the
    model: sharded over the visible GPUs, what does not fit spilled to CPU memory (offloaded:
    run on a GPU, layer by layer); on a machine without a GPU, all of it on the CPU.
    `hub_only`: `name` is a visitor's hub id, fetched from the Hub alone (fetch_from_hub); a
    hub id from the CLI is fetched the same way unless it names a folder here. Before any
    weights are read or downloaded, the config says whether the Studio can use the model and
    whether it fits (model_check); with `fisher`, whether FILA's Fisher pass fits beside it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress reporting is the run's events
    hf_logging.set_verbosity_error()  # its warnings would break "one line on stderr"
    dev = resolve_device(device)
    placement = _placement(device_map, device, dev)
    source, own_files = None, False
    try:
        resolved = name if hub_only else resolve_source(name)
        own_files = Path(resolved).is_dir() and not hub_only
        if name.strip() not in ALIASES:  # before any download: a model we cannot use, or one too large
            _check_config(name, resolved, own_files, dev, device_map, fisher)
        source = resolved if own_files or name.strip() in ALIASES else fetch_from_hub(resolved, trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=pick_dtype(dev), trust_remote_code=trust_remote_code,
                                                     **placement)
    except UserError:
        raise
    except Exception as e:
        if isinstance(e, ValueError) and "trust_remote_code" in str(e):
            raise UserError(f"Model '{name}' needs to run its own Python code, which stays off unless the operator "
                            "enables trust_remote_code.") from e
        if own_files:  # the user's own files: whatever their reader raised, they are the problem
            raise UserError(f"Model folder '{name}' could not be loaded from its files, which are damaged or not "
                            f"a causal language model ({_short(e)}).") from e
        if isinstance(e, ValueError):
            raise UserError(f"Model '{name}' could not be loaded as a causal language model ({_short(e)}).") from e
        if isinstance(e, OSError):
            raise UserError(f"Model '{name}' could not be loaded: it is not on this machine and the Hub could not be reached or has no such model ({_short(e)}).") from e
        raise
    adopt_conventions(tokenizer)
    placed = None
    if placement:  # accelerate placed it, and a dispatched model must not be moved
        placed = dict(getattr(model, "hf_device_map", None) or {"": str(input_device(model))})
        dev = _device_of(placed)
        model.eval()
    else:
        model.to(dev).eval()  # type: ignore[arg-type]  # transformers' @wraps(Module.to) hides the bound self from mypy
    if dev == "cpu":
        set_cpu_threads(sum(p.numel() for p in model.parameters()))
    return Loaded(model, tokenizer, name, dev, placed)


DEVICE_MAPS = ("auto",)


def _placement(device_map: str | None, asked: str, dev: str) -> dict[str, Any]:
    """from_pretrained's placement arguments for `device_map` ({} without one)."""
    if not device_map:
        return {}
    if device_map not in DEVICE_MAPS:
        raise UserError(f"Device map '{device_map}' is not one of {', '.join(DEVICE_MAPS)}.")
    if asked == "cpu" and torch.cuda.is_available():
        raise UserError("--device-map auto places the model on the GPUs; drop --device cpu, or drop --device-map "
                        "to load it on the CPU.")
    return {"device_map": device_map}


def _device_of(placed: dict[str, Any]) -> str:
    """"cuda" when any module sits on a GPU (an int or 'cuda:N' in the map), else "cpu"."""
    return "cuda" if any(isinstance(d, int) or str(d).startswith("cuda") for d in placed.values()) else "cpu"


def offloaded(loaded: Loaded) -> list[str]:
    """The modules accelerate keeps off the GPUs (in CPU memory or on disk) while GPUs run the rest."""
    placed = loaded.device_map or {}
    away = ("cpu", "disk") if loaded.device == "cuda" else ("disk",)  # with no GPU, the CPU runs what it holds
    return [m for m, d in placed.items() if d in away]


def input_device(model) -> torch.device:
    """Where a model's inputs go: its input embedding's device (for a module accelerate
    offloaded, the device its hook runs it on). Accelerate's hooks move activations between
    shards and return the outputs to the inputs' device."""
    embedding = model.get_input_embeddings()
    hook = getattr(embedding, "_hf_hook", None)
    execution = getattr(hook, "execution_device", None)
    if execution is not None:
        return torch.device(execution)
    return embedding.weight.device


def set_cpu_threads(n_params: int) -> None:
    """One intra-op thread for small models, torch's default for large ones.

    A small model's matmuls are too short to split: on a 2-core machine with anything else
    running (a second session, the web server), the threads' spin-waits made a workshop
    evaluation ~10x slower (95 s instead of 10 s, measured). UNLEARNING_THREADS overrides.
    """
    override = os.environ.get("UNLEARNING_THREADS", "")
    if override.isdigit() and int(override) > 0:
        torch.set_num_threads(int(override))
    elif n_params < SMALL_MODEL_PARAMS:
        torch.set_num_threads(1)


def _short(e: Exception, n: int = 160) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[: n - 1] + "…"
