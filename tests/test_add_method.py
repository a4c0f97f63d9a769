"""Adding a method is one file: a throwaway method module written at run time shows up in the
CLI, the UI menu, the benchmarks' lists and the parametrised tests' lists, with nothing else
edited (issue 11's acceptance test). The file lives only for the test (.gitignore: throwaway_*)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import unlearning.methods as registry
from benchmarks import run as benchmarks
from components import method_panel
from tests import test_methods

ROOT = Path(__file__).resolve().parent.parent
METHODS_DIR = ROOT / "unlearning" / "methods"
MODULE = '''"""A throwaway method written by tests/test_add_method.py: gradient ascent under another name."""

from ..lora.losses import Term, ga
from ..lora.trainer import LoraMethod, LoraSettings, RandomInit
from . import register


@register
class Throwaway(LoraMethod):
    name = "{name}"
    label = "{label}"
    order = 990
    summary = "Gradient ascent again, to show that a method is one file."
    init = RandomInit()

    @classmethod
    def objective(cls, cfg: LoraSettings) -> tuple[Term, ...]:
        return (Term("forget_ga", "forget", ga, cfg.forget_weight),)
'''


def remove(module: str) -> None:
    (METHODS_DIR / f"{module}.py").unlink(missing_ok=True)
    for compiled in (METHODS_DIR / "__pycache__").glob(f"{module}.*"):
        compiled.unlink(missing_ok=True)


def test_a_new_method_file_shows_up_everywhere():
    module = f"throwaway_{uuid.uuid4().hex[:8]}"
    name, label = module.replace("_", "-"), f"throwaway {module[-8:]}: gradient ascent"
    try:
        # the file exists only while a fresh process and this one look for it (others share the tree)
        try:
            (METHODS_DIR / f"{module}.py").write_text(MODULE.format(name=name, label=label), encoding="utf-8")
            cli = subprocess.run([sys.executable, "-m", "unlearning", "unlearn", "--help"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=300)
            found = registry.discover()
        finally:
            remove(module)
        assert cli.returncode == 0, cli.stderr[-2000:]
        assert name in "".join(cli.stdout.split())  # (a) the CLI's --method list (help text wraps at hyphens)
        assert found == [name]
        assert method_panel.method_choices()[-1] == (label, name)  # (b) the UI menu, placed by its order
        assert method_panel.explain(name).startswith(f"**{label}** — Gradient ascent again")
        assert name in benchmarks.methods() and name in benchmarks.lora_methods()  # (c) the benchmarks
        assert (name, "ga") not in benchmarks.fila_pairs()  # random init: not a FILA method
        assert name in test_methods.lora_methods()  # (d) the lists the parametrised tests run over
        assert test_methods.terms(name) == {"forget_ga"}
    finally:
        registry.unregister(name)
        sys.modules.pop(f"unlearning.methods.{module}", None)
        if hasattr(registry, module):
            delattr(registry, module)
    assert name not in registry.method_names() and not (METHODS_DIR / f"{module}.py").exists()
