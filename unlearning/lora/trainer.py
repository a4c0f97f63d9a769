"""The shared LoRA unlearning trainer, and `LoraMethod`, the base of every LoRA method.

A LoRA method is its objective (a tuple of `losses.Term`) and its init (a strategy object:
`RandomInit` — peft's default — or `FisherInit` — FILA), and may narrow the linears it adapts
(`targets`); everything else is here:

1. encode forget/retain, add this run's adapters to the shared base (lora.py), register
   their removal as the run's undo;
2. init the adapters;
3. AdamW on the trained adapter, linear schedule with warm-up, paired forget/retain batches
   (batches.paired_batches, seeded); each step one forward pass per split with the adapters
   on, plus one on the original model (adapters off, no grad) where a term reads a "ref_"
   value; one "train" step event per step with every loss term by name, `total`, `lr` and
   `elapsed_s`; cancellation checked between steps; how batches, gradients and the stop decision
   are shared among processes is the run's step strategy (`Local` here, or distributed.DataParallel);
4. after every `check_every` steps (automatic: every step with `stop=holdout`, every 5 otherwise), the holdout criterion (METHODS.md §FILA Stopping); with
   `stop=holdout` the run ends when it is met, otherwise it is only recorded.

The model stays in eval mode throughout: LoRA dropout is 0 and the Llama-style models have
no other dropout, and `model.training` is shared state.
"""

from __future__ import annotations

import math
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import torch

from ..base import defer_to_chat
from ..batches import Encoded, encode_dataset, pad_id, paired_batches
from ..data import Dataset
from ..errors import UserError
from ..models import SMALL_MODEL_PARAMS, Loaded, input_device
from ..report import Block, Line, Plot, Report
from ..runs import RunContext
from ..settings import validate
from .adapters import Adapters, Init, LoraUnlearned, adapters_off, check_trainable, target_linears
from .deltas import features, out_in
from .fila import FisherStats, accumulate_fisher, eps_share_message, fila_init_layers, relative_importance
from .losses import Term, nll
from .settings import PLOT_CHECK_EVERY, IhlSettings, LoraSettings, auto_lr, own_default  # noqa: F401  (their old home: tests import them here)
from .steps import Batch, StepStrategy, Values, reference_pass, split_pool, step_gradients
from .stopping import HoldoutCriterion
from .summary import Adapter, Fila, LoraSummary, Stopping

if TYPE_CHECKING:
    from .distributed import DataParallel

MAX_GRAD_NORM = 1.0


def check_every(cfg: LoraSettings) -> int:
    """How often the holdout criterion is measured: cfg.check_every, or for 0 every step when it
    decides the stop, every PLOT_CHECK_EVERY steps when it only feeds the plot (one measurement
    costs about a training step: measured every step it doubled a 30-step run's training time)."""
    if cfg.check_every > 0:
        return cfg.check_every
    return 1 if cfg.stop == "holdout" else PLOT_CHECK_EVERY


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Multiplier of the learning rate at 0-based `step`: linear warm-up over `warmup` steps
    (never 0, so no step is wasted), then linear decay that reaches 0 just after the last."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


# ------------------------------------------------------------------------ inits


@dataclass
class TrainData:
    forget: list[Encoded]
    retain: list[Encoded]
    pad: int


class RandomInit:
    """peft's default: A kaiming-uniform (a = √5), B = 0, so step 0 is the base model. Drawn
    from a generator seeded with `seed`, never from torch's global one."""

    offset = False  # B0 = 0: nothing to subtract
    share = 0.0  # of the method's progress bar: no pass over the data
    fisher_pass = False  # holds nothing beside the weights

    def __call__(self, ctx: RunContext, loaded: Loaded, adapters: Adapters, data: TrainData,
                 cfg: LoraSettings, steps: StepStrategy | None = None) -> tuple[Init, dict[str, Any]]:
        g = torch.Generator().manual_seed(cfg.seed)
        init: Init = {}
        for name, linear in target_linears(loaded.model).items():
            fan_in, fan_out = features(linear)
            a0 = torch.empty(cfg.rank, fan_in)
            torch.nn.init.kaiming_uniform_(a0, a=math.sqrt(5), generator=g)
            init[name] = (a0, torch.zeros(fan_out, cfg.rank))
        return init, {}


class FisherInit:
    """FILA (fila.py): Fisher over the forget set with paired retain batches on the base model,
    then each layer's Fisher-weighted rank-r part; the offset adapter cancels it at step 0."""

    offset = True
    share = 0.1  # of the method's progress bar: a pass over the forget set and one SVD per layer
    fisher_pass = True  # two float32 Fisher sums of the targeted weights beside them (model_check.fisher_bytes)

    def __call__(self, ctx: RunContext, loaded: Loaded, adapters: Adapters, data: TrainData,
                 cfg: LoraSettings, steps: StepStrategy | None = None) -> tuple[Init, dict[str, Any]]:
        linears = target_linears(loaded.model)
        weights = {n: m.weight for n, m in linears.items()}
        n_batches = math.ceil(len(data.forget) / cfg.batch_size)

        steps = steps or Local()
        batches, n_batches = steps.own(paired_batches(data.forget, data.retain, cfg.batch_size, data.pad, cfg.seed),
                                       n_batches)

        def each_batch(i: int) -> None:  # the Fisher pass takes the first half of the progress bar
            ctx.check_cancel()
            ctx.progress(i / n_batches / 2, f"Fisher information, batch {i + 1}/{n_batches}")

        def each_layer(i: int) -> None:  # and the SVDs the second half
            ctx.check_cancel()
            ctx.progress((1 + i / len(weights)) / 2, f"FILA init: SVD of layer {i + 1}/{len(weights)}")

        stats = steps.fisher(accumulate_fisher(loaded.model, weights, batches, each_batch,
                                               lambda: adapters_off(loaded.model), steps.pool))
        f_rel, share = relative_importance(stats)
        ctx.log(eps_share_message(share))
        # FILA works on (out, in) matrices; a Conv1D's weight and its Fisher are stored (in, out)
        oriented = {n: out_in(linears[n]) for n in weights}
        f_rel = {n: out_in(linears[n], f) for n, f in f_rel.items()}
        init = fila_init_layers(oriented, f_rel, cfg.rank, adapters.config.lora_alpha, cfg.seed, each_layer)
        return init, {"eps_share": share, "forget_tokens": stats.n_forget, "retain_tokens": stats.n_retain}


# ---------------------------------------------------------------------- training


class Local:
    """The one-process step strategy (steps.StepStrategy): every row here, a step's splits side
    by side where `split_pool` gives a thread; a context that lets the thread go."""

    main = True

    def __init__(self, loaded: Loaded | None = None):
        self.pool = split_pool(loaded) if loaded is not None else None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def shard(self, batch: Batch) -> Batch:
        return batch

    def own(self, batches, n: int):
        return batches, n

    def gradients(self, model, terms: tuple[Term, ...], batch: Batch, device, reference: dict[str, dict[str, Any]],
                  params: list[torch.Tensor]) -> tuple[Values, list[torch.Tensor]]:
        return step_gradients(model, terms, batch, device, reference, params, self.pool)

    def fisher(self, stats: FisherStats) -> FisherStats:
        return stats

    def decide(self, measure):
        return measure()


@dataclass
class Outcome:
    history: list[dict[str, float]] = field(default_factory=list)
    checks: list[dict[str, float]] = field(default_factory=list)
    reached_at: int | None = None
    steps: int = 0


def learning_rate(cfg: LoraSettings, model) -> float:
    """cfg.lr, or for 0 the automatic one of cfg's class for this model's size (benchmarks/RESULTS.md
    has the sweeps behind each class's AUTO_LR)."""
    if cfg.lr > 0:
        return cfg.lr
    small, large = type(cfg).AUTO_LR
    return small if sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS else large


def train(ctx: RunContext, loaded: Loaded, adapters: Adapters, terms: tuple[Term, ...], data: TrainData,
          cfg: LoraSettings, criterion: HoldoutCriterion | None, steps: StepStrategy) -> Outcome:
    """Train the adapter, `steps` sharing the work among the run's processes."""
    params = adapters.parameters()
    base_lr = learning_rate(cfg, loaded.model)
    if cfg.lr == 0:
        ctx.log(f"learning rate {base_lr:g} (automatic for a model of this size)")
    opt = torch.optim.AdamW(params, lr=base_lr, weight_decay=0.0)
    warm = round(cfg.warmup * cfg.steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.steps, warm))
    epochs = math.ceil(cfg.steps / math.ceil(len(data.forget) / cfg.batch_size))
    batches = paired_batches(data.forget, data.retain, cfg.batch_size, data.pad, cfg.seed, epochs)
    device, out, t0 = input_device(loaded.model), Outcome(), time.perf_counter()
    every = check_every(cfg)
    for step, batch in enumerate(islice(batches, cfg.steps), 1):
        ctx.check_cancel()
        lr = float(sched.get_last_lr()[0])  # a tensor if the lr was given as one; the record holds floats
        batch = steps.shard(batch)  # this process's rows of the global batch
        defer_to_chat(loaded.model)  # chat replies being decoded on this base go first (base.py)
        reference = reference_pass(loaded.model, terms, batch, device)  # before the adapters go on
        with adapters.use(train=True) as model:
            values, grads = steps.gradients(model, terms, batch, device, reference, params)  # the global batch's
            for p, g in zip(params, grads):
                p.grad = g
            torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            opt.step()
            opt.zero_grad(set_to_none=True)
        sched.step()
        record = {**{k: v.item() for k, v in values.items()}, "lr": lr, "elapsed_s": time.perf_counter() - t0}
        out.history.append({"step": step, **record})
        out.steps = step
        ctx.step("train", step, cfg.steps, record)
        ctx.progress(step / cfg.steps, f"step {step}/{cfg.steps}")
        if criterion is not None and (step % every == 0 or step == cfg.steps):
            measured, reached = steps.decide(lambda: _measure(criterion, adapters, ctx, steps.pool))
            out.checks.append({"step": step, **measured})
            ctx.step("holdout", step, cfg.steps, {f"forget_{k}": v for k, v in measured.items()}
                     | {f"holdout_{k}": v for k, v in criterion.target.items()})
            if out.reached_at is None and reached:
                out.reached_at = step
                ctx.log(f"step {step}: the forget set is now known no better than the holdout set")
                if cfg.stop == "holdout":
                    break
    return out


def _measure(criterion: HoldoutCriterion, adapters: Adapters, ctx: RunContext, pool) -> tuple[dict[str, float], bool]:
    """The holdout criterion on the adapted model, and whether it is met."""
    with adapters.use() as model:
        measured = criterion.measure(model, ctx.check_cancel, pool)
    return measured, criterion.reached(measured) if measured else False


# ---------------------------------------------------------------- the method base


class LoraMethod:
    """Subclasses set `name`, `label`, `order`, `summary`, `init` and their objective: a `forget`
    term (`forget_settings` names the settings its loss takes), to which NLL on the retain set is added
    unless `retain_nll` is False (open-unlearning's GradDiff), or a whole `objective(cfg)`.
    `Config` may be replaced by a subclass of LoraSettings with other defaults or more fields,
    and `targets(model, cfg)` may adapt fewer linears than all. A variant is a subclass."""

    name = ""
    label = ""  # the UI menu's label
    order = 100  # position in the menu (and in every list of methods)
    summary = ""
    Config: ClassVar[type[LoraSettings]] = LoraSettings
    init: RandomInit | FisherInit = RandomInit()  # a stateless strategy
    fisher_pass: ClassVar[bool] = False  # its init's, so that the size check counts it before the run
    trains_weights = True  # so it may run data-parallel (distributed.check_job)
    forget: Term | None = None  # its weight is cfg.forget_weight
    forget_settings: tuple[str, ...] = ()  # the settings its loss takes by name (NPO's beta)
    retain_nll = True
    plots = (Plot("train", "losses per step", hidden=("lr", "elapsed_s")),
             Plot("holdout", "holdout criterion: forget → holdout level"))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.fisher_pass = cls.init.fisher_pass

    @classmethod
    def report_blocks(cls, report: Report) -> list[Block]:
        """The adapter and how the run stopped (the `lora`, `stopping` and `fila` blocks)."""
        s = LoraSummary.of(report)
        if s.lora is None and s.stopping is None and s.fila is None:
            return []
        lora, stopping = s.lora or Adapter(), s.stopping or Stopping()
        lines = [Line("adapter rank r", lora.rank), Line("adapted layers", lora.layers),
                 Line("stopping rule", stopping.rule), Line("holdout criterion met at step", stopping.reached_at)]
        if s.fila is not None:
            lines.append(Line("FILA: weight entries where ε exceeds F_r/N_r", s.fila.eps_share,
                              "↓ (high: the retain set barely shapes the init)", ".1%"))
        return [Block("LoRA training", tuple(lines), id="lora-block")]

    @classmethod
    def targets(cls, model, cfg: LoraSettings) -> list[str] | None:
        """The linears to adapt, by module name; None: every one but the output head."""
        return None

    @classmethod
    def forget_term(cls, cfg: LoraSettings) -> Term:
        if cls.forget is None:
            raise TypeError(f"{cls.__name__} must define `forget` or objective(cfg): the method's loss terms")
        if not cls.forget_settings:
            return replace(cls.forget, weight=cfg.forget_weight)
        own = cls.Config.of(cfg)
        fn = partial(cls.forget.fn, **{name: getattr(own, name) for name in cls.forget_settings})
        return replace(cls.forget, fn=fn, weight=cfg.forget_weight)

    @classmethod
    def objective(cls, cfg: LoraSettings) -> tuple[Term, ...]:
        retain = (Term("retain_nll", "retain", nll, cfg.retain_weight),) if cls.retain_nll else ()
        return (cls.forget_term(cfg), *retain)

    @classmethod
    def run(cls, ctx: RunContext, loaded: Loaded, splits: dict[str, Dataset], cfg: LoraSettings,
            reference: dict[str, Any] | None = None, group: DataParallel | None = None) -> LoraUnlearned:
        """`group`: the launched processes this run is one of (distributed.start); None: one process."""
        validate(cfg)
        check_trainable(loaded)
        tok = loaded.tokenizer
        data = TrainData(encode_dataset(tok, splits["forget"]), encode_dataset(tok, splits["retain"]), pad_id(tok))
        if not data.forget or not data.retain:
            raise UserError("Unlearning needs at least one forget and one retain example.")
        before = (reference or {}).get("before")
        criterion = HoldoutCriterion.build(loaded, splits, data.forget, before)
        if cfg.stop == "holdout" and criterion is None:
            raise UserError("--stop holdout needs a holdout set (text the model never saw); give one with --holdout.")
        adapters = Adapters.create(loaded.model, cls.name, cfg.rank, 2 * cfg.rank, cls.init.offset, cls.targets(loaded.model, cfg))
        ctx.on_abort(adapters.remove)
        chosen: AbstractContextManager[StepStrategy] = Local(loaded) if group is None else nullcontext(group)
        with chosen as steps:
            init, init_report = cls.init(ctx.within(0.0, cls.init.share), loaded, adapters, data, cfg, steps)
            adapters.write_init(init)
            outcome = train(ctx.within(cls.init.share, 1.0), loaded, adapters, cls.objective(cfg), data, cfg, criterion, steps)
        return cls._artifact(loaded, cfg, adapters, outcome, init_report, criterion)

    @classmethod
    def _artifact(cls, loaded: Loaded, cfg: LoraSettings, adapters: Adapters, outcome: Outcome,
                  init_report: dict[str, Any], criterion: HoldoutCriterion | None) -> LoraUnlearned:
        unlearned = LoraUnlearned(loaded, asdict(cfg), cls.name, adapters)
        unlearned.history, unlearned.steps = outcome.history, outcome.steps
        target: dict[str, float | None] | None = {**criterion.target} if criterion else None
        unlearned.extra_report |= LoraSummary(
            lora=Adapter(rank=cfg.rank, alpha=2 * cfg.rank, layers=len(adapters._layers())),
            stopping=Stopping(rule=cfg.stop, target=target, reached_at=outcome.reached_at, checks=outcome.checks),
            fila=Fila(**init_report) if init_report else None).to_dict()
        return unlearned

    @classmethod
    def load(cls, loaded: Loaded, folder: Path, settings: dict[str, Any]) -> LoraUnlearned:
        return LoraUnlearned.open(loaded, Path(folder), settings, cls.name)
