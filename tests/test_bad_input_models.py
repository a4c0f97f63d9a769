"""Bad input, end to end, part 2: tables of bad model names, damaged unlearned-artifact folders
and bad chat messages, each pushed through every layer that can receive it:

  engine  `load_model`, `load_unlearned`, `check_prompt` raise `UserError`: one sentence
          naming the model (or file) and the problem;
  CLI     `python -m unlearning …` (in-process) exits 2 with exactly one line on stderr and
          no traceback;
  app     the model and chat panels' handlers, called as Gradio calls them with a fresh
          session, return a plain message instead of raising, and the session still works
          afterwards (the workshop preset loads and a valid upload is accepted).

The model and artifact rows use the bundled ~2M-parameter workshop model. Files and settings
are in test_bad_input.py; the shared checks and fixtures in bad_input_cases.py.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from components import chat_panel, model_panel
from tests import bad_input_cases as cases
from tests.bad_input_cases import FORGET, RETAIN, one_sentence, run_cli, shows, still_usable
from unlearning import limits
from unlearning.attach import load_unlearned
from unlearning.errors import UserError
from unlearning.models import WORKSHOP_DIR, load_model
from unlearning.service import LocalBackend
from unlearning.service.chat import check_prompt

# The shared app-side fixtures, bound here so that pytest finds them.
studio, session, uploads = cases.studio, cases.session, cases.uploads


# --------------------------------------------------------------------------- models


def folder_without_weights(tmp_path: Path) -> str:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    return str(tmp_path)


def folder_with_garbage(tmp_path: Path) -> str:
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_size": "wide"}')
    (tmp_path / "model.safetensors").write_bytes(os.urandom(1000))
    return str(tmp_path)


def folder_with_truncated_weights(tmp_path: Path) -> str:
    shutil.copytree(WORKSHOP_DIR / "model", tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return str(tmp_path / "model")


@dataclass(frozen=True)
class Model:
    id: str
    name: str | Callable[[Path], str]
    phrase: str


MODELS = [
    Model("hub id with ../", "owner/../model", "is neither a model folder nor a valid hub id"),
    Model("relative path out", "../" * 12 + "etc", "/etc' has no config.json"),
    Model("a home path that is not there", "~/no-such-model", "Model folder '~/no-such-model' does not exist"),
    Model("absolute path outside: a file", "/etc/passwd", "'/etc/passwd' is a file, not a model folder"),
    Model("absolute path outside: a folder", "/", "Model folder '/' has no config.json"),
    Model("a URL", "https://evil.example/x", "is neither a model folder nor a valid hub id"),
    Model("folder without weights", folder_without_weights, "has no weights"),
    Model("folder with a garbled config and weights", folder_with_garbage, "could not be loaded from its files"),
    Model("folder with truncated weights", folder_with_truncated_weights, "could not be loaded from its files"),
]


def model_name(case: Model, tmp_path: Path) -> str:
    return case.name(tmp_path) if callable(case.name) else case.name


@pytest.mark.parametrize("case", MODELS, ids=[m.id for m in MODELS])
def test_model_engine(case: Model, tmp_path):
    name = model_name(case, tmp_path)
    with pytest.raises(UserError) as info:
        load_model(name, "cpu")
    one_sentence(str(info.value), case.phrase)


@pytest.mark.parametrize("case", MODELS, ids=[m.id for m in MODELS])
def test_model_cli(case: Model, tmp_path, capsys):
    one_sentence(run_cli(capsys, "chat", "--model", model_name(case, tmp_path), "--prompt", "hi"), case.phrase)


@pytest.mark.parametrize("case", MODELS, ids=[m.id for m in MODELS])
def test_model_app(case: Model, studio, session, tmp_path, uploads):
    """The model panel's Load button, and a chat message sent with that model name: one sentence
    naming the model (the app may refuse a path before looking at it, so not always the CLI's words)."""
    name = model_name(case, tmp_path)
    shows(model_panel.loader(LocalBackend(studio))(name), f"'{name}'")
    replies = list(chat_panel.responder(LocalBackend(studio))("Who wrote the notes?", session, name, [], []))
    assert len(replies) == 1 and replies[0][:2] == ([], [])
    shows(replies[0][2], f"'{name}'")
    still_usable(session, uploads)


# --------------------------------------------------------------- hub models, before a download
# A stand-in for the Hub (model_check's snapshot, the one download path): each id gives a
# config.json, or the error huggingface_hub raises. Only config.json is ever asked for.


def config_folder(root: Path, config) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config.to_dict()))
    return root


def hub_error(kind: str):
    import httpx2
    from huggingface_hub import errors

    response = httpx2.Response(401 if kind == "GatedRepoError" else 404,
                               request=httpx2.Request("GET", "http://127.0.0.1/api/models/x"))
    return getattr(errors, kind)(f"{kind} (stand-in hub)", response=response)


def huge_llama():
    from transformers import LlamaConfig
    return LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32)


def bert():
    from transformers import BertConfig
    return BertConfig(architectures=["BertForMaskedLM"])


def vit():
    from transformers import ViTConfig
    return ViTConfig(architectures=["ViTForImageClassification"])


def t5():
    from transformers import T5Config
    return T5Config(architectures=["T5ForConditionalGeneration"])


HUB = {"tiny/bert": bert, "tiny/vit": vit, "tiny/t5": t5, "tiny/llama-7b": huge_llama,
       "tiny/gated": "GatedRepoError", "tiny/missing": "RepositoryNotFoundError"}
HUB_MODELS = [
    Model("encoder-only (BERT)", "tiny/bert", "'tiny/bert' is an encoder-only model (bert)"),
    Model("vision model (ViT)", "tiny/vit", "'tiny/vit' is a vision model (vit)"),
    Model("encoder-decoder (T5)", "tiny/t5", "'tiny/t5' is an encoder-decoder model (t5)"),
    Model("too large for the device", "tiny/llama-7b", "'tiny/llama-7b' has 6.74 B parameters"),
    Model("gated", "tiny/gated", "'tiny/gated' is gated on the Hub"),
    Model("missing id", "tiny/missing", "'tiny/missing' does not exist on the Hub"),
]


@pytest.fixture
def stand_in_hub(monkeypatch, tmp_path):
    """model_check.snapshot answering from HUB (config.json only); 1 GiB free wherever the weights go."""
    from unlearning import model_check

    asked: list[tuple[str, list[str]]] = []

    def snapshot(repo_id, repo_type="model", patterns=None, revision=None):
        asked.append((repo_id, list(patterns or [])))
        entry = HUB[repo_id]
        if isinstance(entry, str):
            raise hub_error(entry)
        return config_folder(tmp_path / repo_id, entry())

    monkeypatch.setattr(model_check, "snapshot", snapshot)
    monkeypatch.setattr(model_check, "free_memory", lambda device, device_map: (2**30, "CPU memory"))
    return asked


@pytest.mark.parametrize("case", HUB_MODELS, ids=[m.id for m in HUB_MODELS])
def test_hub_model_engine(case: Model, stand_in_hub):
    with pytest.raises(UserError) as info:
        load_model(str(case.name), "cpu")
    one_sentence(str(info.value), case.phrase)
    assert stand_in_hub == [(case.name, ["config.json"])]  # nothing but the config was fetched


@pytest.mark.parametrize("case", HUB_MODELS, ids=[m.id for m in HUB_MODELS])
def test_hub_model_cli(case: Model, stand_in_hub, capsys):
    one_sentence(run_cli(capsys, "chat", "--model", str(case.name), "--prompt", "hi"), case.phrase)


@pytest.mark.parametrize("case", HUB_MODELS, ids=[m.id for m in HUB_MODELS])
def test_hub_model_app(case: Model, stand_in_hub, studio, session, uploads):
    """A visitor's hub id (fetched from the Hub alone): the model panel shows the engine's sentence."""
    shows(model_panel.loader(LocalBackend(studio))(str(case.name)), case.phrase)
    still_usable(session, uploads)


def test_too_large_advises_device_map_on_a_gpu(monkeypatch):
    from unlearning import model_check

    monkeypatch.setattr(model_check, "free_memory", lambda device, device_map: (8 * 2**30, "GPU memory"))
    with pytest.raises(UserError) as info:
        model_check.check_fits("tiny/llama-7b", huge_llama().to_dict(), "cuda", torch.bfloat16, None)
    one_sentence(str(info.value), "12.6 GiB in bfloat16", "8.0 GiB of GPU memory", "--device-map auto", "LoRA")


def test_a_model_without_lora_layers_is_refused_before_training(tmp_path, capsys, monkeypatch):
    """A layer type LoRA cannot adapt (here: none counts as adaptable): one sentence, exit 2, before any step."""
    from tests.arch_models import build
    from unlearning.lora import adapters as lora

    folder = str(build("llama", tmp_path / "llama"))
    monkeypatch.setattr(lora, "ADAPTABLE", (torch.nn.Bilinear,))
    line = run_cli(capsys, "unlearn", "--method", "ihl", "--model", folder, "--forget", FORGET, "--retain", RETAIN,
                   "--steps", "1", "--no-before")
    one_sentence(line, f"Model '{folder}' has no layer LoRA can adapt", "ECO")


# ---------------------------------------------------------------- unlearned artifacts


@pytest.fixture(scope="module")
def workshop():
    return load_model("workshop", "cpu")


@pytest.fixture(scope="module")
def artifacts(workshop, tmp_path_factory):
    """A valid LoRA adapter folder and a valid ECO guard folder, made without training."""
    from unlearning.eco.classifier import PromptClassifier
    from unlearning.eco.corruption import make_corruption
    from unlearning.eco.features import DEFAULT_ENCODER, Featurizer, get_encoder
    from unlearning.eco.guard import Guard
    from unlearning.lora.adapters import Adapters, LoraUnlearned
    from unlearning.methods.eco import EcoUnlearned

    root = tmp_path_factory.mktemp("artifacts")
    lora = LoraUnlearned(workshop, {"rank": 4}, "ihl", Adapters.create(workshop.model, "ihl", 4, 8, False))
    lora.save(root / "lora")
    lora.release()
    featurizer = Featurizer(get_encoder(DEFAULT_ENCODER, "cpu"), 16)
    classifier = PromptClassifier(featurizer, torch.nn.Linear(featurizer.dim, 1), 0.5)
    guard = Guard(workshop.model, workshop.tokenizer, classifier, make_corruption("rand_noise_first_n"), 1.0, 0)
    EcoUnlearned(workshop, {}, guard, DEFAULT_ENCODER, 16).save(root / "eco")
    return root


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@dataclass(frozen=True)
class Artifact:
    id: str
    kind: str  # "eco" or "lora": which valid folder is damaged
    damage: Callable[[Path], None]
    phrase: str


ARTIFACTS = [
    Artifact("ECO head truncated", "eco", lambda d: truncate(d / "guard_head.safetensors"),
             "guard_head.safetensors' is corrupted"),
    Artifact("ECO head is garbage", "eco", lambda d: (d / "guard_head.safetensors").write_bytes(b"\xff" * 8 + b"{{{"),
             "guard_head.safetensors' is corrupted"),
    Artifact("ECO guard.json truncated", "eco", lambda d: truncate(d / "guard.json"), "guard.json' is corrupted"),
    Artifact("ECO guard.json is a folder", "eco", lambda d: ((d / "guard.json").unlink(), (d / "guard.json").mkdir()),
             "guard.json' cannot be read"),
    Artifact("ECO threshold NaN", "eco", lambda d: edit_json(d / "guard.json", threshold=float("nan")),
             "guard.json' is corrupted (its 'threshold' is not a finite number)"),
    Artifact("manifest garbled", "eco", lambda d: (d / "unlearning.json").write_bytes(b"\x89PNG\r\n\x1a\n"),
             "unlearning.json' is corrupted (not valid JSON)"),
    Artifact("manifest names no method", "lora", lambda d: (d / "unlearning.json").write_text('{"method": 3}'),
             "unlearning.json' does not name the method that made it"),
    Artifact("manifest names an unknown method", "lora", lambda d: edit_json(d / "unlearning.json", method="../x"),
             "Unknown method '../x'"),
    Artifact("manifest settings not an object", "eco", lambda d: edit_json(d / "unlearning.json", settings=[1, 2]),
             "unlearning.json' is corrupted (its 'settings' is not an object)"),
    Artifact("adapter weights truncated", "lora", lambda d: truncate(d / "adapter" / "adapter_model.safetensors"),
             "adapter_model.safetensors' is corrupted"),
    Artifact("adapter weights empty", "lora", lambda d: (d / "adapter" / "adapter_model.safetensors").write_bytes(b""),
             "adapter_model.safetensors' is corrupted"),
    Artifact("adapter config garbled", "lora", lambda d: truncate(d / "adapter" / "adapter_config.json"),
             "adapter_config.json' is corrupted"),
    Artifact("adapter config rank 0", "lora", lambda d: edit_json(d / "adapter" / "adapter_config.json", r=0),
             "adapter_config.json' is corrupted"),
    Artifact("adapter config rank 10**6", "lora", lambda d: edit_json(d / "adapter" / "adapter_config.json", r=10**6),
             "adapter_config.json' is corrupted (its rank 'r' is not between 1 and"),
    Artifact("adapter config is a list", "lora", lambda d: (d / "adapter" / "adapter_config.json").write_text("[]"),
             "adapter_config.json' is corrupted"),
    Artifact("run.json garbled", "lora", lambda d: truncate(d / "run.json"), "run.json' is corrupted"),
    Artifact("folder is a file", "lora", lambda d: (shutil.rmtree(d), d.write_text("{}")),
             "is a file, not an unlearning artifact folder"),
]


def damaged(artifacts: Path, case: Artifact, tmp_path: Path) -> Path:
    folder = tmp_path / "unlearned"
    shutil.copytree(artifacts / case.kind, folder)
    case.damage(folder)
    return folder


def test_the_undamaged_artifacts_load(artifacts, workshop):
    """The control for the rows below: the same folders, undamaged, attach to the model."""
    for kind, cls in (("lora", "LoraUnlearned"), ("eco", "EcoUnlearned")):
        unlearned = load_unlearned(workshop, artifacts / kind)
        assert type(unlearned).__name__ == cls
        unlearned.release()
    assert not any("lora" in n for n, _ in workshop.model.named_parameters())


@pytest.mark.parametrize("case", ARTIFACTS, ids=[a.id for a in ARTIFACTS])
def test_artifact_engine(case: Artifact, artifacts, workshop, tmp_path):
    folder = damaged(artifacts, case, tmp_path)
    with pytest.raises(UserError) as info:
        load_unlearned(workshop, folder)
    one_sentence(str(info.value), case.phrase)
    assert not any("lora" in n for n, _ in workshop.model.named_parameters())  # nothing left on the shared base


@pytest.mark.parametrize("command", ["eval", "chat"])
@pytest.mark.parametrize("case", ARTIFACTS, ids=[a.id for a in ARTIFACTS])
def test_artifact_cli(case: Artifact, command: str, artifacts, tmp_path, capsys):
    folder = damaged(artifacts, case, tmp_path)
    rest = ["--forget", FORGET, "--retain", RETAIN] if command == "eval" else ["--prompt", "Who wrote the notes?"]
    one_sentence(run_cli(capsys, command, "--model", "workshop", "--unlearned", folder, *rest), case.phrase)


# ------------------------------------------------------------------------ chat messages


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    phrase: str


PROMPTS = [
    Prompt("over the limit", "x" * (limits.MAX_PROMPT_CHARS + 1),
           f"The message has {limits.MAX_PROMPT_CHARS + 1:,} characters; the limit is {limits.MAX_PROMPT_CHARS:,}"),
    Prompt("far over the limit", "x" * 500_000, "The message has 500,000 characters"),
    Prompt("whitespace only", " \n\t ", "Type a message first"),
    Prompt("zero-width spaces only", "\u200b\u200b\ufeff\u2060", "Type a message first"),
    # What Python makes of invalid UTF-8 on the command line, or a lone surrogate sent by a client.
    Prompt("unpaired surrogate", "Who wrote \udce9 the notes?", "The message is not valid text"),
]


@pytest.mark.parametrize("case", PROMPTS, ids=[p.id for p in PROMPTS])
def test_prompt_engine(case: Prompt):
    with pytest.raises(UserError) as info:
        check_prompt(case.text)
    one_sentence(str(info.value), case.phrase)


@pytest.mark.parametrize("case", PROMPTS, ids=[p.id for p in PROMPTS])
def test_prompt_cli(case: Prompt, capsys):
    one_sentence(run_cli(capsys, "chat", "--model", "workshop", "--prompt", case.text), case.phrase)


@pytest.mark.parametrize("case", PROMPTS, ids=[p.id for p in PROMPTS])
def test_prompt_app(case: Prompt, studio, session, uploads):
    """The chat panel: a refused message shows the reason and leaves both conversations as they were;
    a blank one is ignored."""
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    replies = list(chat_panel.responder(LocalBackend(studio))(case.text, session, "workshop", history, history))
    assert len(replies) == 1
    left, right, badge, box = replies[0]
    assert left == history and right == history and box == ""
    if case.text.strip():
        shows(badge, case.phrase)
    still_usable(session, uploads)
