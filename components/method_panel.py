"""3. Method — ECO prompts or IHL + FILA (and the baselines), with the settings that matter."""

from __future__ import annotations

import gradio as gr

from unlearning.methods import all_methods, get_method
from unlearning.settings import describe

LABELS = {
    "eco": "ECO prompts (no training)",
    "ihl-fila": "IHL + FILA (LoRA training)",
    "ihl": "baseline: IHL, random-init LoRA",
    "gd": "baseline: gradient difference",
    "ga": "baseline: gradient ascent",
    "gd-fila": "baseline: GD + FILA",
}


# ------------------------------------------------------------------ pure helpers
def method_choices() -> list[tuple[str, str]]:
    names = [m.name for m in all_methods()]
    ordered = [n for n in LABELS if n in names] + [n for n in names if n not in LABELS]
    return [(LABELS.get(n, n), n) for n in ordered]


def setting_specs() -> dict[str, dict]:
    """Every user-facing setting across methods, by name (same name, same meaning)."""
    specs: dict[str, dict] = {}
    for m in all_methods():
        for spec in describe(m.Config):
            specs.setdefault(spec["name"], spec)
    return specs


def fields_of(method: str) -> set[str]:
    return {s["name"] for s in describe(get_method(method).Config)}


def explain(method: str) -> str:
    m = get_method(method)
    return f"**{LABELS.get(method, method)}** — {m.summary}"


def collect(method: str, names: list[str], values: list) -> dict:
    """The settings of `method` from the controls' values (others are ignored)."""
    mine = fields_of(method)
    return {n: v for n, v in zip(names, values) if n in mine and v is not None and v != ""}


# ------------------------------------------------------------------ widgets
def _control(spec: dict):
    label = f"{spec['name'].replace('_', ' ')} — {spec['help']}"
    if spec.get("choices"):
        return gr.Dropdown(list(spec["choices"]), value=spec["default"], label=label, elem_id=f"set-{spec['name']}")
    if spec["type"] == "bool":
        return gr.Checkbox(value=spec["default"], label=label, elem_id=f"set-{spec['name']}")
    if spec["type"] == "int":
        return gr.Number(value=spec["default"], precision=0, label=label, minimum=spec.get("lo"),
                         maximum=spec.get("hi"), elem_id=f"set-{spec['name']}")
    return gr.Number(value=spec["default"], label=label, minimum=spec.get("lo"), maximum=spec.get("hi"),
                     elem_id=f"set-{spec['name']}")


def render() -> dict:
    gr.Markdown("## 3. Method")
    choices = method_choices()
    default = "ihl-fila" if any(v == "ihl-fila" for _, v in choices) else (choices[0][1] if choices else None)
    method = gr.Radio(choices, value=default, label="Method", elem_id="method")
    about = gr.Markdown(explain(default) if default else "No methods are registered.", elem_id="method-about")
    specs = setting_specs()
    names = list(specs)
    with gr.Accordion("Settings", open=True):
        controls = [_control(specs[n]) for n in names]

    def on_method(m: str):
        mine = fields_of(m)
        return [explain(m)] + [gr.update(visible=n in mine) for n in names]

    method.change(on_method, [method], [about] + controls)
    if default:
        mine = fields_of(default)
        for n, c in zip(names, controls):
            c.visible = n in mine
    return {"method": method, "names": names, "controls": controls}
