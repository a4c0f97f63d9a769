"""What each process runs under `accelerate launch` in tests/test_distributed.py (not a test file).

    accelerate launch --multi_gpu --num_processes 2 tests/distributed_worker.py FISHER_OUT -- CLI ARGS…

1. `python -m unlearning unlearn CLI ARGS…` as every launched process runs it (data-parallel);
2. FILA's Fisher pass the way FisherInit runs it data-parallel (each process its own whole
   batches, then `reduce_fisher`); the main process saves the summed stats to FISHER_OUT.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unlearning.lora import distributed
from unlearning.cli import main


def fisher_data(model_dir: str, forget: str, retain: str, batch_size: int):
    """(model, weights, batches) of FILA's Fisher pass on the test's model and files."""
    from unlearning.batches import encode_dataset, pad_id, paired_batches
    from unlearning.data import load_file
    from unlearning.lora.adapters import target_linears
    from unlearning.models import load_model

    loaded = load_model(model_dir, "cpu")
    tok = loaded.tokenizer
    f, r = encode_dataset(tok, load_file(forget)), encode_dataset(tok, load_file(retain))
    weights = {n: m.weight for n, m in target_linears(loaded.model).items()}
    return loaded.model, weights, paired_batches(f, r, batch_size, pad_id(tok), seed=0)


def main_worker(argv: list[str]) -> int:
    fisher_out, cli_args = argv[0], argv[argv.index("--") + 1 :]
    code = main(cli_args)
    if code:
        return code
    dp = distributed.current()
    assert dp is not None and dp.world == 2, "launched as one process"
    from unlearning.lora.fila import accumulate_fisher

    opt = dict(zip(cli_args[1::2], cli_args[2::2]))
    model, weights, batches = fisher_data(opt["--model"], opt["--forget"], opt["--retain"], int(opt["--batch-size"]))
    stats = dp.reduce_fisher(accumulate_fisher(model, weights, dp.own_batches(batches)))
    if dp.main:
        torch.save({"forget": stats.forget, "retain": stats.retain, "n_forget": stats.n_forget,
                    "n_retain": stats.n_retain, "world": dp.world}, fisher_out)
    return 0


if __name__ == "__main__":
    sys.exit(main_worker(sys.argv[1:]))
