"""Issue 28 #5, kept runs slow everyone: every kept LoRA run's adapters stayed injected in the
shared base, so each forward and each walk of its modules paid for all of them (56 kept runs:
a reference 20-step run 7.1 s → 36.3 s). Kept runs are now parked off the base while not in
use (lora.Adapters); these tests check that the base does not grow with kept runs and that
nothing a visitor sees changes: chat replies, views, saved artifacts."""

from __future__ import annotations

import pytest
import torch

from unlearning.base import RowView
from unlearning.generate import greedy_tokens, prompt_ids
from unlearning.lora.adapters import IDLE_ON_BASE, Adapters, LoraUnlearned
from unlearning.models import load_model
from unlearning.service.batcher import ChatBatcher

KEPT = 6
PROMPTS = ("What is Ada Brightwater's profession?", "Hello!", "Where was Yara born?")
TOKENS = 8


def injected(model) -> list[str]:
    """The adapters injected in the base (peft's registry of them)."""
    return sorted(getattr(model, "peft_config", {}))


def kept_run(loaded, seed: int) -> LoraUnlearned:
    """A kept FILA-style run (a trained adapter and its offset), with weights of its own."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        adapters = Adapters.create(loaded.model, "ihl-fila", rank=8, alpha=16, with_offset=True)
        with torch.no_grad():
            for p in adapters.parameters() + adapters.parameters(adapters.offset):
                p.normal_(0, 0.2)
    return LoraUnlearned(loaded, {}, "ihl-fila", adapters)


@pytest.fixture(scope="module")
def room():
    loaded = load_model("workshop", "cpu")
    runs = [kept_run(loaded, seed) for seed in range(KEPT)]
    yield loaded, runs
    for run in runs:
        run.release()
    assert injected(loaded.model) == []


def test_the_base_does_not_grow_with_kept_runs(room):
    loaded, runs = room
    # at rest: the last used kept run at most (IDLE_ON_BASE), never one per kept run
    assert len(injected(loaded.model)) <= 2 * IDLE_ON_BASE < 2 * KEPT
    for run in runs:
        with run.view("unlearned"):
            assert set(run.adapters.names) <= set(injected(loaded.model))
        assert len(injected(loaded.model)) <= 2 * IDLE_ON_BASE
    # a new run trains beside at most IDLE_ON_BASE kept runs, whatever the room keeps
    training = Adapters.create(loaded.model, "ihl-fila", rank=8, alpha=16, with_offset=True)
    try:
        assert len(injected(loaded.model)) <= 2 + 2 * IDLE_ON_BASE
        with training.use(train=True) as model:
            trainable = [n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
        assert trainable and all(training.adapter in n and "offset" not in n for n in trainable)
    finally:
        training.remove()


def test_a_parked_run_answers_and_saves_as_before(room, tmp_path):
    """Its view, brought back on the base, computes what it computed before it was parked;
    saved while parked and loaded again, it computes the same."""
    loaded, runs = room
    x = torch.tensor([prompt_ids(loaded.tokenizer, PROMPTS[0])])
    with runs[0].view("unlearned") as m, torch.no_grad():
        want = m(input_ids=x).logits
    for run in runs[1:]:  # the others' views park runs[0]
        with run.view("unlearned"):
            pass
    assert runs[0].adapters.parked
    runs[0].save(tmp_path / "kept")
    with runs[0].view("unlearned") as m, torch.no_grad():
        assert torch.equal(m(input_ids=x).logits, want)
    again = LoraUnlearned.open(loaded, tmp_path / "kept", {}, "ihl-fila")
    try:
        with again.view("unlearned") as m, torch.no_grad():
            assert torch.equal(m(input_ids=x).logits, want)
    finally:
        again.release()


def test_batched_chat_with_many_kept_runs_equals_each_reply_alone(room):
    """Rows of one batch in the views of six kept runs (most of them parked) and the base:
    each row decodes exactly what its view decodes alone."""
    loaded, runs = room
    eos = loaded.tokenizer.eos_token_id
    rows, expected = [], []
    for i, prompt in enumerate(PROMPTS * 2):
        ids = prompt_ids(loaded.tokenizer, prompt)
        run = runs[i % KEPT]
        rows += [(ids, run.row_view("unlearned")), (ids, RowView())]
        expected += [list(greedy_tokens(run.proxy("unlearned"), ids, eos, TOKENS)),
                     list(greedy_tokens(run.proxy("original"), ids, eos, TOKENS))]
    assert sum(run.adapters.parked for run in runs) >= KEPT - IDLE_ON_BASE
    *_, last = ChatBatcher(window_s=0).decode(loaded, rows, TOKENS)
    assert last == expected
    assert len({tuple(t) for t in expected[0::2]}) > 1  # the kept runs do differ from one another
