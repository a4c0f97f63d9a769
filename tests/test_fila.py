"""fila.py against hand computations (METHODS.md §FILA), and FILA's step 0 on the tiny model."""

import copy
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import torch

from unlearning.batches import collate, encode_dataset, pad_id
from unlearning.data import QA, Dataset
from unlearning.errors import UserError
from unlearning.lora.fila import (EPS, ExactSVD, FisherStats, RandomizedSVD, accumulate_fisher, eps_share_message, fila_init, relative_importance, row_weights, weighted_low_rank)
from unlearning.lora.adapters import Adapters, target_linears
from unlearning.lora.trainer import FisherInit, LoraSettings, TrainData


class Toy(torch.nn.Module):
    """Two layers with no nonlinearity, so the gradients are easy to write by hand:
    logits_t = W2 · W1 · E[x_t]."""

    def __init__(self, vocab=5, dim=3, hidden=4):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, dim)
        self.l1 = torch.nn.Linear(dim, hidden, bias=False)
        self.l2 = torch.nn.Linear(hidden, vocab, bias=False)

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        return SimpleNamespace(logits=self.l2(self.l1(self.emb(input_ids))))


def hand_grads(toy: Toy, ids: list[list[int]], labels: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """∂(mean token CE)/∂W1 and ∂/∂W2 written out: δ_t = (softmax(z_t) − onehot(y))/N,
    ∂W2 = Σ δ_t h_tᵀ, ∂W1 = Σ (W2ᵀ δ_t) e_tᵀ, over positions t whose next label is kept."""
    E, W1, W2 = toy.emb.weight.detach(), toy.l1.weight.detach(), toy.l2.weight.detach()
    pairs = [(row[t], lab[t + 1]) for row, lab in zip(ids, labels) for t in range(len(row) - 1) if lab[t + 1] != -100]
    n = len(pairs)
    g1, g2 = torch.zeros_like(W1), torch.zeros_like(W2)
    for x, y in pairs:
        e = E[x]
        h = W1 @ e
        z = W2 @ h
        delta = (torch.softmax(z, 0) - torch.nn.functional.one_hot(torch.tensor(y), len(z)).float()) / n
        g2 += torch.outer(delta, h)
        g1 += torch.outer(W2.T @ delta, e)
    return g1, g2, n


def test_fisher_two_layer_toy_matches_hand_computation():
    toy = Toy()
    f1 = ([[1, 2, 3], [4, 0, 2]], [[-100, 2, 3], [-100, -100, 2]])  # 3 labelled tokens
    f2 = ([[3, 1, 1]], [[-100, 1, 4]])  # 2
    r1 = ([[2, 2, 0], [1, 3, 4]], [[-100, 4, 0], [-100, 3, 4]])  # 4
    r2 = ([[0, 4, 1]], [[-100, -100, 1]])  # 1

    def batch(ids, labels):
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.ones(len(ids), len(ids[0]), dtype=torch.long),
                "labels": torch.tensor(labels)}

    batches = [{"forget": batch(*f1), "retain": batch(*r1)}, {"forget": batch(*f2), "retain": batch(*r2)}]
    weights = {"l1": toy.l1.weight, "l2": toy.l2.weight}
    stats = accumulate_fisher(toy, weights, batches)
    with ThreadPoolExecutor(1) as pool:  # each batch's retain half on a second thread: the same sums
        side_by_side = accumulate_fisher(toy, weights, batches, pool=pool)
    assert (side_by_side.n_forget, side_by_side.n_retain) == (stats.n_forget, stats.n_retain) == (5, 5)
    for split in ("forget", "retain"):
        for name in weights:
            assert torch.equal(getattr(side_by_side, split)[name], getattr(stats, split)[name])

    for split, parts in (("forget", (f1, f2)), ("retain", (r1, r2))):
        want1, want2, total = torch.zeros(4, 3), torch.zeros(5, 4), 0
        for ids, labels in parts:
            g1, g2, n = hand_grads(toy, ids, labels)
            want1 += n * g1**2
            want2 += n * g2**2
            total += n
        got = getattr(stats, split)
        torch.testing.assert_close(got["l1"], want1, rtol=1e-5, atol=1e-9)
        torch.testing.assert_close(got["l2"], want2, rtol=1e-5, atol=1e-9)
        assert got["l1"].dtype == torch.float32
    assert (stats.n_forget, stats.n_retain) == (5, 5)
    # the model is left as it was: no .grad, flags unchanged
    assert toy.l1.weight.grad is None and toy.l1.weight.requires_grad


def test_relative_importance_and_eps_share_by_hand():
    stats = FisherStats(forget={"w": torch.tensor([[2.0, 4.0], [6.0, 8.0]])},
                        retain={"w": torch.tensor([[0.0, 2e-6], [2e-4, 2.0]])}, n_forget=2, n_retain=2)
    f_rel, share = relative_importance(stats)
    # F_f/N_f = [[1, 2], [3, 4]]; F_r/N_r = [[0, 1e-6], [1e-4, 1]]
    want = torch.tensor([[1 / EPS, 2 / (EPS + 1e-6)], [3 / (EPS + 1e-4), 4 / (EPS + 1.0)]])
    torch.testing.assert_close(f_rel["w"], want)
    assert share == 0.5  # ε exceeds F_r/N_r in the two entries 0 and 1e-6
    torch.testing.assert_close(row_weights(f_rel["w"]), want.sum(1).sqrt())
    assert "50.0%" in eps_share_message(share)
    assert "most of them" in eps_share_message(0.9)
    with pytest.raises(UserError):
        relative_importance(FisherStats({"w": torch.ones(1)}, {"w": torch.ones(1)}, 0, 3))


def test_weighted_low_rank_exact_and_randomized_agree_and_are_seeded():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(60, 4, generator=g) @ torch.randn(4, 50, generator=g)  # rank 4
    w = torch.rand(60, generator=g) + 0.5
    u, s, v = weighted_low_rank(m, w, 4, seed=0)
    torch.testing.assert_close(u * s @ v.T, w[:, None] * m, rtol=1e-4, atol=1e-4)
    ru, rs, rv = RandomizedSVD()(w[:, None] * m, 4, torch.Generator().manual_seed(3))
    torch.testing.assert_close(rs, s, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ru * rs @ rv.T, u * s @ v.T, rtol=1e-4, atol=1e-4)
    again = RandomizedSVD()(w[:, None] * m, 4, torch.Generator().manual_seed(3))
    assert torch.equal(again[0], ru)
    eu, es, ev = ExactSVD()(w[:, None] * m, 2, torch.Generator())
    assert eu.shape == (60, 2) and es.shape == (2,) and ev.shape == (50, 2)


def test_fila_init_shapes_and_product():
    g = torch.Generator().manual_seed(2)
    W = torch.randn(6, 5, generator=g)
    w = torch.rand(6, generator=g) + 0.1
    r, alpha = 3, 6.0
    a0, b0 = fila_init(W, w, r, alpha)
    assert a0.shape == (r, 5) and b0.shape == (6, r)
    u, s, vh = torch.linalg.svd(w[:, None] * W, full_matrices=False)
    best = (u[:, :r] * s[:r]) @ vh[:r] / (w + 1e-5)[:, None]  # diag(1/(w+1e-5)) · rank-r of diag(w)W
    torch.testing.assert_close((alpha / r) * b0 @ a0, best, rtol=1e-5, atol=1e-5)
    # at full rank the product is W itself, up to the 1e-5 in the row weights
    a_full, b_full = fila_init(W, w, 5, 10.0)
    torch.testing.assert_close(2.0 * b_full @ a_full, W * (w / (w + 1e-5))[:, None], rtol=1e-4, atol=1e-5)
    with pytest.raises(UserError, match="rank"):
        fila_init(W, w, 8, 16.0)


class Ctx:
    def progress(self, fraction, message=""): pass
    def log(self, message): self.logged = message
    def check_cancel(self): pass


def qa(n: int, offset: int = 0) -> Dataset:
    return Dataset("qa", "qa", [QA(f"Who wrote note {i + offset}?", f"Ada wrote note {i + offset} in 18{i + offset}.")
                                for i in range(n)])


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.bfloat16, 1e-2)])
def test_fila_step_zero_changes_no_logit(tiny, dtype, tolerance):
    """FILA's adapter and its frozen offset cancel at step 0. On a bf16 base (a GPU) they did
    not while peft made them bf16 (max |Δlogit| 0.19 on a 0.5 B model): they stay float32."""
    model, tok = tiny
    model = copy.deepcopy(model).to(dtype)
    loaded = SimpleNamespace(model=model, tokenizer=tok, name="tiny", device="cpu")
    data = TrainData(encode_dataset(tok, qa(6)), encode_dataset(tok, qa(6, 10)), pad_id(tok))
    cfg = LoraSettings(rank=8, batch_size=3)
    batch = collate(data.forget + data.retain, pad_id(tok))
    with torch.no_grad():
        before = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    adapters = Adapters.create(model, "ihl-fila", cfg.rank, 2 * cfg.rank, with_offset=True)
    init, report = FisherInit()(Ctx(), loaded, adapters, data, cfg)
    adapters.write_init(init)
    assert {p.dtype for p in adapters.parameters()} == {torch.float32}
    with adapters.use() as m, torch.no_grad():
        after = m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        # the trained adapter alone is far from zero: the offset is what cancels it
        assert max(float(p.abs().max()) for p in adapters.parameters()) > 1e-3
    assert after.dtype == dtype
    assert float((after.float() - before.float()).abs().max()) <= tolerance
    assert 0.0 <= report["eps_share"] <= 1.0
    assert set(target_linears(model)) == {n for n, _ in model.named_modules()
                                          if n.split(".")[-1].endswith("proj") and "lora" not in n}
    adapters.remove()
    assert not any("lora" in n for n, _ in model.named_parameters())
    assert {p.dtype for p in model.parameters()} == {dtype}
