"""unlearning/lora/distributed.py: data-parallel LoRA unlearning under `accelerate launch`.

The pure parts (units, shards, weights) against hand-computed values and against a whole
batch for every LoRA method; then two real processes on the CPU (gloo) against one: the
same artifact logits within 1e-4, and FILA's all-reduced Fisher sums equal to a
one-process pass over all batches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from unlearning.lora import distributed
from unlearning.batches import collate, encode_qa
from unlearning.data import QA
from unlearning.lora.distributed import is_empty, shard, unit_count, weigh
from unlearning.lora.losses import Term, nll
from unlearning.methods import all_methods
from unlearning.lora.steps import reference_pass, step_gradients, step_values
from unlearning.lora.trainer import LoraMethod

ROOT = Path(__file__).resolve().parent.parent

FACTS = [("Where was Ada born?", "Ada was born in London."), ("What did Ada write?", "Ada wrote the notes."),
         ("Who won two Nobel prizes?", "Marie Curie won them."), ("What is the capital of France?", "Paris."),
         ("Which river runs through Paris?", "The Seine."), ("When did Ada write the notes?", "In 1843."),
         ("What does a small model learn?", "A few facts."), ("What does it do then?", "It forgets them again.")]


def batch_of(tok, pairs) -> dict[str, torch.Tensor]:
    return collate([encode_qa(tok, QA(q, a)) for q, a in pairs], tok.pad_token_id or tok.eos_token_id)


def test_unit_counts_by_hand():
    labels = torch.tensor([[-100, -100, 5, 6, -100], [-100, 7, -100, -100, -100], [-100, -100, -100, -100, -100]])
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    batch = {"labels": labels, "attention_mask": mask, "input_ids": torch.zeros_like(labels)}
    # labels[:, 1:] labelled: row 0 two (5, 6), row 1 one (7), row 2 none
    assert unit_count(Term("a", "forget", nll), batch) == 3
    assert unit_count(Term("a", "forget", nll, unit="answers"), batch) == 2
    assert unit_count(Term("a", "forget", nll, unit="positions"), batch) == 4 + 3 + 2


def test_shards_are_contiguous_and_may_be_empty():
    ids = torch.arange(5)[:, None].repeat(1, 2)
    batch = {"forget": {"input_ids": ids}, "retain": {"input_ids": ids + 10}}
    assert shard(batch, 0, 2)["forget"]["input_ids"][:, 0].tolist() == [0, 1, 2]
    assert shard(batch, 1, 2)["retain"]["input_ids"][:, 0].tolist() == [13, 14]
    one = {"forget": {"input_ids": ids[:1]}, "retain": {"input_ids": ids[:1]}}
    assert not is_empty(shard(one, 0, 2)) and is_empty(shard(one, 1, 2))


def test_weigh_by_hand():
    terms = (Term("f", "forget", nll, weight=2.0), Term("r", "retain", nll, weight=0.5))
    values = {"f": torch.tensor(3.0), "r": torch.tensor(4.0)}
    out = weigh(terms, values, counts=[1, 3], totals=[4.0, 0.0])
    assert out["f"].item() == pytest.approx(0.75)  # 3 · 1/4
    assert out["r"].item() == 0.0  # no units anywhere: the term is 0, as on one process
    assert out["total"].item() == pytest.approx(2.0 * 0.75)


LORA = [m for m in all_methods() if isinstance(m, type) and issubclass(m, LoraMethod)]


@pytest.mark.parametrize("method", LORA, ids=lambda m: m.name)
def test_shards_weighed_add_up_to_the_whole_batch(tiny, method):
    """Every LoRA method's terms (their `unit`s): the weighted shard values of two processes
    sum to the one-batch values, including a shard without rows."""
    model, tok = tiny
    cfg = method.Config()
    terms = method.objective(cfg)
    full = {"forget": batch_of(tok, FACTS[:3]), "retain": batch_of(tok, FACTS[3:6])}
    device = torch.device("cpu")

    def values_of(b):
        return step_values(model, terms, b, device, reference_pass(model, terms, b, device))

    with torch.no_grad():
        whole = values_of(full)
        for world in (2, 4):  # 4: the fourth process gets no rows
            parts = [shard(full, r, world) for r in range(world)]
            counts = [[unit_count(t, p[t.split]) for t in terms] for p in parts]
            totals = [float(sum(c[i] for c in counts)) for i in range(len(terms))]
            summed = {k: 0.0 for k in whole}
            for p, c in zip(parts, counts):
                if is_empty(p):
                    continue
                for k, v in weigh(terms, values_of(p), c, totals).items():
                    summed[k] += v.item()
            for k, v in whole.items():
                assert summed[k] == pytest.approx(v.item(), rel=1e-4, abs=1e-5), (method.name, world, k)


@pytest.mark.parametrize("method", LORA, ids=lambda m: m.name)
def test_a_step_with_its_splits_side_by_side_equals_the_step_in_turn(tiny, method):
    """steps.step_gradients with a pool (the retain pass on a second thread) gives every LoRA
    method's terms, total and gradient as the serial step does."""
    model, tok = tiny
    terms = method.objective(method.Config())
    batch = {"forget": batch_of(tok, FACTS[:3]), "retain": batch_of(tok, FACTS[3:7])}
    device, params = torch.device("cpu"), [p for p in model.parameters() if p.dim() == 2][:4]
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        reference = reference_pass(model, terms, batch, device)
        serial = step_gradients(model, terms, batch, device, reference, params)
        with ThreadPoolExecutor(1) as pool:
            side = step_gradients(model, terms, batch, device, reference, params, pool)
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)
    assert list(side[0]) == list(serial[0]) == [t.name for t in terms] + ["total"]
    for k in serial[0]:
        assert torch.allclose(side[0][k], serial[0][k], rtol=1e-6, atol=1e-7), k
    expected = float(sum(t.weight * serial[0][t.name] for t in terms))
    assert float(side[0]["total"]) == pytest.approx(expected, rel=1e-6, abs=1e-7)
    for g_side, g_serial in zip(side[1], serial[1]):
        assert torch.allclose(g_side, g_serial, rtol=1e-5, atol=1e-7)
    assert any(float(g.abs().sum()) > 0 for g in side[1])


def test_one_process_joins_no_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.launched_processes() == 1
    assert distributed.start("cpu") is None and distributed.current() is None


# ------------------------------------------------------------- two processes against one


def write_jsonl(path: Path, pairs) -> str:
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in pairs))
    return str(path)


def artifact_logits(model_dir: str, artifact: Path, tok_pairs) -> torch.Tensor:
    from unlearning.attach import load_unlearned
    from unlearning.models import load_model

    loaded = load_model(model_dir, "cpu")
    unlearned = load_unlearned(loaded, artifact)
    batch = batch_of(loaded.tokenizer, tok_pairs)
    with torch.no_grad(), unlearned.view("unlearned") as m:
        return m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate's launcher is not installed")
def test_two_processes_match_one(tiny, tmp_path, capsys):
    from tests.distributed_worker import fisher_data
    from unlearning.cli import main
    from unlearning.lora.fila import accumulate_fisher

    model, tok = tiny
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    forget, retain = write_jsonl(tmp_path / "f.jsonl", FACTS[:4]), write_jsonl(tmp_path / "r.jsonl", FACTS[4:])
    holdout = write_jsonl(tmp_path / "h.jsonl", [("Who is Bob?", "Bob is a baker.")])
    # batch 3 over 4 forget examples: batches of 3 and 1, so shards of 2/1 and 1/0 (an idle process)
    args = ["unlearn", "--method", "ihl-fila", "--model", str(model_dir), "--forget", forget, "--retain", retain,
            "--batch-size", "3", "--holdout", holdout, "--general", holdout, "--steps", "4", "--rank", "4",
            "--lr", "0.01", "--device", "cpu", "--no-before"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNLEARNING_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    launch = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "tests" / "distributed_worker.py"),
              str(tmp_path / "fisher.pt"), "--"]
    two = subprocess.run(launch + args + ["--out", str(tmp_path / "two"), "--report", str(tmp_path / "two.json")],
                         check=False, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stderr.count("artifact saved to") == 1 and two.stdout.count("ihl-fila: 4 steps") == 1  # the main process only

    assert main(args + ["--out", str(tmp_path / "one"), "--report", str(tmp_path / "one.json")]) == 0
    capsys.readouterr()
    r1, r2 = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert (r1["world_size"], r2["world_size"]) == (1, 2)
    for h1, h2 in zip(r1["history"], r2["history"], strict=True):  # the global batch's losses, step by step
        for k in ("forget_ihl", "retain_nll", "total"):
            assert h2[k] == pytest.approx(h1[k], abs=1e-4), (h1["step"], k)
    assert r2["fila"]["forget_tokens"] == r1["fila"]["forget_tokens"]
    l1 = artifact_logits(str(model_dir), tmp_path / "one", FACTS)
    l2 = artifact_logits(str(model_dir), tmp_path / "two", FACTS)
    assert (l1 - l2).abs().max().item() < 1e-4

    fisher = torch.load(tmp_path / "fisher.pt")
    single = accumulate_fisher(*fisher_data(str(model_dir), forget, retain, 3))  # every batch, one process
    assert fisher["world"] == 2 and (fisher["n_forget"], fisher["n_retain"]) == (single.n_forget, single.n_retain)
    for split in ("forget", "retain"):
        for name, f in getattr(single, split).items():
            torch.testing.assert_close(fisher[split][name], f, rtol=1e-5, atol=1e-9)
