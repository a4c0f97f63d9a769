"""losses.py against hand-computed values (METHODS.md §IHL)."""

import math

import pytest
import torch

from tests.reference import gd, ihl_objective
from unlearning.lora.losses import (Term, activation_distance, answer_logprob, evaluate_terms, ga, ihl, nll, npo, random_direction, reads_of, rmu_forget, rmu_retain, simnpo, splits_of)

M = -100


def logits_from(probs: list[list[list[float]]]) -> torch.Tensor:
    """Logits whose softmax is exactly `probs` (B, T, V)."""
    return torch.tensor(probs).log()


# Position t predicts label t+1. Sequence 0: the token at position 0 predicts label 0 (its
# argmax, p = .7 vs runner-up .2); position 1 predicts label 2 (not its argmax: p = .2 vs .5).
PROBS = [[[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]]
LABELS = torch.tensor([[M, 0, 2]])


def test_ihl_hand_computed_argmax_and_not_argmax():
    # ℓ = 1 + p_y − max_{v≠y} p_v: target is argmax → 1 + .7 − .2 = 1.5; not argmax → 1 + .2 − .5 = .7
    assert ihl(logits_from(PROBS), LABELS).item() == pytest.approx((1.5 + 0.7) / 2, abs=1e-6)


def test_ihl_is_a_token_mean_not_a_mean_of_sequence_means():
    probs = PROBS + [[[0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]]]
    labels = torch.tensor([[M, 0, 2], [M, 1, M]])  # 2 labelled tokens, then 1
    # third token: target 1 with p = .3, runner-up .6 → 1 + .3 − .6 = .7
    assert ihl(logits_from(probs), labels).item() == pytest.approx((1.5 + 0.7 + 0.7) / 3, abs=1e-6)


def test_nll_ga_gd_hand_computed():
    logits = logits_from(PROBS)
    expected = -(math.log(0.7) + math.log(0.2)) / 2
    assert nll(logits, LABELS).item() == pytest.approx(expected, abs=1e-6)
    assert ga(logits, LABELS).item() == pytest.approx(-expected, abs=1e-6)
    retain = logits_from([[[0.25, 0.25, 0.5], [0.5, 0.25, 0.25], [1 / 3, 1 / 3, 1 / 3]]])
    r_labels = torch.tensor([[M, 0, M]])  # one token, predicted at position 0 with p = .25
    assert gd(logits, LABELS, retain, r_labels).item() == pytest.approx(-expected - math.log(0.25), abs=1e-6)
    assert ihl_objective(logits, LABELS, retain, r_labels, 2.0, 0.5).item() == pytest.approx(
        2 * 1.1 - 0.5 * math.log(0.25), abs=1e-6)


def test_ihl_bounds_and_gradient_direction():
    logits = torch.randn(3, 7, 11, requires_grad=True)
    labels = torch.randint(0, 11, (3, 7))
    value = ihl(logits, labels)
    assert 0.0 <= value.item() <= 2.0
    value.backward()
    # descending IHL lowers the target logit of a labelled position (position t predicts t+1)
    assert logits.grad[0, 0, labels[0, 1]] > 0


def test_masked_positions_change_nothing_and_empty_batch_is_zero():
    logits = logits_from(PROBS)
    other = logits.clone()
    other[0, 2] = torch.tensor([5.0, -3.0, 0.0])  # the last position predicts nothing
    assert ihl(other, LABELS).item() == pytest.approx(ihl(logits, LABELS).item())
    empty = torch.full((1, 3), M)
    x = torch.randn(1, 3, 3, requires_grad=True)
    for fn in (ihl, nll, ga):
        out = fn(x, empty)
        assert out.item() == 0.0
        out.backward()  # still attached to the graph


def test_terms_name_every_value_and_weight_the_total():
    logits = logits_from(PROBS)
    terms = (Term("forget_ihl", "forget", ihl, 2.0), Term("retain_nll", "retain", nll, 1.0))
    batch = {"logits": logits, "labels": LABELS}
    values = evaluate_terms(terms, {"forget": batch, "retain": batch})
    assert set(values) == {"forget_ihl", "retain_nll", "total"}
    assert values["total"].item() == pytest.approx(2 * values["forget_ihl"].item() + values["retain_nll"].item())
    assert splits_of(terms) == ("forget", "retain")
    assert splits_of((Term("forget_ga", "forget", ga),)) == ("forget",)


def test_a_term_reads_what_it_names_in_order():
    def fn(labels, logits):  # the reads' order, not the default one
        return nll(logits, labels)

    logits = logits_from(PROBS)
    terms = (Term("forget_x", "forget", fn, 1.0, ("labels", "logits")), Term("retain_r", "retain", nll))
    values = evaluate_terms(terms, {"forget": {"logits": logits, "labels": LABELS}, "retain": {"logits": logits, "labels": LABELS}})
    assert values["forget_x"].item() == pytest.approx(nll(logits, LABELS).item())
    assert reads_of(terms, "forget") == {"labels", "logits"} and reads_of(terms, "retain") == {"logits", "labels"}


# ------------------------------------------------------------------ NPO and SimNPO
# PROBS / LABELS: the labelled tokens have p = .7 and .2, so lp = ln .7 + ln .2 = ln .14, |y| = 2.
# REF: the original model gives them .5 and .4, so lp_ref = ln .2.
REF = [[[0.5, 0.3, 0.2], [0.3, 0.3, 0.4], [0.1, 0.1, 0.8]]]


def test_answer_logprob_sums_the_labelled_tokens_and_counts_them():
    lp, n = answer_logprob(logits_from(PROBS), LABELS)
    assert lp.tolist() == pytest.approx([math.log(0.14)]) and n.tolist() == [2]


def test_npo_hand_computed():
    # (2/β)·log(1 + exp(β·(lp − lp_ref))) = 20·log(1 + exp(0.1·ln(.14/.2))) = 20·log(1 + .7^0.1)
    value = npo(logits_from(PROBS), LABELS, logits_from(REF), beta=0.1)
    assert value.item() == pytest.approx(20 * math.log(1 + 0.7 ** 0.1), abs=1e-5)  # 13.5094
    # β = 1: 2·log(1 + .7) = 1.0613
    assert npo(logits_from(PROBS), LABELS, logits_from(REF), beta=1.0).item() == pytest.approx(2 * math.log(1.7), abs=1e-6)


def test_npo_is_2_log_2_over_beta_while_the_model_is_the_reference_and_a_mean_over_answers():
    logits = logits_from(PROBS)
    assert npo(logits, LABELS, logits, beta=0.1).item() == pytest.approx(20 * math.log(2), abs=1e-5)
    # two answers: the first as above, the second (one token, p = .5 against the reference's .25)
    probs = PROBS + [[[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.2, 0.2, 0.6]]]
    ref = REF + [[[0.25, 0.5, 0.25], [0.2, 0.2, 0.6], [0.2, 0.2, 0.6]]]
    labels = torch.tensor([[M, 0, 2], [M, 0, M]])
    per_answer = [2 * math.log(1 + 0.7), 2 * math.log(1 + 0.5 / 0.25)]  # β = 1: 2·log(1 + p/p_ref)
    value = npo(logits_from(probs), labels, logits_from(ref), beta=1.0)
    assert value.item() == pytest.approx(sum(per_answer) / 2, abs=1e-6)


def test_npo_takes_no_gradient_through_the_reference():
    logits, ref = logits_from(PROBS).requires_grad_(), logits_from(REF).requires_grad_()
    npo(logits, LABELS, ref).backward()
    assert ref.grad is None and logits.grad is not None
    assert logits.grad[0, 0, 0] > 0  # descending it lowers the first labelled token's logit


def test_simnpo_hand_computed():
    # −(2/β)·logsigmoid(β·(ℓ̄ − δ)), ℓ̄ = −lp/|y| the mean NLL per answer token (open-unlearning's
    # form, the margin inside β) = (2/β)·log(1 + exp(−β·ℓ̄ − β·δ)) = (2/β)·log(1 + p̄^β·e^(βδ)),
    # with p̄ = exp(lp/|y|) = √.14, the answer's geometric-mean token probability.
    value = simnpo(logits_from(PROBS), LABELS, beta=4.5, delta=0.0)
    assert value.item() == pytest.approx((2 / 4.5) * math.log(1 + 0.14 ** (4.5 / 2)), abs=1e-6)  # 0.005052


def test_simnpo_margin_sits_inside_beta():
    # β = 2, δ = .5: β·(ℓ̄ − δ) = 2·(−ln √.14 − .5) = −ln .14 − 1, so the value is
    # (2/2)·log(1 + exp(ln .14 + 1)) = log(1 + .14·e) = 0.32249. (δ outside β, the old
    # logsigmoid(−β·lp/|y| − δ), gives log(1 + .14·e^.5) = 0.20768; the sign as
    # METHODS.md prints it, β·(lp/|y| − δ) inside, gives log(1 + .14/e) = 0.05022.)
    value = simnpo(logits_from(PROBS), LABELS, beta=2.0, delta=0.5)
    assert value.item() == pytest.approx(math.log(1 + 0.14 * math.e), abs=1e-6)
    assert value.item() == pytest.approx(0.32249, abs=1e-5)
    # δ > 0 pushes harder: the loss and its pull on the answer grow with δ
    assert simnpo(logits_from(PROBS), LABELS, beta=2.0, delta=1.0).item() > value.item()


def test_simnpo_normalises_by_answer_length_where_npo_does_not():
    # answer A: one token at p = .5; answer B: two tokens at p = .5 each. Same mean per token.
    short = [[[0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.2, 0.2, 0.6]]]
    long = [[[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6]]]
    a, b = torch.tensor([[M, 0, M]]), torch.tensor([[M, 0, 0]])
    expected = 2 * math.log(1 + 0.5)  # β = 1, δ = 0: 2·log(1 + p̄)
    assert simnpo(logits_from(short), a, beta=1.0).item() == pytest.approx(expected, abs=1e-6)
    assert simnpo(logits_from(long), b, beta=1.0).item() == pytest.approx(expected, abs=1e-6)
    both = simnpo(logits_from(short + long), torch.cat([a, b]), beta=1.0)
    assert both.item() == pytest.approx(expected, abs=1e-6)
    uniform = logits_from([[[1 / 3] * 3] * 3])  # reference p = 1/3 everywhere: NPO sees lp − lp_ref = ln 1.5, then 2·ln 1.5
    assert npo(logits_from(short), a, uniform, beta=1.0).item() == pytest.approx(2 * math.log(1 + 1.5), abs=1e-6)
    assert npo(logits_from(long), b, uniform, beta=1.0).item() == pytest.approx(2 * math.log(1 + 1.5 ** 2), abs=1e-6)


def test_npo_and_simnpo_of_a_batch_without_labels_are_zero_and_attached():
    x = torch.randn(2, 3, 3, requires_grad=True)
    empty = torch.full((2, 3), M)
    for value in (npo(x, empty, x.detach()), simnpo(x, empty)):
        assert value.item() == 0.0
        value.backward()
    assert x.grad is not None and not x.grad.any()


def test_npo_and_simnpo_drop_a_row_without_labels():
    """METHODS.md: a row with no labelled token contributes nothing (never 0/0): the batch's value
    is the labelled row's alone, not halved, and the empty row gets no gradient."""
    probs = logits_from(PROBS + [[[0.2, 0.3, 0.5]] * 3]).requires_grad_()
    ref = logits_from(REF + [[[0.2, 0.3, 0.5]] * 3])
    labels = torch.tensor([[M, 0, 2], [M, M, M]])
    value = npo(probs, labels, ref, beta=1.0)
    assert value.item() == pytest.approx(2 * math.log(1 + 0.7), abs=1e-6)  # β = 1: 2·log(1 + p/p_ref), row 0 only
    value.backward()
    assert probs.grad is not None and not probs.grad[1].any() and probs.grad[0].any()
    # SimNPO, β = 1, δ = 0: 2·log(1 + √.14) from row 0 alone
    assert simnpo(logits_from(PROBS + [[[0.2, 0.3, 0.5]] * 3]), labels, beta=1.0).item() == pytest.approx(
        2 * math.log(1 + math.sqrt(0.14)), abs=1e-6)


# --------------------------------------------------------------------------- RMU


def test_activation_distance_is_a_mean_of_sequence_means_of_the_hidden_size_mean():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                           [[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]]])  # (2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [0, 0, 1]])
    # target (1, 0). Row 0: (0² + 2²)/2 = 2 and (2² + 4²)/2 = 10, mean 6; row 1: (0² + 1²)/2 = .5.
    # Mean of the rows: 3.25 (a pooled token mean would be (2 + 10 + .5)/3 = 4.17; a sum over H, 6.5).
    target = torch.tensor([1.0, 0.0])
    assert activation_distance(hidden, target, mask).item() == pytest.approx(3.25)
    # a third row with no labelled position is dropped, never 0/0
    three = torch.cat([hidden, torch.ones(1, 3, 2)])
    assert activation_distance(three, target, torch.cat([mask, torch.zeros(1, 3, dtype=torch.long)])).item() == pytest.approx(3.25)
    # against a (B, T, H) target, all positions: row 0 (2.5 + 12.5 + 30.5)/3, row 1 (0 + 2 + 1)/3
    assert activation_distance(hidden, torch.zeros(2, 3, 2), torch.ones(2, 3)).item() == pytest.approx((45.5 / 3 + 1) / 2)


def test_activation_distance_without_labelled_positions_is_zero_and_attached():
    hidden = torch.randn(2, 3, 4, requires_grad=True)
    value = activation_distance(hidden, torch.ones(4), torch.zeros(2, 3))
    assert value.item() == 0.0
    value.backward()
    assert hidden.grad is not None and not hidden.grad.any()


def test_random_direction_is_a_seeded_unit_vector_drawn_from_its_own_generator():
    state = torch.random.get_rng_state()
    u = random_direction(192, 0)
    assert torch.equal(torch.random.get_rng_state(), state)  # torch's global generator untouched
    assert u.norm().item() == pytest.approx(1.0) and (u >= 0).all()
    assert torch.equal(u, random_direction(192, 0)) and not torch.equal(u, random_direction(192, 1))
    assert random_direction(1, 5).tolist() == [1.0]


def test_rmu_forget_hand_computed_at_its_layer():
    # hidden_states = (embeddings, layer 1, layer 2); in one dimension u = (1), so c·u = c.
    labels = torch.tensor([[5, 6]])  # both positions labelled
    states = (torch.zeros(1, 2, 1), torch.tensor([[[1.0], [7.0]]]), torch.tensor([[[100.0], [100.0]]]))
    # layer 1, c = 4: ((1 − 4)² + (7 − 4)²)/2 = 9
    assert rmu_forget(states, labels, layer=1, steering=4.0, seed=0).item() == pytest.approx(9.0)
    assert rmu_forget(states, labels, layer=2, steering=4.0, seed=0).item() == pytest.approx(96.0 ** 2)
    # hidden state t is read where label t is set (unshifted, as open-unlearning): c = 3
    assert rmu_forget(states, torch.tensor([[5, M]]), layer=1, steering=3.0, seed=0).item() == pytest.approx(4.0)  # (1 − 3)²
    assert rmu_forget(states, torch.tensor([[M, 6]]), layer=1, steering=3.0, seed=0).item() == pytest.approx(16.0)  # (7 − 3)²
    # in two dimensions: ‖h − c·u‖²/H = (‖h‖² − 2c·h·u + c²)/2
    h = torch.tensor([[[3.0, -1.0]]])
    u = random_direction(2, 7)
    expected = (10 - 2 * 2.0 * (3 * u[0].item() - u[1].item()) + 4) / 2
    assert rmu_forget((h, h), torch.tensor([[1]]), layer=1, steering=2.0, seed=7).item() == pytest.approx(expected, abs=1e-5)


def test_rmu_retain_hand_computed_and_zero_for_the_original():
    labels = torch.tensor([[5, 6, M]])  # the third position carries no label (padding or prompt)
    ref = (torch.zeros(1, 3, 2), torch.tensor([[[1.0, 1.0], [0.0, 2.0], [9.0, 9.0]]]))
    states = (ref[0], torch.tensor([[[2.0, 3.0], [0.0, 2.0], [0.0, 0.0]]]).requires_grad_())
    # (1² + 2²)/2 = 2.5 and 0 at the two labelled positions: mean 1.25
    value = rmu_retain(states, ref, labels, layer=1)
    assert value.item() == pytest.approx(1.25)
    value.backward()
    assert states[1].grad[0, 2].abs().sum() == 0  # an unlabelled position gets no gradient
    assert rmu_retain(ref, ref, labels, layer=1).item() == 0.0
