"""The `attack` job: build the bench, run the chosen attacks in turn, report each one's
block with its wall time and its one-sentence summary (DESIGN.md §Command line contract)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import limits
from ..artifacts import Unlearned
from ..data import Dataset, load_file, sample
from ..errors import UserError
from ..memory import MemoryWatch
from ..models import Loaded
from ..runs import RunContext
from ..settings import setting
from .harness import Attack, Bench, contenders, guard_of, qa_only
from .paraphrase import Paraphrase, kit_paraphrases, reworded
from .prompts import Prompts
from .quantize import Quantize
from .relearn import Relearn

ATTACKS: dict[str, Attack] = {a.name: a for a in (Relearn(), Quantize(), Paraphrase(), Prompts())}
ECO_NOTE = ("ECO changes no weight of the model: its weights are unchanged, so removing the guard restores everything "
            "the original knew; every attack here ran with the guard on.")


@dataclass
class AttackSettings:
    """The `attack` command's settings (its flags are built from these fields)."""

    attacks: str = setting(",".join(ATTACKS), "the attacks to run, comma-separated")
    relearn_steps: int = setting(20, "relearn: fine-tuning steps K on half of the forget set", lo=1, hi=1000)
    relearn_lr: float = setting(3e-3, "relearn: learning rate (AdamW) of the relearning LoRA adapter", lo=1e-7, hi=1.0, ui=False)
    relearn_rank: int = setting(8, "relearn: rank of the relearning LoRA adapter", lo=1, hi=limits.MAX_RANK, ui=False)
    relearn_batch: int = setting(8, "relearn: examples per step", lo=1, hi=256, ui=False)
    sample: int = setting(40, "questions per split scored (a seeded sample, the same for every model and attack)",
                          lo=1, hi=100_000)
    seed: int = setting(0, "seed of the samples, the relearning split and order, and the prompt noise", lo=0, hi=2**31 - 1)

    def names(self) -> list[str]:
        """The chosen attacks, in the order given; an unknown name lists the known ones."""
        names = [n.strip() for n in self.attacks.split(",") if n.strip()]
        unknown = [n for n in names if n not in ATTACKS]
        if unknown or not names:
            raise UserError(f"--attacks: unknown attack '{unknown[0] if unknown else self.attacks}'; "
                            f"known attacks: {', '.join(ATTACKS)}.")
        return list(dict.fromkeys(names))


def paraphrase_sets(forget: str | Path, retain: str | Path, paraphrased: str | Path | None = None) -> dict[str, Dataset | None]:
    """Held-out wordings for the paraphrase attack: `paraphrased` (a file) for the forget set,
    else the kit's own when the file is the kit's; None means the built-in templates."""
    return {"forget": load_file(paraphrased) if paraphrased else kit_paraphrases(forget), "retain": kit_paraphrases(retain)}


def _wordings(ds: Dataset | None, role: str, fallback: list, cfg: AttackSettings, seed: int) -> tuple[list, str]:
    if ds is None:
        return reworded(fallback), "built-in rewording templates"
    return sample(qa_only(ds, f"paraphrased {role}"), cfg.sample, seed), f"'{ds.name}'"


def build_bench(loaded: Loaded, unlearned: Unlearned, splits: dict[str, Dataset], oracle: Loaded | None,
                cfg: AttackSettings, paraphrased: dict[str, Dataset | None] | None = None) -> Bench:
    forget_all, retain_all = qa_only(splits["forget"], "forget"), qa_only(splits["retain"], "retain")
    forget, retain = sample(forget_all, cfg.sample, cfg.seed), sample(retain_all, cfg.sample, cfg.seed + 1)
    paraphrased = paraphrased or {}
    pf, source = _wordings(paraphrased.get("forget"), "forget", forget, cfg, cfg.seed)
    pr, _ = _wordings(paraphrased.get("retain"), "retain", retain, cfg, cfg.seed + 1)
    return Bench(contenders(unlearned, oracle), loaded.tokenizer, forget, retain, forget_all,
                 {"forget": pf, "retain": pr}, source, cfg, guard_of(unlearned))


def attack_job(loaded: Loaded, unlearned: Unlearned, splits: dict[str, Dataset], oracle: Loaded | None = None,
               cfg: AttackSettings | None = None, paraphrased: dict[str, Dataset | None] | None = None):
    """Work function for a Run: the report of `python -m unlearning attack`, whose
    `robustness` holds one block per attack (plus `sample`, and ECO's `note`)."""
    cfg = cfg or AttackSettings()
    names = cfg.names()
    bench = build_bench(loaded, unlearned, splits, oracle, cfg, paraphrased)

    def work(ctx: RunContext) -> dict[str, Any]:
        t0 = time.perf_counter()
        bench.check_cancel = ctx.check_cancel
        robustness: dict[str, Any] = {}
        with MemoryWatch(loaded.device) as memory:
            for i, name in enumerate(names):
                t = time.perf_counter()
                block = ATTACKS[name].run(ctx.within(i / len(names), (i + 1) / len(names)), bench)
                block["wall_s"] = round(time.perf_counter() - t, 2)
                block["summary"] = ATTACKS[name].summary(block)
                robustness[name] = block
                ctx.log(f"{name}: done in {block['wall_s']:.1f}s")
        robustness["sample"] = {"forget": len(bench.forget), "retain": len(bench.retain),
                                "forget_paraphrased": len(bench.paraphrased["forget"]),
                                "note": f"each split is scored on a seeded sample of at most {cfg.sample} questions"}
        if bench.guard is not None:
            robustness["note"] = ECO_NOTE
        ctx.progress(1.0, "done")
        return {"method": unlearned.method, "model": loaded.name, "oracle_model": oracle.name if oracle else None,
                "device": loaded.device, "seed": cfg.seed, "settings": asdict(cfg), "robustness": robustness,
                "wall_s": round(time.perf_counter() - t0, 2), "peak_mem_mb": round(memory.peak_mb, 1)}

    return work
