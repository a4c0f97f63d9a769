"""ECO corruption functions against hand-computed tensors (METHODS.md §ECO, item 4)."""

from __future__ import annotations

import pytest
import torch

from unlearning.eco.corruption import CORRUPTIONS, corrupt_rows, make_corruption
from unlearning.errors import UserError

E = torch.tensor([[1.0, -5.0, 3.0, 0.5],
                  [4.0, 0.0, -1.0, 2.0]])  # (P=2, d=4)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registry_has_the_five_functions_and_refuses_others():
    assert set(CORRUPTIONS) == {"rand_noise_first_n", "rand_noise_rand_n", "rand_noise_top_k",
                                "zero_out_top_k", "flip_sign_top_k"}
    with pytest.raises(UserError, match="known ones"):
        make_corruption("scramble")


def test_zero_out_top_k_zeroes_the_largest_magnitudes():
    out = make_corruption("zero_out_top_k").apply(E, 2, gen())
    # row 0: |−5| and |3| are the two largest; row 1: |4| and |2|.
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 0.0, 0.5], [0.0, 0.0, -1.0, 0.0]]))


def test_flip_sign_top_k_negates_the_largest_magnitudes():
    out = make_corruption("flip_sign_top_k").apply(E, 2, gen())
    assert torch.equal(out, torch.tensor([[1.0, 5.0, -3.0, 0.5], [-4.0, 0.0, -1.0, -2.0]]))


def test_top_k_strength_is_rounded_and_clamped_to_the_width():
    f = make_corruption("flip_sign_top_k")
    assert torch.equal(f.apply(E, 0.4, gen()), E)  # k rounds to 0: nothing changes
    assert torch.equal(f.apply(E, 99, gen()), -E)  # k > d: every dim
    assert f.integer_strength and f.strength_range(4) == (1.0, 4.0)


def test_rand_noise_first_n_adds_sigma_times_standard_normal_to_the_first_n_dims():
    out = make_corruption("rand_noise_first_n", n_dims=2).apply(E, 3.0, gen(7))
    z = torch.randn((2, 2), generator=gen(7))  # the draws the function makes
    assert torch.allclose(out[:, :2], E[:, :2] + 3.0 * z)
    assert torch.equal(out[:, 2:], E[:, 2:])


def test_noise_scales_linearly_with_sigma_and_is_seeded():
    f = make_corruption("rand_noise_first_n", n_dims=1)
    d1, d2 = f.apply(E, 1.0, gen(3)) - E, f.apply(E, 2.0, gen(3)) - E
    assert torch.allclose(d2, 2 * d1)
    assert torch.equal(f.apply(E, 1.0, gen(3)), f.apply(E, 1.0, gen(3)))
    assert not torch.equal(f.apply(E, 1.0, gen(3)), f.apply(E, 1.0, gen(4)))


def test_rand_noise_rand_n_touches_the_same_n_dims_at_every_position():
    out = make_corruption("rand_noise_rand_n", n_dims=2).apply(E, 5.0, gen(1))
    changed = out != E  # (P, d)
    assert changed.sum(1).tolist() == [2, 2]
    assert torch.equal(changed[0], changed[1])
    dims = torch.randperm(4, generator=gen(1))[:2]  # the draw the function makes first
    assert changed[0, dims].all()


def test_rand_noise_top_k_touches_only_each_positions_largest_dims():
    out = make_corruption("rand_noise_top_k", n_dims=1).apply(E, 5.0, gen(2))
    changed = (out != E).nonzero().tolist()
    assert changed == [[0, 1], [1, 0]]  # argmax |e|: dim 1 in row 0, dim 0 in row 1


def test_corrupt_rows_touches_only_the_positions_and_leaves_unflagged_rows_alone():
    embeds = torch.arange(3 * 5 * 4, dtype=torch.float32).reshape(3, 5, 4) + 1  # (B, T, d), no zeros
    flip_all = make_corruption("flip_sign_top_k")
    out = corrupt_rows(embeds, [range(1, 4), None, range(0, 2)], flip_all, strength=4, seeds=[0, 0, 0])
    expected = embeds.clone()
    expected[0, 1:4] *= -1  # positions 1..3; position 4 (the last prompt token) untouched
    expected[2, 0:2] *= -1
    assert torch.equal(out, expected)
    assert torch.equal(out[1], embeds[1])  # the unflagged row is bit-identical
    assert torch.equal(embeds[0, 1], torch.arange(4, 8, dtype=torch.float32) + 1)  # input not modified


def test_corrupt_rows_does_not_depend_on_the_rest_of_the_batch():
    torch.manual_seed(0)
    embeds = torch.randn(3, 6, 8)
    noise = make_corruption("rand_noise_first_n", n_dims=3)
    batch = corrupt_rows(embeds, [range(0, 5), range(1, 5), range(2, 5)], noise, 2.0, seeds=[11, 12, 13])
    alone = corrupt_rows(embeds[1:2], [range(1, 5)], noise, 2.0, seeds=[12])
    assert torch.equal(batch[1], alone[0])
    assert not torch.equal(batch[0, :5, :3], embeds[0, :5, :3])


def test_corrupt_rows_keeps_dtype_and_empty_positions():
    embeds = torch.ones(2, 3, 4, dtype=torch.bfloat16)
    out = corrupt_rows(embeds, [range(0, 0), range(0, 2)], make_corruption("zero_out_top_k"), 4, seeds=[0, 1])
    assert out.dtype == torch.bfloat16
    assert torch.equal(out[0], embeds[0])
    assert out[1, :2].abs().sum() == 0 and torch.equal(out[1, 2], embeds[1, 2])


def test_corrupt_rows_takes_scattered_positions():
    # The paper protocol corrupts a subject's name wherever it occurs: positions need not touch.
    embeds = torch.arange(2 * 6 * 4, dtype=torch.float32).reshape(2, 6, 4) + 1
    out = corrupt_rows(embeds, [[0, 2, 3], [5]], make_corruption("flip_sign_top_k"), strength=4, seeds=[0, 1])
    expected = embeds.clone()
    expected[0, [0, 2, 3]] *= -1
    expected[1, 5] *= -1
    assert torch.equal(out, expected)
