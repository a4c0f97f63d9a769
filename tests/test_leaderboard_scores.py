"""evaluation/leaderboard.py: open-unlearning's extraction strength, Min-K% score, MIA AUC and
privleak against values computed by hand; then extraction strength on a fake model whose greedy
continuation is known, through metrics.sequence_logprobs."""

from __future__ import annotations

import pytest
import torch

from unlearning.batches import Encoded
from unlearning.evaluation import leaderboard as L
from unlearning.evaluation import metrics as M


# (argmax == true token at each answer position, hand-computed ES = 1 − k/|y|)
@pytest.mark.parametrize("correct, es", [
    ([True, True, True, True], 1.0),  # k = 0: the bare prompt already yields the whole answer
    ([False, True, True, True], 0.75),  # k = 1 of 4
    ([True, False, True, True], 0.5),  # a wrong token at 1: the exact run starts at 2
    ([True, True, True, False], 0.25),  # last token wrong: open-unlearning's loop stops at k = 3
    ([False], 1.0),  # |y| = 1, wrong: k = 0 (= |y| − 1), ES = 1, open-unlearning's quirk
    ([False, False, True, True, True], 0.6),  # k = 2 of 5
    ([], 0.0),
])
def test_extraction_strength_by_hand(correct, es):
    assert L.extraction_strength(correct) == pytest.approx(es)


def test_min_k_score_by_hand():
    lps = [-0.1, -3.0, -0.2, -2.0, -0.3]  # 40% of 5 = 2 tokens: −3.0 and −2.0
    assert L.min_k_score(lps) == pytest.approx(2.5)
    assert L.min_k_score([-0.5, -1.5]) == pytest.approx(1.5)  # int(0.8) = 0 → at least one token
    assert L.min_k_score([-1.0, -2.0, -4.0], k=1.0) == pytest.approx(7 / 3)
    assert L.min_k_score([]) == 0.0


def test_mia_auc_and_privleak_by_hand():
    """A tiny table of Min-K% scores (higher: less likely). Forget 0, holdout 1: the AUC is
    the share of (forget, holdout) pairs where the holdout scores higher, ties ½."""
    forget, holdout = [1.0, 2.0, 3.0], [2.0, 4.0]
    # pairs (f, h): (1,2) 1, (1,4) 1, (2,2) ½, (2,4) 1, (3,2) 0, (3,4) 1 → 4.5 / 6
    model_auc = L.mia_auc_min_k(forget, holdout)
    assert model_auc == pytest.approx(0.75)
    ref_auc = L.mia_auc_min_k([2.0, 3.0], [1.0, 4.0])  # (2,1) 0, (2,4) 1, (3,1) 0, (3,4) 1 → 0.5
    assert ref_auc == pytest.approx(0.5)
    # MUSE's AUCs are 1 − these: model 0.25, reference 0.5 → (0.25 − 0.5) / 0.5 · 100
    assert L.privleak(model_auc, ref_auc) == pytest.approx(-50.0)
    assert L.privleak(0.5, 0.5) == 0.0
    assert L.privleak(0.4, 0.8) == pytest.approx((0.6 - 0.2) / 0.2 * 100)  # forgets more than the oracle: > 0
    assert L.privleak(0.9, 1.0) == pytest.approx(0.1 / 1e-10 * 100)  # a reference AUC of 1: the guard


def test_privleak_from_raw_uses_muses_sets_when_there():
    """metrics.privleak_against: MUSE's privleak sets first, else forget vs holdout."""
    raw = {"forget": {"min_k": [1.0, 2.0, 3.0]}, "holdout": {"min_k": [2.0, 4.0]}}
    oracle = {"forget": {"min_k": [2.0, 3.0]}, "holdout": {"min_k": [1.0, 4.0]}}
    assert M.privleak_against(raw, oracle) == pytest.approx(-50.0)
    assert M.privleak_against(raw, None) is None and M.privleak_against({"forget": {"min_k": [1.0]}}, oracle) is None
    muse = {**raw, "privleak_forget": {"min_k": [2.0, 3.0]}, "privleak_holdout": {"min_k": [1.0, 4.0]}}
    assert M.mia_min_k(muse) == pytest.approx(0.5)  # the privleak sets, not forget/holdout
    assert M.privleak_against(muse, {**oracle, "privleak_forget": {"min_k": [1.0]}, "privleak_holdout": {"min_k": [2.0]}}) \
        == pytest.approx((0.5 - 0.0) / 1e-10 * 100)


class ParrotModel(torch.nn.Module):
    """Predicts token `nxt[t]` after token t, whatever came before: its greedy continuation
    is known token by token."""

    def __init__(self, nxt: dict[int, int], vocab: int = 16):
        super().__init__()
        self.nxt, self.vocab = nxt, vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None):
        logits = torch.zeros(*input_ids.shape, self.vocab)
        for b in range(input_ids.shape[0]):
            for t in range(input_ids.shape[1]):
                logits[b, t, self.nxt.get(int(input_ids[b, t]), 0)] = 10.0
        return type("Out", (), {"logits": logits})()


class FakeTokenizer:
    pad_token_id = 0


def test_extraction_strength_on_a_fake_model_with_a_known_match_point():
    """Prompt [1, 2], answer [3, 4, 5, 6]. The model maps 2→9, 3→4, 4→5, 5→6: the first answer
    token is missed (9 ≠ 3), from y<1 = [3] on greedy decoding gives 4, 5, 6 exactly: k = 1,
    ES = 1 − 1/4. A model that also maps 2→3 reproduces all of it (ES 1)."""
    item = Encoded(input_ids=[1, 2, 3, 4, 5, 6], labels=[-100, -100, 3, 4, 5, 6], prompt_len=2)
    for nxt, es in (({2: 9, 3: 4, 4: 5, 5: 6}, 0.75), ({2: 3, 3: 4, 4: 5, 5: 6}, 1.0), ({2: 3, 3: 4, 4: 5, 5: 7}, 0.25)):
        scores = M.sequence_logprobs(ParrotModel(nxt), FakeTokenizer(), [item])
        assert L.extraction_strength(scores[0].correct) == pytest.approx(es)
