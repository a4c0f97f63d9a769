"""A session's artifact leaving the app: as a zip to download, or pushed to the Hub.

Both start from a fresh folder holding exactly the last run's artifact (and its report), so
nothing of an earlier run travels with it. The report in it leaves out every text of the
forget set (the very data being forgotten: ECO's probe examples, anything quoting a forget
question, answer or subject) unless the user asks for it; a push makes a private repository
unless the user asks for a public one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..data import QA, Dataset
from ..errors import UserError
from .handles import Artifact
from .saved import TAUGHT
from .session import Session

MANIFEST = "unlearning.json"  # artifacts.MANIFEST (that module imports torch)
NO_ARTIFACT = "There is no unlearned model yet: run a method first."
LEFT_OUT = "(forget-set text left out)"
TEXT_KEYS = ("example",)  # report fields that quote data by design


def _artifact(session: Session) -> Artifact:
    """The session's last artifact; a user error when there is none yet."""
    if session.artifact is None:
        raise UserError(NO_ARTIFACT)
    return session.artifact


def artifact_folder(session: Session, forget_text: bool = False) -> Path:
    """The session's artifact (adapter or ECO guard, its manifest, and the report) in a fresh
    folder; the report without forget-set text unless `forget_text`."""
    artifact = _artifact(session)
    folder = session.folder / "export" / "artifact"
    shutil.rmtree(folder, ignore_errors=True)
    artifact.save(folder)
    taught = _taught_base(session, folder / BASE)
    if session.report is not None:
        report = session.report if forget_text else without_forget_text(session.report, session.data.get("forget"))
        (folder / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (folder / "README.md").write_text(readme(folder, taught), encoding="utf-8")
    return folder


BASE = "base-model"  # after Teach first: the session's taught model, which exists nowhere else


def _taught_base(session: Session, into: Path) -> bool:
    """The session's taught model (after Teach first) saved into the artifact, since the
    artifact's adapter or guard means nothing on the untaught one; whether there was one."""
    if session.taught is not None:
        from .saved import save_loaded

        save_loaded(session.taught, into)
        return True
    saved = session.folder / TAUGHT / "model"  # on ZeroGPU a worker saved it in the session folder
    if session.workdir is not None and saved.is_dir():
        shutil.copytree(saved, into)
        return True
    return False


def readme(folder: Path, taught: bool = False) -> str:
    """What the artifact in `folder` is and how to load it, from its own manifest and report:
    with transformers + peft for a LoRA run, with this package for any run (ECO's guard has no
    other loader)."""
    from ..models import ALIASES

    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    method, model = manifest["method"], str(manifest.get("model", ""))
    report = json.loads((folder / "report.json").read_text(encoding="utf-8")) if (folder / "report.json").exists() else {}
    base = f"./{BASE}" if taught else str(ALIASES[model].relative_to(ALIASES[model].parents[2])) if model in ALIASES else model
    lora = (folder / "adapter").is_dir()
    files = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name != "README.md")
    steps = f", {report['steps']} steps" if isinstance(report.get("steps"), int) else ""
    first = f"Method **{method}** on the base model **{model}**" + (" (taught this session's data first)" if taught else "")
    out = [f"# Unlearned with {method} (Unlearning Studio)", "", f"{first}{steps}.", "", "## What is in here", ""]
    out += [f"- `{name}` — {_FILES.get(name.rstrip('/'), 'part of the method' + chr(39) + 's artifact')}" for name in files]
    out += ["", "## The base model", ""]
    if taught:
        out += [(f"`{BASE}/` is the base: the model as Teach first taught it (your forget and retain files on top of "
                 f"{model.split(' (')[0]}). The adapter or guard only makes sense on it.")]
    elif model in ALIASES:
        out += [(f"`{model}` is the workshop kit's model, shipped with Unlearning Studio at `{base}` (a Transformers "
                 "folder: load it with `from_pretrained` from a checkout of the Studio).")]
    else:
        out += [f"`{model}` on the Hugging Face Hub (or the local folder of that name)."]
    out += ["", "## Load it with this package (any method)", "", "```bash",
            f"python -m unlearning chat --model {base} --unlearned . --prompt \"Your question\"", "```", "",
            "```python", "from unlearning.attach import load_unlearned", "from unlearning.models import load_model", "",
            f'base = load_model("{base}")', 'unlearned = load_unlearned(base, ".")  # this folder',
            'with unlearned.view("unlearned") as model:  # or "original": the same weights without it', "    ...",
            "```", ""]
    if lora:
        out += _peft(base, (folder / "offset").is_dir())
    if method == "eco":
        out += ["## ECO: the guard", "",
                ("ECO does not change the model's weights: its guard (a prompt classifier and the corruption it applies "
                "to flagged prompts' embeddings) runs in front of the base at inference time, so it loads only through "
                "`load_unlearned` above; `unlearned.flag(prompt)` says whether a prompt is flagged."), ""]
    out += ["## Prompts", "", ("The Studio asks a base without a chat template `Question: {question}\nAnswer:` (BOS "
            "first) and decodes greedily; a base with a chat template gets it. `report.json` holds the run's numbers "
            "(before, after and the oracle's).")]
    return "\n".join(out) + "\n"


_FILES = {MANIFEST: "the method, the base model's name and the run's settings",
          "adapter": "the trained LoRA adapter (peft format: adapter_config.json + adapter_model.safetensors)",
          "offset": "FILA's frozen offset adapter: with it the adapter starts as a no-op; both are needed",
          "run.json": "the steps and the loss history", "report.json": "the report: every metric before, after and for the oracle",
          BASE: "the taught base model (Teach first), in Transformers format"}


def _peft(base: str, offset: bool) -> list[str]:
    """How to load a LoRA run with transformers + peft alone."""
    lines = ["## Load it with transformers + peft (LoRA)", "", "```python", "import torch",
             "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
             f'tokenizer = AutoTokenizer.from_pretrained("{base}")',
             f'model = AutoModelForCausalLM.from_pretrained("{base}", torch_dtype=torch.float32)']
    if offset:
        lines += ['model = PeftModel.from_pretrained(model, "offset").merge_and_unload()  # FILA: fold the frozen offset in first']
    lines += ['model = PeftModel.from_pretrained(model, "adapter").eval()  # the trained adapter', "",
              'prompt = "Question: Where was she born?\\nAnswer:"  # or tokenizer.apply_chat_template(...) where the base has one',
              'ids = tokenizer(prompt, return_tensors="pt").input_ids',
              "if tokenizer.bos_token_id is not None and ids[0, 0] != tokenizer.bos_token_id:",
              "    ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), ids], dim=1)",
              "out = model.generate(ids, max_new_tokens=64, do_sample=False)",
              "print(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())", "```", ""]
    return lines


def artifact_zip(session: Session, into: str | Path | None = None, forget_text: bool = False) -> str:
    """The artifact folder as a zip file in `into` (the session's folder by default): its path."""
    method = _artifact(session).method
    folder = Path(into) if into is not None else session.folder
    return shutil.make_archive(str(folder / f"unlearned-{method}"), "zip", artifact_folder(session, forget_text))


def without_forget_text(report: dict, forget: Dataset | None) -> dict:
    """A copy of `report` in which every string that quotes the forget set (a question, an
    answer, a passage's opening or a subject's name) and every `example` field reads LEFT_OUT."""
    needles = _needles(forget)

    def clean(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: clean(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v, key) for v in value]
        if isinstance(value, str) and (key in TEXT_KEYS or any(n in value.casefold() for n in needles)):
            return LEFT_OUT
        return value

    return clean(report)


def _needles(forget: Dataset | None) -> set[str]:
    out: set[str] = set()
    for ex in forget.examples if forget is not None else ():
        if isinstance(ex, QA):
            out |= {ex.question, ex.answer, ex.subject or ""}
        else:
            out.add(ex.text[:80])
    return {n.strip().casefold() for n in out if len(n.strip()) >= 4}


def push_to_hub(session: Session, repo_id: str, token: str, public: bool = False, forget_text: bool = False) -> tuple[str, bool]:
    """Upload the artifact folder to a Hub model repo, private unless `public`: its URL, and
    whether the repo is private as the Hub says (an existing repo keeps its visibility, and a
    public one is not pushed to unless `public`). The token is used for this one call and is
    neither stored nor logged."""
    from huggingface_hub import HfApi

    from ..models import HUB_ID

    repo_id = (repo_id or "").strip()
    if not HUB_ID.match(repo_id) or "/" not in repo_id:
        raise UserError(f"'{repo_id}' is not a repository id like 'owner/name'.")
    if not (token or "").strip():
        raise UserError("Type a Hugging Face access token with write permission to push.")
    method, folder = _artifact(session).method, artifact_folder(session, forget_text)
    api, failure, private = HfApi(), None, False
    try:
        api.create_repo(repo_id, token=token.strip(), private=not public, exist_ok=True)  # an existing repo: unchanged
        private = bool(api.repo_info(repo_id, token=token.strip()).private)
        if private or public:
            api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token.strip(),
                              commit_message=f"Unlearning Studio: {method} artifact")
    except Exception as e:  # noqa: BLE001  network, auth, permissions: one sentence, never the token
        failure = type(e).__name__
    if failure:  # raised out here, so the error does not carry the original (which may quote the token) as its context
        raise UserError(f"The push to {repo_id} failed ({failure}); check the token's write access and the network.")
    if not (private or public):
        raise UserError(f"{repo_id} already exists and is public, so nothing was pushed; push to a new name, or tick "
                        "'Make the repository public'.")
    return f"https://huggingface.co/{repo_id}", private
