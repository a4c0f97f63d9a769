"""unlearning/models.py: the from_pretrained path from a local folder, names, devices, dtypes."""

from __future__ import annotations

import json

import pytest
import torch

from unlearning.errors import UserError
from unlearning.models import load_model, pick_dtype, resolve_device, resolve_source


def test_local_folder_loads_through_from_pretrained(tiny, tmp_path):
    model, tok = tiny
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, model(ids).logits)
    assert loaded.device == "cpu" and not loaded.model.training
    assert loaded.tokenizer.pad_token_id is not None


def test_workshop_names_resolve_to_the_kit():
    assert resolve_source("workshop").endswith("assets/workshop/model")
    assert resolve_source("workshop-oracle").endswith("assets/workshop/oracle")


@pytest.mark.parametrize("name", ["gpt2", "Qwen/Qwen2.5-0.5B-Instruct", "owner/model.v2"])
def test_valid_hub_ids_pass_through(name):
    assert resolve_source(name) == name


@pytest.mark.parametrize("name", ["../x", "a/../b", "a/b/c", "a b", "", "/no/such/folder", "~/nope"])
def test_bad_names_are_user_errors(name):
    with pytest.raises(UserError):
        resolve_source(name)


def test_devices_and_dtypes():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    assert pick_dtype("cpu") == torch.float32
    with pytest.raises(UserError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_remote_code_stays_off(tiny, tmp_path):
    """A checkpoint whose config asks for its own code is refused with a plain sentence."""
    model, tok = tiny
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(model_type="custom-x", auto_map={"AutoConfig": "cfg.C", "AutoModelForCausalLM": "mdl.M"})
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UserError, match="trust_remote_code"):
        load_model(str(tmp_path), device="cpu")
