"""NPO, SimNPO and RMU (METHODS.md §IHL, baselines) through the shared trainer on the tiny
model: the reference terms, the weights, RMU's layers. The losses themselves: test_losses.py."""

import copy
import math

import pytest
import torch

from unlearning.batches import collate, encode_dataset, pad_id
from unlearning.lora.losses import activation_distance, random_direction
from unlearning.methods import get_method
from unlearning.methods.rmu import RmuSettings, decoder_layer
from unlearning.models import Loaded
from unlearning.settings import build
from unlearning.lora.trainer import LoraSettings

from .test_methods import SPLITS, run_method


@pytest.fixture
def loaded(tiny):
    model, tok = tiny
    return Loaded(copy.deepcopy(model), tok, "tiny", "cpu")


def first_step(name: str, loaded: Loaded, **settings) -> dict[str, float]:
    run = run_method(name, loaded, steps=1, **settings)
    run.wait()
    assert run.state == "done", run.traceback
    return run.result.history[0]


def test_the_baselines_follow_gd_fila_in_the_menu_with_their_own_settings():
    orders = [get_method(n).order for n in ("gd-fila", "npo", "simnpo", "rmu")]
    assert orders == sorted(orders) and len(set(orders)) == 4
    assert (get_method("npo").Config().beta, get_method("simnpo").Config().beta) == (0.7, 4.5)  # NPO's β: the kit's
    simnpo = get_method("simnpo").Config()
    assert (simnpo.forget_weight, simnpo.retain_weight) == (0.125, 1.0)  # γ and α of open-unlearning
    assert simnpo.delta == 1.0  # the kit's (open-unlearning: 0; benchmarks/RESULTS.md, issue 23)
    rmu = get_method("rmu").Config()
    assert (rmu.layer, rmu.steering, rmu.retain_weight) == (2, 2000.0, 10.0)
    for name in ("npo", "simnpo", "rmu"):
        assert "arXiv" in get_method(name).summary and get_method(name).label.startswith("baseline: ")


def test_settings_of_keeps_the_shared_fields_and_defaults_the_rest():
    own = RmuSettings.of(LoraSettings(seed=3, rank=4))
    assert (own.seed, own.rank, own.layer) == (3, 4, 2)
    cfg = RmuSettings(layer=1)
    assert RmuSettings.of(cfg) is cfg


def test_npo_starts_at_2_log_2_over_beta_because_its_reference_is_the_original(loaded):
    # at step 1 the adapters are 0 (B = 0), so lp_θ = lp_ref exactly and every answer scores (2/β)·log 2
    record = first_step("npo", loaded)  # at the default β = 0.7
    assert record["forget_npo"] == pytest.approx(2 / 0.7 * math.log(2), abs=1e-4)
    assert first_step("npo", loaded, beta=1.0)["forget_npo"] == pytest.approx(2 * math.log(2), abs=1e-5)


def test_simnpo_weighs_its_forget_term_by_gamma(loaded):
    record = first_step("simnpo", loaded)
    assert record["total"] == pytest.approx(0.125 * record["forget_simnpo"] + record["retain_nll"], rel=1e-5)
    assert first_step("simnpo", loaded, forget_weight=1.0)["total"] == pytest.approx(
        record["forget_simnpo"] + record["retain_nll"], rel=1e-5)


def test_rmu_step_0_retain_is_0_and_forget_is_the_originals_distance_to_c_u(loaded):
    model, tok = loaded.model, loaded.tokenizer
    run = run_method("rmu", loaded, steps=1, layer=1, steering=7.0, batch_size=4)  # one batch: the 4 forget examples
    run.wait()
    record = run.result.history[0]
    assert record["retain_rmu"] == 0.0  # the adapters are 0: h_ℓ = h_ℓ^orig exactly
    batch = collate(encode_dataset(tok, SPLITS["forget"]), pad_id(tok))
    with run.result.view("original") as m, torch.no_grad():
        h = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True).hidden_states[1]
    expected = activation_distance(h, 7.0 * random_direction(h.shape[-1], 0), batch["labels"] != -100)  # the answers
    assert record["forget_rmu"] == pytest.approx(expected.item(), rel=1e-5)
    assert record["total"] == pytest.approx(record["forget_rmu"], rel=1e-6)


def test_rmu_adapts_only_the_layers_up_to_its_own(loaded):
    for layer, adapted in ((1, {0}), (2, {0, 1})):
        run = run_method("rmu", loaded, steps=1, layer=layer)
        run.wait()
        layers = run.result.adapters._layers()
        assert {decoder_layer(n) for n in layers} == adapted and len(layers) == 7 * len(adapted)
        run.result.release()
    run = run_method("rmu", loaded, steps=1, layer=3)
    run.wait()
    assert run.state == "failed" and "--layer must be at most 2" in run.error
    assert not any("lora" in n for n, _ in loaded.model.named_parameters())  # nothing left on the base


def test_decoder_layer_is_the_first_number_in_a_module_name():
    assert decoder_layer("model.layers.3.mlp.up_proj") == 3
    assert decoder_layer("transformer.h.11.attn.c_attn") == 11
    assert decoder_layer("lm_head") is None


def test_bad_baseline_settings_are_user_errors():
    from unlearning.errors import UserError

    with pytest.raises(UserError, match="--beta"):
        build(get_method("npo").Config, {"beta": 0})
    with pytest.raises(UserError, match="--layer"):
        build(get_method("rmu").Config, {"layer": 0})
