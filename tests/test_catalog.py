"""service/catalog.py: the methods as the UI shows them, and a report made ready to render."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports import ECO, LORA
from unlearning.methods import all_methods, method_names
from unlearning.evaluation.metrics import METRIC_INFO
from unlearning.service import catalog

ROOT = Path(__file__).resolve().parent.parent


def test_methods_describe_themselves_in_menu_order():
    infos = catalog.methods()
    assert [m.name for m in infos] == method_names() and [m.order for m in infos] == sorted(m.order for m in infos)
    for m in infos:
        assert m.label and m.summary and m.plots and all(isinstance(p, catalog.Plot) for p in m.plots)
        assert m.setting_names == {s["name"] for s in m.settings} and "seed" in m.setting_names
    assert catalog.default_method().name == "ihl-fila"
    assert "rank" in catalog.method("ihl-fila").setting_names and "rank" not in catalog.method("eco").setting_names


def test_an_unknown_method_is_a_user_error_that_lists_the_known_ones():
    with pytest.raises(catalog.UserError, match="known methods: eco, ihl-fila"):
        catalog.method("nope")


def test_every_plot_spec_once_by_series():
    union = catalog.plots()
    assert len({p.series for p in union}) == len(union)
    assert {p.series for p in union} >= {"train", "holdout", "classifier", "search"}
    search = next(p for p in catalog.plots("eco") if p.series == "search")
    assert search.x == "strength" and "target" not in search.hidden


@pytest.mark.parametrize("metric", sorted(METRIC_INFO))
def test_which_way_is_better_agrees_with_metric_info(metric):
    """The forget split (or a cross-split metric) points the way METRIC_INFO's arrow does;
    every other split should stay as it was."""
    arrow = METRIC_INFO[metric][0][0]
    if metric in catalog.CROSS_SPLIT:
        assert catalog.better(metric)[0] == arrow
        return
    assert catalog.better(f"forget.{metric}")[0] == arrow
    for split in ("retain", "holdout", "general"):
        assert catalog.better(f"{split}.{metric}") == "≈ before"


def test_holdout_rows_do_not_carry_the_forget_arrow():
    rows = {r.metric: r for r in catalog.report_view(ECO).rows}
    assert rows["forget.rougeL"].better.startswith("↓") and rows["holdout.rougeL"].better == "≈ before"
    assert rows["holdout.mem_acc"].better == "≈ before" and catalog.better("flag_rate") == ""


def test_report_view_orders_headline_then_splits():
    view = catalog.report_view(ECO)
    assert [r.metric for r in view.headline] == ["forget_quality", "model_utility", "mia_auc"]
    order = [r.metric for r in view.rows]
    assert order[:3] == ["forget_quality", "model_utility", "mia_auc"]
    splits = [m.split(".")[0] for m in order[3:]]
    assert splits == sorted(splits, key=("forget", "retain", "holdout", "general").index)
    assert view.label == "ECO prompts (no training)" and view.cost.peak_mem_mb == 812.3


def test_each_method_brings_its_own_blocks():
    eco = catalog.report_view(ECO).blocks
    assert [b.id for b in eco] == ["eco-block"] and eco[0].table.id == "eco-robustness"
    assert eco[0].lines[0].value == 0.98 and "0.01" in eco[0].lines[1].better  # FPR ↓ with its alpha target
    lora = catalog.report_view(LORA).blocks
    assert [b.id for b in lora] == ["lora-block"] and any(ln.value == 2 for ln in lora[0].lines)
    assert catalog.report_view({**ECO, "method": "no-such-method"}).blocks == ()


def test_no_report_is_an_empty_view():
    for report in (None, {}):
        view = catalog.report_view(report)
        assert view.empty and view.rows == () and view.blocks == ()


def test_catalog_and_report_import_without_torch():
    code = "import sys; sys.modules['torch'] = None; import unlearning.service.catalog, unlearning.report"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_registry_lists_no_method_by_name():
    """methods/__init__.py finds its modules; no method's name or module appears in its code."""
    import ast

    import unlearning.methods as package

    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))
    body = tree.body[1:]  # past the docstring
    nodes = [n for node in body for n in ast.walk(node)]
    words = {n.id for n in nodes if isinstance(n, ast.Name)} | {n.name for n in nodes if isinstance(n, ast.alias)}
    words |= {n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    modules = {m.__module__.rsplit(".", 1)[-1] for m in all_methods()}
    assert not words & (set(method_names()) | modules)


def test_muse_splits_carry_arrows():
    """MUSE's splits (suites.py): its forget sets point the way the forget split does, its retain
    and holdout sets should stay as they were."""
    assert catalog.better("verbmem_forget.rougeL") == catalog.better("forget.rougeL") == "↓ (to oracle)"
    assert catalog.better("verbmem_forget.extraction_strength") == "↓ (to oracle)"
    assert catalog.better("knowmem_forget.rougeL") == "↓ (to oracle)"
    assert catalog.better("knowmem_retain.rougeL") == catalog.better("privleak_holdout.nll") == "≈ before"
