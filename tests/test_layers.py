"""The layers' rules, checked on the source: the UI reaches the engine only through
unlearning.service and never imports torch; the engine never imports gradio; the panels have
no branch on whether ZeroGPU is in use; no module imports another that imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI = [ROOT / "app.py", *sorted((ROOT / "components").glob("*.py"))]
ENGINE = sorted((ROOT / "unlearning").rglob("*.py"))


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append(node.module)
    return out


def test_the_ui_reaches_the_engine_only_through_the_service_layer():
    for path in UI:
        for module in imported_modules(path):
            assert module.split(".")[0] != "torch", f"{path.name} imports {module}"
            if module.split(".")[0] == "unlearning":
                assert module == "unlearning.service" or module.startswith("unlearning.service."), f"{path.name} imports {module}"


def test_the_ui_imports_without_torch():
    """With torch made unimportable, the app and every panel still import (the engine loads
    torch only when a model is needed)."""
    code = "import sys; sys.modules['torch'] = None; import app, components.run_panel, components.report_panel"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    # and wrote nothing into the source tree (Gradio writes a .pyi next to a module that
    # defines a component class)
    assert not [p for folder in ("components", "unlearning") for p in (ROOT / folder).rglob("*.pyi")]


def test_the_engine_never_imports_gradio():
    for path in ENGINE:
        assert not any(m.split(".")[0] == "gradio" for m in imported_modules(path)), path


def test_no_panel_branches_on_zero_gpu():
    """No name, attribute or import in a panel (or app.py) is about ZeroGPU or GPUs: the
    backend the service chose is the only thing that knows (comments may explain it)."""
    for path in UI:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            words = {ast.Name: lambda n: [n.id], ast.Attribute: lambda n: [n.attr], ast.arg: lambda n: [n.arg],
                     ast.FunctionDef: lambda n: [n.name], ast.alias: lambda n: [n.name]}.get(type(node), lambda n: [])(node)
            for word in words:
                low = word.lower()
                assert not any(bad in low for bad in ("gpu", "spaces", "remote", "worker")), \
                    f"{path.name}: {word}"


def module_graph() -> dict[str, set[str]]:
    """Every engine and UI module → the modules of this tree it imports (relative imports
    resolved, `from package import module` counted as importing the module)."""
    files = {}
    for path in UI + ENGINE:
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []
    for root, edges in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(edges)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    assert cycles(module_graph()) == []
