"""Stress tests: does the unlearned model really forget? (METHODS.md §Robustness)

    work = attack_job(loaded, unlearned, splits, oracle, AttackSettings())
    report = Run(work).start().wait()          # report["robustness"]: one block per attack

Four attacks, each run on the original, the unlearned model and the oracle: `relearn`
(relearn.py), `quantize`, `paraphrase` and `prompts` (one module each). Each is a small class with
`run(ctx, bench) -> block` and `summary(block) -> sentence`, registered in `job.ATTACKS`;
they emit a run's progress and step events and stop at the next check when cancelled.
Attacks that change weights work on standalone copies: the shared base is only read.
"""

from .job import ATTACKS, AttackSettings, attack_job, paraphrase_sets

__all__ = ["ATTACKS", "AttackSettings", "attack_job", "paraphrase_sets"]
