"""--device-map / UNLEARNING_DEVICE_MAP: accelerate's big-model loading (models.load_model), and
a model whose layers accelerate's hooks dispatch — evaluated, decoded and trained by LoRA as
a plain one is. On the CPU the hooks are forced (`dispatch_model(force_hooks=True)`) or come
from a disk offload, the two kinds of dispatched model a machine without GPUs can hold."""

from __future__ import annotations

import copy

import pytest
import torch

from tests.test_methods import SPLITS, logits, run_method
from unlearning.batches import encode_dataset
from unlearning.cli import main
from unlearning.errors import UserError
from unlearning.generate import generate_ids, greedy_tokens, prompt_ids
from unlearning.lora.adapters import check_trainable
from unlearning.evaluation.metrics import sequence_logprobs
from unlearning.models import Loaded, input_device, load_model

LAYOUT = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu", "model.layers.1": "cpu",
          "model.norm": "cpu", "lm_head": "cpu"}


@pytest.fixture
def folder(tiny, tmp_path):
    model, tok = tiny
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return tmp_path


def test_auto_on_a_machine_without_gpus_is_the_plain_model_on_the_cpu(tiny, folder):
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: auto would place the model on it")
    loaded = load_model(str(folder), device_map="auto")
    assert (loaded.device, loaded.device_map) == ("cpu", {"": "cpu"}) and not loaded.model.training
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, tiny[0](ids).logits)


def test_bad_device_map_is_one_sentence(folder, capsys):
    with pytest.raises(UserError, match="Device map 'everywhere' is not one of auto"):
        load_model(str(folder), device_map="everywhere")
    assert main(["chat", "--model", str(folder), "--prompt", "Hi", "--device-map", "everywhere"]) == 2
    assert "--device-map" in capsys.readouterr().err


def dispatched(folder, tmp_path, layout) -> Loaded:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, device_map=layout,
                                                 offload_folder=str(tmp_path / "offload")).eval()
    if not hasattr(model.get_input_embeddings(), "_hf_hook"):  # one device: transformers adds no hooks
        from accelerate import dispatch_model

        model = dispatch_model(model, device_map=layout, force_hooks=True)
    assert hasattr(model.get_input_embeddings(), "_hf_hook")  # accelerate's hooks run it
    return Loaded(model, AutoTokenizer.from_pretrained(folder), "dispatched", "cpu", dict(layout))


@pytest.mark.parametrize("where", ["hooks", "disk"])
def test_a_dispatched_model_evaluates_and_decodes_as_the_plain_one(tiny, folder, tmp_path, where):
    model, tok = tiny
    loaded = dispatched(folder, tmp_path, LAYOUT | ({"model.layers.1": "disk"} if where == "disk" else {}))
    assert input_device(loaded.model) == torch.device("cpu")
    items = encode_dataset(tok, SPLITS["forget"])
    plain, placed = sequence_logprobs(model, tok, items), sequence_logprobs(loaded.model, tok, items)
    for a, b in zip(plain, placed, strict=True):
        assert b.correct == a.correct and b.token_logprobs == pytest.approx(a.token_logprobs, abs=1e-5)
    ids = [prompt_ids(tok, "Who wrote note 1?"), prompt_ids(tok, "Marie Curie won")]
    assert generate_ids(loaded.model, tok, ids, 8) == generate_ids(model, tok, ids, 8)
    assert list(greedy_tokens(loaded.model, ids[0], tok.eos_token_id, 8)) == list(greedy_tokens(model, ids[0], tok.eos_token_id, 8))


def test_lora_trains_on_a_dispatched_model_as_on_the_plain_one(tiny, folder, tmp_path):
    model, tok = tiny
    plain = Loaded(copy.deepcopy(model), tok, "tiny", "cpu")
    placed = dispatched(folder, tmp_path, LAYOUT)
    runs = [run_method("ihl-fila", x) for x in (plain, placed)]
    for run in runs:
        run.wait()
        assert run.state == "done", run.error
    (a, b) = (r.result for r in runs)
    assert [h["total"] for h in b.history] == pytest.approx([h["total"] for h in a.history], abs=1e-5)
    with a.view("unlearned") as ma:
        want = logits(ma, tok)
    with b.view("unlearned") as mb:
        torch.testing.assert_close(logits(mb, tok), want, atol=1e-5, rtol=1e-5)


def test_lora_refuses_layers_offloaded_off_the_gpus(folder, tmp_path):
    loaded = dispatched(folder, tmp_path, LAYOUT | {"model.layers.1": "disk"})
    with pytest.raises(UserError, match="offloaded some of its layers"):
        check_trainable(loaded)
    check_trainable(Loaded(loaded.model, loaded.tokenizer, "m", "cuda", {"model": 0, "lm_head": 1}))


def test_an_eco_guard_on_a_dispatched_model_corrupts_as_on_the_plain_one(tiny, folder, tmp_path):
    from tests.test_eco_guard import keyword_classifier
    from unlearning.eco.corruption import make_corruption
    from unlearning.eco.guard import Guard

    model, tok = tiny
    placed = dispatched(folder, tmp_path, LAYOUT | {"model.layers.1": "disk"})
    guards = [Guard(m, tok, keyword_classifier(), make_corruption("rand_noise_first_n"), 50.0, 0) for m in (model, placed.model)]
    ids = [prompt_ids(tok, "Where was Yara born?"), prompt_ids(tok, "Who wrote note 1?")]  # flagged, not flagged
    for row, flagged in zip(ids, (True, False)):
        x = torch.tensor([row])
        with torch.no_grad():
            plain, on_hooks = (g(input_ids=x, attention_mask=torch.ones_like(x)).logits for g in guards)
            clean = model(input_ids=x).logits
        torch.testing.assert_close(on_hooks, plain, atol=1e-5, rtol=1e-5)
        assert torch.equal(plain, clean) != flagged  # only the flagged prompt is corrupted
