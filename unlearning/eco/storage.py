"""An ECO guard (Liu et al., NeurIPS 2024, arXiv 2406.07933) on disk: `guard.json` (encoder
name, n-gram buckets, τ, corruption name and parameters, strength, seed, scoring protocol
and its parameters; a guard saved before protocols existed reads as `prompt`) and
`guard_head.safetensors` (the classifier head). The base model is not saved: the guard
reattaches to the loaded base (DESIGN.md §One base model).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..artifacts import read_json
from ..errors import UserError, one_line
from .classifier import PromptClassifier
from .corruption import CORRUPTIONS, make_corruption
from .features import Featurizer, get_encoder
from .guard import Guard
from .protocol import PROTOCOLS, load_protocol

SETTINGS_FILE = "guard.json"
HEAD_FILE = "guard_head.safetensors"
FORMAT = 1


def save_guard(guard: Guard, folder: Path, encoder: str, ngram_dims: int) -> None:
    from safetensors.torch import save_file

    head = guard.classifier.head
    save_file({"weight": head.weight.detach().cpu().contiguous(), "bias": head.bias.detach().cpu().contiguous()},
              str(folder / HEAD_FILE))
    spec = {"format": FORMAT, "encoder": encoder, "ngram_dims": ngram_dims, "threshold": guard.classifier.threshold,
            "corruption": guard.corruption.name, "corruption_params": guard.corruption.params(),
            "strength": guard.strength, "seed": guard.seed, "protocol": guard.protocol.name,
            "protocol_params": guard.protocol.params()}
    (folder / SETTINGS_FILE).write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")


def read_spec(folder: Path) -> dict:
    """guard.json, checked field by field; a problem is one sentence naming the file."""
    path = folder / SETTINGS_FILE
    spec = read_json(path, f"'{path}' is missing, so '{folder}' is not a complete ECO guard.")
    checks: dict[str, type | tuple[type, ...]] = {"encoder": str, "ngram_dims": int, "threshold": (int, float), "corruption": str,
              "corruption_params": dict, "strength": (int, float), "seed": int}
    if not isinstance(spec, dict):
        raise UserError(f"'{path}' is corrupted (it is not a JSON object).")
    for key, kind in checks.items():
        if not isinstance(spec.get(key), kind) or isinstance(spec.get(key), bool):
            raise UserError(f"'{path}' is corrupted (its '{key}' is missing or of the wrong type).")
    for key in ("threshold", "strength"):  # NaN, Infinity (json reads both) and huge integers fail this
        if not -1e300 < spec[key] < 1e300:
            raise UserError(f"'{path}' is corrupted (its '{key}' is not a finite number).")
    if spec["ngram_dims"] < 0:
        raise UserError(f"'{path}' is corrupted (its 'ngram_dims' is negative).")
    if spec["corruption"] not in CORRUPTIONS:
        raise UserError(f"'{path}' names an unknown corruption function '{spec['corruption']}'.")
    spec.setdefault("protocol", "prompt")
    spec.setdefault("protocol_params", {})
    if spec["protocol"] not in PROTOCOLS:
        raise UserError(f"'{path}' names an unknown scoring protocol '{spec['protocol']}'.")
    if not _protocol_params_ok(spec["protocol_params"]):
        raise UserError(f"'{path}' is corrupted (its 'protocol_params' are not name hashes and lengths).")
    return spec


def _protocol_params_ok(params) -> bool:
    if not isinstance(params, dict):
        return False
    keys, lengths = params.get("name_keys", []), params.get("name_lengths", [])
    return (isinstance(keys, list) and all(isinstance(k, str) for k in keys) and isinstance(lengths, list)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in lengths))


def _read_head(folder: Path, width: int) -> torch.nn.Linear:
    from safetensors.torch import load_file

    path = folder / HEAD_FILE
    try:
        tensors = load_file(str(path))
    except FileNotFoundError:
        raise UserError(f"'{path}' is missing, so '{folder}' is not a complete ECO guard.") from None
    except Exception as e:  # noqa: BLE001  safetensors raises its own error types for a damaged file
        raise UserError(f"'{path}' is corrupted ({one_line(e, 120)}).") from None
    weight, bias = tensors.get("weight"), tensors.get("bias")
    if weight is None or bias is None or tuple(weight.shape) != (1, width) or tuple(bias.shape) != (1,):
        raise UserError(f"'{path}' does not hold a classifier head for {width} features (it is corrupted or "
                        "belongs to another encoder).")
    head = torch.nn.utils.skip_init(torch.nn.Linear, width, 1)  # no init draw from the global RNG: overwritten below
    with torch.no_grad():
        head.weight.copy_(weight.float())
        head.bias.copy_(bias.float())
    return head.eval().requires_grad_(False)


def load_guard(loaded, folder: Path) -> tuple[Guard, dict]:
    """The guard in `folder` on the loaded base model, and its spec."""
    spec = read_spec(folder)
    params = spec["corruption_params"]
    n_dims = params.get("n_dims", 1)
    if not isinstance(n_dims, int) or n_dims < 1:
        raise UserError(f"'{folder / SETTINGS_FILE}' is corrupted (its corruption 'n_dims' is not a positive whole number).")
    encoder = get_encoder(spec["encoder"], loaded.device)
    featurizer = Featurizer(encoder, spec["ngram_dims"])
    head = _read_head(folder, featurizer.dim)
    classifier = PromptClassifier(featurizer, head, float(spec["threshold"]))
    guard = Guard(loaded.model, loaded.tokenizer, classifier, make_corruption(spec["corruption"], n_dims),
                  float(spec["strength"]), spec["seed"], load_protocol(spec["protocol"], spec["protocol_params"]))
    return guard, spec
