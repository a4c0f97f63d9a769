"""3. Method — ECO prompts or IHL + FILA (and the baselines), with the settings that matter."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from unlearning.service import catalog


# ------------------------------------------------------------------ pure helpers
def method_choices() -> list[tuple[str, str]]:
    """(label, name) of every registered method, in the methods' own menu order."""
    return [(m.label, m.name) for m in catalog.methods()]


def setting_specs() -> dict[str, dict]:
    """Every user-facing setting across methods, by name (same name, same meaning)."""
    specs: dict[str, dict] = {}
    for m in catalog.methods():
        for spec in m.settings:
            specs.setdefault(spec["name"], spec)
    return specs


def fields_of(method: str) -> set[str]:
    return catalog.method(method).setting_names


def labels_of(method: str) -> dict[str, str]:
    """Each of `method`'s settings' label in its own words (a shared name, such as seed, seeds
    different things: ECO's classifier, a LoRA method's adapter init)."""
    return {spec["name"]: _label(spec) for spec in catalog.method(method).settings}


def _label(spec: dict) -> str:
    return f"{spec['name'].replace('_', ' ')} — {spec['help']}"


def explain(method: str) -> str:
    m = catalog.method(method)
    return f"**{m.label}** — {m.summary}"


def collect(method: str, names: list[str], values: list) -> dict:
    """The settings of `method` from the controls' values (others are ignored)."""
    mine = fields_of(method)
    return {n: v for n, v in zip(names, values) if n in mine and v is not None and v != ""}


# ------------------------------------------------------------------ widgets
def tolerant(control: gr.Number) -> gr.Number:
    """`control`, handing whatever an API client sent ("12", "NaN", 1e9) to the engine, whose
    settings check answers in one sentence naming the setting, where Gradio's own conversion
    would fail with a bare "Error". (An instance attribute, not a subclass: Gradio writes a
    .pyi file next to any module that defines a component class.)"""
    convert = control.preprocess

    def preprocess(payload):
        try:
            return convert(payload)
        except Exception:  # noqa: BLE001  any value Gradio cannot convert: the engine explains it
            return payload

    setattr(control, "preprocess", preprocess)  # noqa: B010  (mypy refuses assigning to a method)
    return control


def _control(spec: dict):
    label = _label(spec)
    if spec.get("choices"):
        # allow_custom_value: an API client's "8" for 8, or a value not offered, reaches the
        # engine's check (one sentence) instead of Gradio's list check
        return gr.Dropdown(list(spec["choices"]), value=spec["default"], label=label, allow_custom_value=True,
                           elem_id=f"set-{spec['name']}")
    if spec["type"] == "bool":
        return gr.Checkbox(value=spec["default"], label=label, elem_id=f"set-{spec['name']}")
    if spec["type"] == "int":
        return tolerant(gr.Number(value=spec["default"], precision=0, label=label, minimum=spec.get("lo"),
                                  maximum=spec.get("hi"), elem_id=f"set-{spec['name']}"))
    return tolerant(gr.Number(value=spec["default"], label=label, minimum=spec.get("lo"), maximum=spec.get("hi"),
                              elem_id=f"set-{spec['name']}"))


def selector() -> gr.Dropdown:
    """The method menu (the page's header holds it)."""
    default = getattr(catalog.default_method(), "name", None)
    return gr.Dropdown(method_choices(), value=default, label="Method", elem_id="method", scale=3, min_width=220)


@dataclass(frozen=True)
class MethodPanel:
    method: gr.Dropdown  # the header's menu
    names: list[str]  # every method's setting names, in the order of `controls`
    controls: list[gr.components.Component]


def render(method: gr.Dropdown) -> MethodPanel:
    """The chosen method's explanation and settings, collapsed: every setting with its help."""
    default = method.value if isinstance(method.value, str) else None
    specs = setting_specs()
    names = list(specs)
    with gr.Accordion(_settings_label(default), open=False, elem_id="settings") as accordion:
        about = gr.Markdown(explain(default) if default else "No methods are registered.", elem_id="method-about")
        controls = [_control(specs[n]) for n in names]

    def on_method(m: str):
        try:
            mine = fields_of(m)
        except catalog.UserError:  # a name typed by an API client: the run's check explains it
            return [gr.skip(), gr.skip()] + [gr.skip() for _ in names]
        labels = labels_of(m)
        return [explain(m), gr.Accordion(label=_settings_label(m))] + [
            gr.update(visible=True, label=labels[n]) if n in mine else gr.update(visible=False) for n in names]

    method.change(on_method, [method], [about, accordion] + controls)
    if default:
        mine, labels = fields_of(default), labels_of(default)
        for n, c in zip(names, controls):
            c.visible = n in mine
            c.label = labels.get(n, c.label)
    return MethodPanel(method, names, controls)


def _settings_label(method: str | None) -> str:
    return f"What {catalog.method(method).label} does, and its settings" if method else "Settings"
