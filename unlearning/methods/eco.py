"""ECO — embedding-corrupted prompts (Liu et al., NeurIPS 2024, arXiv 2406.07933).

A prompt classifier flags questions about the forget set; for those, the prompt's input
embeddings are corrupted with a strength chosen so the model's forget metric matches a
model that never learned the facts. The weights never change, so nothing else is touched.
The parts live in unlearning/eco/; this file wires them into one run and one artifact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..artifacts import Unlearned
from ..base import Detached, RowView
from ..batches import answer_ids
from ..data import QA, Dataset
from ..eco import calibration
from ..eco.corruption import CORRUPTIONS, make_corruption
from ..eco.entities import SOURCE as ENTITY_SOURCE
from ..eco.entities import data_entities
from ..eco.features import DEFAULT_ENCODER, Featurizer, get_encoder, segments
from ..eco.guard import Guard
from ..eco.objective import METRICS, forget_metric, forget_quality_of, resolve_metric
from ..eco.protocol import PROTOCOLS, make_protocol
from ..eco.robustness import probe
from ..eco.search import SearchResult, maximise, search
from ..eco.storage import load_guard, save_guard
from ..eco.summary import EcoSummary, Probe
from ..eco.training import HeadSettings, fit_classifier, general_prompts, preload_general_embeddings
from ..errors import UserError
from ..limits import MAX_NEW_TOKENS
from ..models import Loaded
from ..report import Block, Line, Plot, Report, Table
from ..runs import RunContext
from ..settings import setting, validate
from . import register

# Shares of the method's progress bar.
CLASSIFIER_SHARE, PROBE_SHARE = 0.35, 0.45
TARGETS = ("probes", "metric", "forget_quality")  # what the strength search aims for (METHODS.md §ECO 5)
PROTOCOL_LABELS = {"prompt": "prompt (prompt positions only)",
                   "paper": "paper (prompt and scored answer; the data's entities where found)"}
FQ_SOURCE = "oracle's truth-ratio distribution (forget quality maximised; the strength is chosen on the forget set)"


@dataclass
class EcoConfig:
    alpha: float = setting(0.01, "ECO: the classifier's target false-positive rate on benign prompts "
                                 "(its threshold is calibrated for it)", lo=0.001, hi=0.5)
    # Defaults chosen on the workshop kit (docs/methods.md §ECO): METHODS.md §ECO names
    # rand_noise_first_n (n = 1) and the prompt protocol; on the kit that pair cannot reach forget
    # quality 0.1 and its random draws leave some prompts readable, so flip_sign_top_k and paper.
    corruption: str = setting("flip_sign_top_k", "ECO: how a flagged prompt's embeddings are corrupted",
                              choices=tuple(CORRUPTIONS))
    n_dims: int = setting(1, "ECO: dimensions the noise corruptions touch (n, or k for rand_noise_top_k)", lo=1, hi=65536)
    metric: str = setting("auto", "ECO: forget metric the strength search matches to the target "
                                  "(auto: rougeL for QA, mem_acc for passages)", choices=METRICS)
    target: str = setting("probes", "ECO: what the strength search aims for: probes (every probe family — trained "
                                    "questions, held-out wordings, 'Tell me about NAME.', other forget facts — at or "
                                    "below its target; QA data), metric (the oracle's value of the metric on the "
                                    "trained questions, else the holdout surrogate) or forget_quality (the oracle's "
                                    "truth-ratio distribution: maximise forget quality; needs an oracle)",
                          choices=TARGETS)
    protocol: str = setting("paper", "ECO: how teacher-forced scores corrupt a flagged prompt: prompt (its positions "
                                      "only) or paper (the official TOFU code's: prompt and scored answer, only the "
                                      "entities the data names where one is found)", choices=PROTOCOLS)
    strength: float = setting(0.0, "ECO: a fixed corruption strength (σ, or k dims); 0 finds it by search", lo=0.0, hi=1e4)
    grid_points: int = setting(7, "ECO: coarse grid points before the zeroth-order search", lo=1, hi=50, ui=False)
    search_steps: int = setting(8, "ECO: search steps after the grid (bisection once the target is bracketed)",
                                lo=0, hi=100, ui=False)
    tolerance: float = setting(0.02, "ECO: the search stops when |metric − target| is within this", lo=0.0, hi=1.0, ui=False)
    epochs: int = setting(20, "ECO: training epochs of the classifier head", lo=1, hi=1000, ui=False)
    folds: int = setting(5, "ECO: k of the k-fold estimate of the classifier's recall and FPR", lo=2, hi=20, ui=False)
    encoder: str = setting(DEFAULT_ENCODER, "ECO: sentence encoder of the classifier (hub id or folder; "
                                            "the default ships offline)", ui=False)
    ngram_dims: int = setting(4096, "ECO: hashed character n-gram features of the classifier (0: embedding only)",
                              lo=0, hi=65536, ui=False)
    seed: int = setting(0, "seed of the data splits, the classifier and the corruption noise", lo=0, hi=2**31 - 1)


class EcoUnlearned(Unlearned):
    """The base model and an ECO guard: "original" is the plain model, "unlearned" the guard."""

    method = "eco"

    def __init__(self, loaded: Loaded, settings: dict[str, Any], guard: Guard, encoder: str, ngram_dims: int):
        super().__init__(loaded, settings)
        self.guard, self.encoder, self.ngram_dims = guard, encoder, ngram_dims

    @contextmanager
    def _activate(self, which: str):
        yield self.loaded.model if which == "original" else self.guard

    def row_view(self, which: str) -> RowView:
        return RowView() if which == "original" else RowView(prefill=self.guard.prefill)

    def flag(self, prompt: str) -> dict:
        return self.guard.flag(prompt)

    def detached(self, which: str) -> Detached:
        """The guard stays on around a private copy of the weights (what ECO is judged with)."""
        if which == "original":
            return super().detached(which)
        with self.view(which):
            return self.guard.detached()

    def _save_files(self, folder: Path) -> None:
        save_guard(self.guard, folder, self.encoder, self.ngram_dims)


def _target(loaded: Loaded, splits: dict[str, Dataset], metric: str, reference: dict | None,
            check_cancel=None) -> tuple[float, str]:
    """The oracle's forget value; else the surrogate of METHODS.md §ECO: the model's value on
    the holdout set (facts of the same kind it never saw)."""
    oracle, before = (reference or {}).get("oracle") or {}, (reference or {}).get("before") or {}
    if f"forget.{metric}" in oracle:
        return float(oracle[f"forget.{metric}"]), "oracle"
    if f"holdout.{metric}" in before:
        return float(before[f"holdout.{metric}"]), "holdout (surrogate)"
    holdout = splits.get("holdout")
    if holdout is not None and len(holdout) and holdout.kind == splits["forget"].kind:
        return forget_metric(loaded.model, loaded.tokenizer, holdout, metric, check_cancel=check_cancel), "holdout (surrogate)"
    return 0.0, "none (no oracle and no holdout: corrupt fully)"


def _oracle_r(reference: dict | None) -> list[float]:
    """The oracle's forget-set truth ratios ([] without an oracle or without truth-ratio data)."""
    return list(((reference or {}).get("oracle_raw") or {}).get("forget", {}).get("R") or [])


def subjects(splits: dict[str, Dataset]) -> list[str]:
    """Every subject the run's data names (forget, retain, holdout, general)."""
    names = (ex.subject for ds in splits.values() for ex in ds.examples if isinstance(ex, QA) and ex.subject)
    return list(dict.fromkeys(names))


def _not_subjects(entities: list[str], splits: dict[str, Dataset]) -> list[str]:
    """The entities that are not a subject: places, organisations, titles the tagging found."""
    known = set(subjects(splits))
    return [e for e in entities if e not in known]


def classifier_texts(ds: Dataset) -> list[str]:
    """What the classifier learns from: a QA set's questions; for passages, the opening
    sentences (what a user would type) and every sentence of every passage, since the guard
    scores a long text sentence by sentence and must know which sentences are whose."""
    prompts = ds.prompts()
    if ds.kind == "qa":
        return prompts
    return prompts + [s for ex in ds.examples for s in segments(ex.text)[1:]]


def _unseen_fpr(classifier, splits: dict[str, Dataset]) -> dict[str, float]:
    """Share of holdout and general prompts flagged: negatives the classifier never saw."""
    out = {}
    for name in ("holdout", "general"):
        ds = splits.get(name)
        if ds is not None and len(ds):
            flags = classifier.flags(ds.prompts())
            out[name] = sum(flags) / len(flags)
    return out


@register
class Eco:
    name = "eco"
    label = "ECO prompts (no training)"
    order = 10
    summary = (
        "ECO (embedding-corrupted prompts) leaves the model's weights alone. A small classifier learns to "
        "recognise questions about the forget set; when one arrives, the question's word embeddings are "
        "scrambled just enough that the model answers like a model that never learned those facts, while "
        "every other prompt is answered exactly as before. Setup takes seconds and nothing is retrained, so "
        "it suits large models and quick experiments; its weak spot is the classifier: a question it fails "
        "to recognise is answered from the intact model (the report's robustness probe shows how often)."
    )
    Config = EcoConfig
    reference_first = True  # the strength search aims at the oracle's value: the pipeline evaluates it first
    trains_weights = False  # a guard on the prompts: nothing to share among data-parallel processes
    fisher_pass = False
    plots = (Plot("classifier", "ECO classifier training loss"),
             Plot("search", "ECO strength search (metric vs target)", x="strength", mode="markers"))

    @classmethod
    def report_blocks(cls, report: Report) -> list[Block]:
        """The classifier's figures and its robustness probe (the method's known weak spot)."""
        eco = report.eco
        if eco is None:
            return []
        alpha = eco.alpha if eco.alpha is not None else report.settings.get("alpha")
        lines = (Line("classifier recall (k-fold, forget prompts)", eco.classifier_recall, "↑", ".3f"),
                 Line("false-positive rate (k-fold, benign prompts)", eco.classifier_fpr,
                      f"↓ (target ≤ {alpha})" if alpha is not None else "↓", ".4f"),
                 Line("threshold", eco.threshold, "", ".3f"),
                 Line("corruption", eco.corruption),
                 Line("strength", eco.strength, "", ".3g"),
                 Line(f"forget {eco.metric or 'metric'} the strength search "
                      f"{'maximised towards' if eco.search_target == 'forget_quality' else 'aimed for'}", eco.target,
                      f"from {eco.target_source}" if eco.target_source else "", ".3f"),
                 Line("scoring protocol (teacher-forced metrics)", PROTOCOL_LABELS.get(eco.protocol or "", eco.protocol)))
        rows = tuple((name, p.recall, p.fpr, p.example) for name, p in eco.robustness.items())
        table = Table(("rewrite of forget prompts", "recall ↑", "FPR ↓", "example"), rows, ".2f",
                      id="eco-robustness") if rows else None
        blocks = [Block("ECO classifier", lines, table, id="eco-block")]
        if eco.calibration:
            rows = tuple((name, v.get("value"), v.get("target"), v.get("source")) for name, v in eco.calibration.items())
            blocks.append(Block("ECO calibration (probe families at the chosen strength)", (),
                                Table(("family", "value", "target", "target from"), rows, ".3f", id="eco-calibration"),
                                id="eco-calibration-block"))
        return blocks

    @staticmethod
    def run(ctx: RunContext, loaded: Loaded, splits: dict[str, Dataset], cfg: EcoConfig, reference: dict) -> EcoUnlearned:
        validate(cfg)
        forget, tok = splits["forget"], loaded.tokenizer
        metric = resolve_metric(cfg.metric, forget)
        r_oracle = _oracle_r(reference)
        if cfg.target == "forget_quality" and not r_oracle and cfg.strength == 0:
            raise UserError("--target forget_quality needs an oracle model (--oracle) and forget data with paraphrased "
                            "and perturbed answers, so that the oracle has truth ratios to match.")
        t0 = time.perf_counter()
        ctx.progress(0.0, "loading the sentence encoder")
        featurizer = Featurizer(get_encoder(cfg.encoder, loaded.device), cfg.ngram_dims)
        preload_general_embeddings(featurizer.encoder)
        history: list[dict[str, float]] = []
        training = ctx.within(0.0, CLASSIFIER_SHARE)

        def on_epoch(epoch: int, loss: float) -> None:
            ctx.step("classifier", epoch, cfg.epochs, {"loss": loss})
            history.append({"step": len(history) + 1, "epoch": epoch, "classifier_loss": loss})
            training.progress(epoch / cfg.epochs, "training the prompt classifier")

        hs = HeadSettings(epochs=cfg.epochs, seed=cfg.seed)
        negatives = classifier_texts(splits["retain"]) + general_prompts()
        classifier, stats = fit_classifier(featurizer, classifier_texts(forget), negatives, cfg.alpha, cfg.folds, hs,
                                           on_epoch, ctx.check_cancel)
        if stats["cv_folds"]:
            ctx.log(f"classifier: recall {stats['classifier_recall']:.3f}, FPR {stats['classifier_fpr']:.4f} "
                    f"({stats['cv_folds']}-fold), threshold {stats['threshold']:.4f}")
        ctx.check_cancel()
        ctx.progress(CLASSIFIER_SHARE, "probing the classifier with rewritten prompts")
        stats["unseen_fpr"] = _unseen_fpr(classifier, splits)
        robustness = probe(classifier, forget, splits["retain"], cfg.seed)
        classifier_s = time.perf_counter() - t0
        ctx.check_cancel()

        entities = data_entities(splits)
        guard = Guard(loaded.model, tok, classifier, make_corruption(cfg.corruption, cfg.n_dims), cfg.strength, cfg.seed,
                      make_protocol(cfg.protocol, tok, entities))
        ctx.progress(PROBE_SHARE, "finding the corruption strength")
        probes: ProbeObjective | None = None
        if cfg.target == "forget_quality":
            metric, target, source = "forget_quality", 1.0, FQ_SOURCE
            objective = Objective(metric, lambda m, c: forget_quality_of(m, tok, forget, r_oracle, check_cancel=c))
        elif cfg.target == "probes" and metric == "rougeL":
            probes = ProbeObjective.build(loaded, splits, reference, _target(loaded, splits, metric, reference, ctx.check_cancel))
            metric, target, source = "worst probe gap", 0.0, PROBES_SOURCE
            objective = Objective(metric, probes.measure)
        else:
            target, source = _target(loaded, splits, metric, reference, ctx.check_cancel)
            objective = Objective(metric, lambda m, c: forget_metric(m, tok, forget, metric, check_cancel=c))
        points = _choose_strength(ctx.within(PROBE_SHARE, 1.0), guard, objective, target, cfg, history)
        t_search = time.perf_counter() - t0 - classifier_s

        unlearned = EcoUnlearned(loaded, asdict(cfg), guard, cfg.encoder, cfg.ngram_dims)
        unlearned.steps = len(history)
        unlearned.trainable_params = classifier.trainable_params
        unlearned.history = history
        unlearned.extra_report = {"eco": EcoSummary(
            **stats, corruption=guard.corruption.name, corruption_params=guard.corruption.params(),
            strength=guard.strength, metric=metric, target=target, target_source=source,
            search_target="probes" if probes else ("metric" if cfg.target == "probes" else cfg.target),
            calibration=probes.report(guard.strength) if probes else None, protocol=guard.protocol.name,
            protocol_subjects=len(subjects(splits)), entities=len(entities), entity_source=ENTITY_SOURCE,
            entity_examples=entities[:3] + _not_subjects(entities, splits)[:9], search=points,
            robustness={family: Probe(**figures) for family, figures in robustness.items()},
            extra={"encoder": cfg.encoder, "ngram_dims": cfg.ngram_dims, "classifier_s": round(classifier_s, 2),
                   "search_s": round(t_search, 2)}).to_dict()}
        ctx.progress(1.0, f"strength {guard.strength:.4g}")
        return unlearned

    @staticmethod
    def load(loaded: Loaded, folder: Path, settings: dict[str, Any]) -> EcoUnlearned:
        guard, spec = load_guard(loaded, Path(folder))
        return EcoUnlearned(loaded, settings, guard, spec["encoder"], spec["ngram_dims"])


PROBES_SOURCE = "each probe family's own target (eco.calibration): the search matches max(value − target) to 0"


class ProbeObjective:
    """The strength search's objective under `--target probes` (eco/calibration.py): the worst
    family's gap to its target, with every evaluated strength's family values kept for the report."""

    def __init__(self, families: list[calibration.Family], repetition_target: float):
        self.families, self.repetition_target = families, repetition_target
        self.targets = {f.name: f.target for f in families} | {"repetition": repetition_target}
        self.seen: dict[float, dict[str, float]] = {}

    @classmethod
    def build(cls, loaded: Loaded, splits: dict[str, Dataset], reference: dict | None,
              trained_target: tuple[float, str]) -> ProbeObjective:
        tok, forget = loaded.tokenizer, splits["forget"]
        budget = min(MAX_NEW_TOKENS, max(len(answer_ids(tok, qa.answer)) for qa in forget.examples))
        reworded, source = calibration.reworded_questions(forget)
        families = calibration.probe_families(
            forget, reworded, source, splits.get("holdout"), reference,
            lambda probes, tokens: calibration.replies(loaded.model, tok, probes, tokens), trained_target, budget)
        oracle = (reference or {}).get("oracle") or {}
        return cls(families, float(oracle.get("forget.repetition", 0.0)))

    def measure(self, guard, check_cancel) -> float:
        values = calibration.measure(guard, guard.tokenizer, self.families, check_cancel)
        self.seen[guard.strength] = values
        return calibration.worst_gap(values, self.targets)

    def report(self, strength: float) -> dict:
        """Each family's target, its source, its value at `strength` and a sample prompt."""
        values = self.seen.get(strength, {})
        out = {f.name: {"target": f.target, "value": values.get(f.name), "source": f.source, "n": len(f.probes),
                        "example": f.probes[0].prompt} for f in self.families}
        out["repetition"] = {"target": self.repetition_target, "value": values.get("repetition"),
                             "source": "oracle's forget repetition", "n": None, "example": None}
        return out


@dataclass(frozen=True)
class Objective:
    """What the strength search measures: a name for the plot and f(model, check_cancel)."""

    name: str
    measure: Callable[[Any, Callable[[], None] | None], float]


def _choose_strength(ctx: RunContext, guard: Guard, objective: Objective, target: float, cfg: EcoConfig,
                     history: list[dict[str, float]]) -> list[dict]:
    """Set guard.strength (searched, or the fixed one) and return the evaluated points:
    matched to `target`, or with `--target forget_quality` maximised (target 1)."""
    per_step = 1 if cfg.target == "forget_quality" else 3  # bisection takes 1, a Newton step up to 3
    total = 1 if cfg.strength > 0 else cfg.grid_points + per_step * cfg.search_steps  # most points the search can take

    def f(strength: float) -> float:
        guard.strength = strength
        return objective.measure(guard, ctx.check_cancel)

    def on_point(point: dict) -> None:
        n = sum(1 for h in history if "strength" in h) + 1
        values = {"strength": point["strength"], "metric": point["metric"], "target": point["target"]}
        ctx.step("search", n, total, values)
        history.append({"step": len(history) + 1, **values})
        ctx.progress(n / total, f"strength {point['strength']:.4g}: "
                     f"{objective.name} {point['metric']:.3f} (target {target:.3f})")

    if cfg.strength > 0:
        point = {"strength": cfg.strength, "metric": f(cfg.strength), "target": target, "phase": "fixed"}
        on_point(point)
        return [point]
    lo, hi = guard.corruption.strength_range(guard.model.get_input_embeddings().weight.shape[1])
    finder: Callable[..., SearchResult] = maximise if cfg.target == "forget_quality" else search
    result = finder(f, target, lo, hi, grid_points=cfg.grid_points, steps=cfg.search_steps, tol=cfg.tolerance,
                    integer=guard.corruption.integer_strength, on_point=on_point, check_cancel=ctx.check_cancel)
    guard.strength = result.strength
    return result.points
