"""losses.py against hand-computed values (METHODS.md §IHL)."""

import math

import pytest
import torch

from unlearning.losses import Term, evaluate_terms, ga, gd, ihl, ihl_objective, nll, splits_of

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
    values = evaluate_terms(terms, {"forget": (logits, LABELS), "retain": (logits, LABELS)})
    assert set(values) == {"forget_ihl", "retain_nll", "total"}
    assert values["total"].item() == pytest.approx(2 * values["forget_ihl"].item() + values["retain_nll"].item())
    assert splits_of(terms) == ("forget", "retain")
    assert splits_of((Term("forget_ga", "forget", ga),)) == ("forget",)
