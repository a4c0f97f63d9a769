"""Data — upload forget and retain files or take the workshop preset; preview and errors."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from unlearning.service import Backend, Dataset, Session, UserError, limits
from unlearning.service.knows import Known

from .common import error_box

PREVIEW_ROWS = 5
ACCEPTED = [".txt", ".md", ".jsonl", ".json", ".csv"]
TEMPLATES = Path(__file__).resolve().parent.parent / "assets" / "templates"
FORMATS = """**What a file needs.** The forget file and the retain file each hold one kind of example:

- **Questions and answers** — `.jsonl` (one JSON object per line), `.json` (a list of them) or `.csv` (a header
  row): the fields `question` and `answer`; optional `subject` (who the fact is about), `paraphrased_answer` and
  `perturbed_answers` (a list: wrong answers, for the truth ratio).
- **Passages** — `.txt` or `.md`: one passage per paragraph (a blank line between them); or `.jsonl` / `.csv`
  with a `text` field.

Both files are of the same kind, and no example may be in both. Download a template, replace its examples,
upload it."""


# ------------------------------------------------------------------ pure helpers
def summary(role: str, ds: Dataset) -> str:
    """'forget.jsonl: 40 QA pairs about 4 subjects, ~420 words' — one line for the panel."""
    what = "QA pairs" if ds.kind == "qa" else "passages"
    words = sum(len((f"{ex.question} {ex.answer}" if ds.kind == "qa" else ex.text).split()) for ex in ds.examples)
    subjects = {getattr(ex, "subject", None) for ex in ds.examples} - {None}
    about = f" about {len(subjects)} subjects" if subjects else ""
    # <code>, not backticks: a code span would show the escaped name's entities literally.
    return f"**{role}** — <code>{html.escape(ds.name)}</code>: {len(ds)} {what}{about}, ~{words:,} words"


def preview_rows(ds: Dataset, n: int = PREVIEW_ROWS) -> list[list[str]]:
    if ds.kind == "qa":
        return [[ex.question, ex.answer] for ex in ds.examples[:n]]
    return [[ex.text[:200] + ("…" if len(ex.text) > 200 else ""), ""] for ex in ds.examples[:n]]


def limits_table() -> str:
    """The engine's limits, as the CLI's `limits` command prints them."""
    rows = "\n".join(f"| {what} | {value} |" for what, value in limits.describe())
    return "| limit | value |\n|---|---|\n" + rows


def is_upload(path: Path) -> bool:
    """Is `path` one of Gradio's uploads? They live in its upload folder: GRADIO_TEMP_DIR, or
    <tempdir>/gradio (gradio.utils.get_upload_folder). Anything else — '/etc/passwd' sent by a
    crafted API call, a symlink out of the folder — is not read."""
    return path.resolve().is_relative_to(Path(get_upload_folder()).resolve())


def known_line(known: Known | None, taught: bool = False) -> str:
    """Whether the model already knows the forget set, and what to do about it."""
    if known is None:
        return ""
    model = "the taught model" if taught else "the model"
    said = (f"<b>Does {model} already know the forget set?</b> It answers {known.asked} of its {known.of} questions "
            f"(a sample) with ROUGE-L recall <b>{known.share:.0%}</b>: ")  # HTML: markdown is not read inside a <div>
    if known.knows:
        return '<div id="data-known">' + said + f"{model} already knows {known.share:.0%} of it, so there is something to unlearn.</div>"
    return ('<div id="data-known">' + said + f"{model} already knows {known.share:.0%} of it, so unlearning would "
            "measure nothing. Press <b>Teach first</b> on the Run tab: it teaches a copy of the model these facts "
            "(and an oracle your retain file only), then unlearn.</div>")


def describe_session_data(session: Session) -> tuple[str, list[list[str]]]:
    lines = [summary(role, session.data[role]) for role in ("forget", "retain") if role in session.data]
    rows = preview_rows(session.data["forget"]) if "forget" in session.data else []
    return "<br>".join(lines) or "No data yet: upload files or use the preset.", rows


# ------------------------------------------------------------------ handlers
def use_preset(kind: str, session: Session):
    session.use_preset("qa" if kind.startswith("QA") else "passage")
    text, rows = describe_session_data(session)
    return session, text, rows, "", ""


def use_workshop(session: Session):
    """The QA preset, for a one-click try."""
    session, text, rows, _, _ = use_preset("QA", session)
    return session, text, rows


def knower(backend: Backend):
    """The Data tab's line on whether the model already knows the forget set (after new data,
    a new model or Teach first); empty when it cannot be asked (passages, a model still loading)."""
    def knows(session: Session, name: str) -> str:
        studio = getattr(backend, "studio", None)
        if studio is None or "forget" not in session.data:
            return ""
        try:
            return known_line(studio.knows(session, name), session.taught is not None)
        except UserError:
            return ""

    return knows


def on_upload(role: str):
    def handler(file, session: Session):
        if file is None:
            session.remove(role)
            text, rows = describe_session_data(session)
            return session, text, rows, ""
        path = Path(file if isinstance(file, str) else file.name)
        display = getattr(file, "orig_name", None) or path.name
        try:
            if not is_upload(path):
                raise UserError(f"{display} was not uploaded through this page, so it is not read.")
            session.own(path)  # Gradio's copy of the upload goes when the session does
            session.upload(role, path, display)
            message = ""
        except UserError as e:
            session.remove(role)
            message = error_box(str(e))
        text, rows = describe_session_data(session)
        return session, text, rows, message

    return handler


def take_out_rejected(message: str):
    """After an upload: a rejected file is taken out of its box (which kept showing a file the
    session does not hold); an accepted one stays."""
    return None if message else gr.skip()


# ------------------------------------------------------------------ widgets
@dataclass(frozen=True)
class DataPanel:
    info: gr.Markdown  # what the session's data is; changes when it does
    preview: gr.Dataframe
    preset: gr.Button
    known: gr.HTML  # whether the model already knows the forget set (knower)


def render(state: gr.State) -> DataPanel:
    gr.Markdown("Upload a **forget** file (what the model should forget) and a **retain** file "
                f"(what it must keep), or take the workshop preset. Accepted: {', '.join(ACCEPTED)} — "
                f"up to {limits.MAX_FILE_BYTES // 2**20} MB each.")
    with gr.Row():
        kind = gr.Radio(["QA (questions and answers)", "Passages (biographies)"], value="QA (questions and answers)",
                        label="Preset kind", scale=2)
        preset = gr.Button("Use the workshop preset", variant="secondary", scale=1, elem_id="use-preset")
    with gr.Row():
        with gr.Column():
            forget_file = gr.File(label="Forget file", file_types=ACCEPTED, elem_id="forget-file")
            forget_error = gr.HTML(elem_id="forget-error")
        with gr.Column():
            retain_file = gr.File(label="Retain file", file_types=ACCEPTED, elem_id="retain-file")
            retain_error = gr.HTML(elem_id="retain-error")
    info = gr.Markdown("No data yet: upload files or use the preset.", elem_id="data-summary")
    known = gr.HTML(elem_id="data-known-box")  # right under the summary: seen without scrolling
    preview = gr.Dataframe(headers=["forget: question / passage", "answer"], value=[], interactive=False,
                           wrap=True, label="Preview (first rows of the forget set)", elem_id="data-preview")
    with gr.Row(elem_id="data-formats"):
        gr.Markdown(FORMATS, elem_id="data-format-help")
        with gr.Column(scale=0, min_width=240):
            gr.set_static_paths([TEMPLATES])  # served from assets/, not copied into the uploads the app sweeps
            for name, label in (("qa-template.jsonl", "Template: questions (.jsonl)"),
                                ("qa-template.csv", "Template: questions (.csv)"),
                                ("passages-template.txt", "Template: passages (.txt)")):
                gr.DownloadButton(label, value=str(TEMPLATES / name), size="sm", elem_id=f"template-{name.replace('.', '-')}")
    with gr.Accordion("Limits", open=False, elem_id="limits"):
        gr.Markdown(limits_table())

    preset.click(use_preset, [kind, state], [state, info, preview, forget_error, retain_error], api_name="use_preset")
    # upload and clear, not change: a rejected file is taken out of its box, which must not count as clearing it
    for role, box, error in (("forget", forget_file, forget_error), ("retain", retain_file, retain_error)):
        outputs = [state, info, preview, error]  # the API's /upload_<role> answers (summary, preview, error)
        box.upload(on_upload(role), [box, state], outputs, api_name=f"upload_{role}").then(
            take_out_rejected, [error], [box], api_visibility="private")
        box.clear(on_upload(role), [box, state], outputs, api_visibility="private")
    return DataPanel(info, preview, preset, known)
