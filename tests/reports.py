"""Full report dicts of an ECO and a LoRA run, as pipeline.py writes them, for the tests that
take them apart (test_report.py, test_catalog.py)."""

from __future__ import annotations

import copy

METRICS = {"forget.rougeL": 0.95, "forget.answer_prob": 0.8, "forget.truth_ratio": 0.4, "retain.rougeL": 0.97,
           "holdout.rougeL": 0.21, "holdout.mem_acc": 0.3, "general.rougeL": 0.6, "forget_quality": 0.002,
           "model_utility": 0.71, "mia_auc": 0.9}
COMMON = {"model": "workshop", "device": "cpu", "seed": 0, "steps": 3, "trainable_params": 12_288, "wall_s": 41.2,
          "method_wall_s": 11.5, "peak_mem_mb": 812.3,
          "before": METRICS, "after": {**METRICS, "forget.rougeL": 0.2, "forget_quality": 0.4},
          "oracle": {**METRICS, "forget.rougeL": 0.19, "forget_quality": 1.0},
          "history": [{"step": 1, "total": 2.5, "lr": 1e-4, "elapsed_s": 0.1}]}

ECO = {"method": "eco", **COMMON, "settings": {"alpha": 0.01, "corruption": "rand_noise_first_n", "seed": 0},
       "eco": {"threshold": 0.14, "classifier_recall": 0.98, "classifier_fpr": 0.004, "cv_folds": 5,
               "train_recall": 1.0, "calibration_fpr": 0.01, "positives": 40, "negatives_train": 300,
               "negatives_calibration": 60, "alpha": 0.01, "unseen_fpr": {"holdout": 0.0, "general": 0.01},
               "corruption": "rand_noise_first_n", "corruption_params": {"n": 1}, "strength": 46.4,
               "metric": "rougeL", "target": 0.19, "target_source": "oracle", "search_target": "metric",
               "protocol": "prompt", "protocol_subjects": 20,
               "search": [{"strength": 1.0, "metric": 0.9, "target": 0.19, "phase": "grid"}],
               "robustness": {"paraphrase": {"recall": 1.0, "fpr": 0.0, "n": 12, "example": "<b>Who</b> is X?"},
                              "subject_swap": {"recall": 0.9, "fpr": None, "n": 12, "example": "Who is Y?"}},
               "encoder": "assets/encoder", "ngram_dims": 4096, "classifier_s": 3.2, "search_s": 8.1}}

LORA = {"method": "ihl-fila", **COMMON, "settings": {"steps": 3, "rank": 8, "stop": "steps", "seed": 0},
        "lora": {"rank": 8, "alpha": 16, "layers": 14},
        "stopping": {"rule": "steps", "target": {"mem_acc": 0.3}, "reached_at": 2,
                     "checks": [{"step": 1, "mem_acc": 0.5}, {"step": 2, "mem_acc": 0.29}]},
        "fila": {"eps_share": 0.12, "forget_tokens": 400, "retain_tokens": 420}}


def without(report: dict, key: str, replacement=...) -> dict:
    """A deep copy with `key` (a.b for a nested one) removed, or set to `replacement`."""
    out = copy.deepcopy(report)
    *parents, last = key.split(".")
    d = out
    for p in parents:
        d = d[p]
    if replacement is ...:
        del d[last]
    else:
        d[last] = replacement
    return out


def keys(report: dict, nested: tuple[str, ...] = ("eco", "lora", "stopping", "fila")) -> list[str]:
    """Every top-level key, and every key of the nested blocks as "block.key"."""
    out = list(report)
    for block in nested:
        if isinstance(report.get(block), dict):
            out += [f"{block}.{k}" for k in report[block]]
    for family in (report.get("eco") or {}).get("robustness", {}):
        out += [f"eco.robustness.{family}.{k}" for k in report["eco"]["robustness"][family]]
    return out
