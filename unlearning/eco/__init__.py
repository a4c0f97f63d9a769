"""ECO — embedding-corrupted prompts (Liu, Wang, Flanigan, Liu, NeurIPS 2024, arXiv 2406.07933).

Unlearning at inference time: a prompt classifier flags prompts about the forget set, and
for those the prompt's input embeddings are corrupted with a strength found by a
zeroth-order search, so the model answers like one that never learned the facts. The
weights never change. The parts, one file each:

    features.py    sentence embedding + hashed character n-grams of a prompt
    classifier.py  logistic head, threshold τ, cached scores
    training.py    class-balanced training, split-conformal τ, k-fold recall/FPR
    corruption.py  the five corruption functions (strategy objects)
    search.py      coarse grid, then bisection (or Newton steps) of the strength; maximise
    objective.py   the forget metric the search matches (or forget quality it maximises)
    protocol.py    scoring protocols: which positions of a scored row are corrupted
    prompts.py     raw prompt text and length from a row of token ids
    guard.py       the guarded causal LM (forward, generate, streaming)
    robustness.py  rewrites of forget prompts and the classifier's recall on them
    storage.py     guard folder: guard.json + guard_head.safetensors

The registered method that ties them together is unlearning/methods/eco.py.
"""

from . import summary  # noqa: F401  registers ECO's report block ("eco") with report.Report
