"""ECO's prompt classifier: features, conformal threshold, training, cross-validation, and
the workshop acceptance figure (recall ≥ 0.95 at FPR ≤ 0.01, k-fold)."""

from __future__ import annotations

import pytest
import torch

from unlearning.data import load_file
from unlearning.eco.features import DEFAULT_ENCODER, Featurizer, char_ngrams, get_encoder, segments, squashed
from unlearning.eco.training import (HeadSettings, conformal_threshold, fit_classifier, general_prompts, new_head,
                                     train_head)
from unlearning.models import WORKSHOP_DIR


class NoEmbedding:
    """An encoder with no dimensions: the features are the character n-grams alone."""

    dim = 0

    def embed(self, texts):
        return torch.zeros(len(texts), 0)


@pytest.fixture(scope="module")
def minilm():
    return get_encoder(DEFAULT_ENCODER, "cpu")  # loaded once per process, shared by every test file


def test_conformal_threshold_is_the_right_order_statistic():
    scores = [i / 200 for i in range(199, 0, -1)]  # n = 199 held-out negatives, unsorted
    # α = 0.01: ⌈200 · 0.99⌉ = 198 → the 198th smallest; α = 0.05: ⌈200 · 0.95⌉ = 190.
    assert conformal_threshold(scores, 0.01) == pytest.approx(198 / 200)
    assert conformal_threshold(scores, 0.05) == pytest.approx(190 / 200)
    assert conformal_threshold([0.3, 0.1, 0.2, 0.4], 0.5) == 0.3  # ⌈5 · 0.5⌉ = 3rd smallest


def test_conformal_threshold_with_too_few_scores_uses_the_maximum():
    assert conformal_threshold([0.2, 0.9, 0.5], 0.01) == 0.9  # ⌈4 · 0.99⌉ = 4 > n = 3
    with pytest.raises(ValueError):
        conformal_threshold([], 0.01)


def test_char_ngrams_are_stable_normalised_and_case_blind():
    a, b, c = char_ngrams(["Where was Yara born?", "WHERE  was yara born?", "Where was Ivo born?"], 256)
    assert torch.equal(a, b)  # lower-cased, whitespace collapsed
    assert a.norm().item() == pytest.approx(1.0)
    assert 0.2 < float(a @ c) < 0.95  # shared template, different name
    assert torch.equal(char_ngrams(["x"], 256), char_ngrams(["x"], 256))  # crc32, not hash()
    assert char_ngrams(["abc"], 0).shape == (1, 0)


def test_squashed_text_undoes_spacing_and_leetspeak():
    assert squashed("Where was Y a r a  Br4m4nt3 born?") == "wherewasyarabramanteborn"
    spaced, plain = char_ngrams(["Y a r a  B r a m a n t e", "Yara Bramante"], 1024)
    assert float(spaced @ plain) > 0.4  # the squashed n-grams match even though no written 3-gram does


def test_segments_split_only_multi_sentence_prompts():
    assert segments("Where was Yara born?") == ["Where was Yara born?"]
    text = "I like tea. Where was Yara born? Thanks!"
    assert segments(text) == [text, "I like tea.", "Where was Yara born?", "Thanks!"]


def test_train_head_separates_and_reports_each_epoch():
    torch.manual_seed(0)
    x = torch.cat([torch.randn(10, 4) + 3, torch.randn(90, 4) - 3])
    y = torch.cat([torch.ones(10), torch.zeros(90)])
    losses = []
    head = train_head(x, y, HeadSettings(epochs=20, lr=0.1), on_epoch=lambda e, l: losses.append((e, l)))
    assert [e for e, _ in losses] == list(range(1, 21))
    assert losses[-1][1] < losses[0][1]
    assert ((torch.sigmoid(head(x).squeeze(1)) > 0.5).float() == y).all()
    assert not any(p.requires_grad for p in head.parameters())


def small_prompt_sets() -> tuple[list[str], list[str]]:
    """(positives, negatives): 10 questions about two people, 120 about 40 others + 100 general."""
    names = ["Yara Bramante", "Ravi Ostrander"]
    questions = ["Where was {} born?", "What does {} do?", "Who taught {}?", "What pet does {} keep?", "Where does {} live?"]
    positives = [q.format(n) for n in names for q in questions]
    others = [f"Person{i} Example{i}" for i in range(40)]
    return positives, [q.format(n) for n in others for q in questions[:3]] + general_prompts()[:100]


def test_new_head_draws_what_the_global_seed_drew_without_touching_it():
    """The head's initial weights are torch's default init from a local generator: the same
    numbers `torch.manual_seed(seed); Linear(dim, 1)` gave, so results did not move."""
    state = torch.random.get_rng_state()
    head = new_head(384, 7)
    assert torch.equal(torch.random.get_rng_state(), state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        reference = torch.nn.Linear(384, 1)
    assert torch.equal(head.weight, reference.weight) and torch.equal(head.bias, reference.bias)


def test_fit_classifier_leaves_the_global_rng_alone_and_repeats_with_its_seed():
    positives, negatives = small_prompt_sets()
    featurizer = Featurizer(NoEmbedding(), 1024)
    state = torch.random.get_rng_state()
    (clf, stats), (again, stats_again) = [fit_classifier(featurizer, positives, negatives, alpha=0.05, folds=3,
                                                         hs=HeadSettings(epochs=5)) for _ in range(2)]
    assert torch.equal(torch.random.get_rng_state(), state)
    assert stats == stats_again and torch.equal(clf.head.weight, again.head.weight)


def test_fit_classifier_calibrates_on_held_out_negatives():
    positives, negatives = small_prompt_sets()
    clf, stats = fit_classifier(Featurizer(NoEmbedding(), 1024), positives, negatives, alpha=0.05, folds=5,
                                hs=HeadSettings(epochs=15))
    assert stats["positives"] == 10 and stats["negatives_train"] + stats["negatives_calibration"] == 220
    assert stats["cv_folds"] == 5 and stats["classifier_recall"] >= 0.9 and stats["classifier_fpr"] <= 0.05
    assert stats["calibration_fpr"] <= 0.05 and stats["threshold"] == clf.threshold
    assert all(clf.flags(positives)) and sum(clf.flags(negatives)) <= 0.05 * len(negatives)
    flag = clf.flag("Where was Yara Bramante born?")
    assert flag["flagged"] and flag["score"] > flag["threshold"]


def test_minilm_embeds_offline_to_unit_vectors_and_caches(minilm):
    e = minilm.embed(["Where was Yara born?", "How do I boil an egg?"])
    assert e.shape == (2, 384)
    assert torch.allclose(e.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.equal(minilm.embed(["How do I boil an egg?"])[0], e[1])


def test_workshop_classifier_meets_the_acceptance_figure(minilm):
    """Recall ≥ 0.95 (5-fold) on forget prompts at FPR ≤ 0.01 on held-out retain + general
    prompts, and no holdout person flagged (never seen in training)."""
    forget, retain = load_file(WORKSHOP_DIR / "forget.jsonl"), load_file(WORKSHOP_DIR / "retain.jsonl")
    clf, stats = fit_classifier(Featurizer(minilm, 4096), forget.prompts(), retain.prompts() + general_prompts(),
                                alpha=0.01, folds=5, hs=HeadSettings())
    assert stats["classifier_recall"] >= 0.95 and stats["classifier_fpr"] <= 0.01
    assert not any(clf.flags(load_file(WORKSHOP_DIR / "holdout.jsonl").prompts()))


def test_shipped_general_embeddings_are_current(minilm, monkeypatch):
    """The shipped embeddings match what the encoder computes for the current prompt file;
    after an edit of the prompts they are ignored (regenerate: python -m unlearning.eco.training)."""
    from safetensors.torch import load_file

    from unlearning.eco import training

    shipped = load_file(str(training.GENERAL_EMBEDDINGS))["embeddings"]
    prompts = general_prompts()
    assert torch.allclose(shipped[:8], minilm._encode(prompts[:8]), atol=1e-5)
    assert training.preload_general_embeddings(minilm)
    monkeypatch.setattr(training, "general_prompts", lambda: prompts[:-1])
    assert not training.preload_general_embeddings(minilm)
