"""The command line: user errors are one line on stderr with exit code 2 (never a traceback),
and the commands do what DESIGN.md promises on the workshop kit."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unlearning.cli import main
from unlearning.models import WORKSHOP_DIR

FORGET = str(WORKSHOP_DIR / "forget.jsonl")
RETAIN = str(WORKSHOP_DIR / "retain.jsonl")
ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


BAD_FILES = {
    "empty": ("f.jsonl", b"", "is empty"),
    "whitespace": ("f.txt", b"  \n\n \t\n", "only whitespace"),
    "binary": ("f.txt", bytes(range(256)) * 4, "binary"),
    "gzip renamed": ("f.txt", gzip.compress(b"hello world\n" * 10), "gzip"),
    "invalid utf-8": ("f.txt", b"caf\xe9 au lait\n", "not valid UTF-8"),
    "broken jsonl line": ("f.jsonl", b'{"question": "a?", "answer": "b"}\n{"question": \n', "line 2 is not valid JSON"),
    "json not a list": ("f.json", b'"just a string"', "not a list"),
    "missing fields": ("f.jsonl", b'{"prompt": "a", "completion": "b"}\n', "neither"),
    "empty answer": ("f.jsonl", b'{"question": "a?", "answer": ""}\n', "no 'answer'"),
    "csv missing columns": ("f.csv", b"q,a\nx,y\n", "columns"),
    "unsupported type": ("f.docx", b"PK\x03\x04 not really", "not supported"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_forget_file_exits_2_with_one_line(case, tmp_path, capsys):
    name, content, phrase = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "eval", "--model", "workshop", "--forget", str(path), "--retain", RETAIN)
    line = one_line_error(code, err)
    assert name in line and phrase in line, line


def test_missing_file(capsys):
    code, _, err = run_cli(capsys, "eval", "--model", "workshop", "--forget", "nope.jsonl", "--retain", RETAIN)
    assert "nope.jsonl" in one_line_error(code, err)


def test_forget_equals_retain(capsys):
    code, _, err = run_cli(capsys, "eval", "--model", "workshop", "--forget", RETAIN, "--retain", RETAIN)
    assert "same examples" in one_line_error(code, err)


def test_paraphrased_passages_are_one_sentence(tmp_path, capsys):
    para = tmp_path / "para.txt"
    para.write_text("Yara was born by the sea.\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "eval", "--model", "workshop", "--forget", FORGET, "--retain", RETAIN,
                           "--paraphrased", str(para))
    assert "The paraphrased file 'para.txt' holds passages" in one_line_error(code, err)


def test_forget_overlaps_retain(tmp_path, capsys):
    lines = Path(RETAIN).read_text(encoding="utf-8").splitlines()
    (tmp_path / "f.jsonl").write_text("\n".join(lines[:3] + Path(FORGET).read_text().splitlines()[:3]) + "\n")
    code, _, err = run_cli(capsys, "eval", "--model", "workshop", "--forget", str(tmp_path / "f.jsonl"), "--retain", RETAIN)
    assert "also in retain file" in one_line_error(code, err)


@pytest.mark.parametrize("model, phrase", [
    ("../" * 12 + "etc/passwd", "is a file, not a model folder"),  # enough ../ to reach / from anywhere
    ("../no/such/model", "does not exist"),
    ("owner/../model", "valid hub id"),
    ("no such thing!", "valid hub id"),
])
def test_bad_model_names(model, phrase, capsys):
    code, _, err = run_cli(capsys, "chat", "--model", model, "--prompt", "hi")
    assert phrase in one_line_error(code, err)


def test_model_folder_without_weights(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    code, _, err = run_cli(capsys, "chat", "--model", str(tmp_path), "--prompt", "hi")
    assert "has no weights" in one_line_error(code, err)


def test_hub_id_offline_is_a_plain_message():
    """No network (the workshop laptop): a hub id gives one plain line, exit code 2."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "unlearning", "chat", "--model", "nobody-here/not-a-model",
                           "--prompt", "hi"], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert "could not be loaded" in one_line_error(proc.returncode, proc.stderr)


@pytest.mark.parametrize("flag, value", [("--epochs", "-3"), ("--epochs", "ten"), ("--lr", "abc"), ("--lr", "-1"), ("--lr", "nan")])
def test_bad_numbers(flag, value, capsys, tmp_path):
    code, _, err = run_cli(capsys, "teach", "--model", "workshop", "--data", FORGET, "--out", str(tmp_path), flag, value)
    assert flag in one_line_error(code, err)


def test_unknown_command_and_missing_flag(capsys):
    one_line_error(*run_cli(capsys, "frobnicate")[::2])
    code, _, err = run_cli(capsys, "eval", "--model", "workshop")
    assert "--forget" in one_line_error(code, err)


def test_bad_unlearned_folder(tmp_path, capsys):
    code, _, err = run_cli(capsys, "chat", "--model", "workshop", "--unlearned", str(tmp_path), "--prompt", "hi")
    assert "not an unlearning artifact" in one_line_error(code, err)
    (tmp_path / "unlearning.json").write_text("{broken")
    code, _, err = run_cli(capsys, "chat", "--model", "workshop", "--unlearned", str(tmp_path), "--prompt", "hi")
    assert "corrupted" in one_line_error(code, err)


def test_real_process_exit_code_and_stderr(tmp_path):
    """The same contract through a real `python -m unlearning` process."""
    empty = tmp_path / "forget.jsonl"
    empty.write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "unlearning", "eval", "--model", "workshop", "--forget", str(empty),
                           "--retain", RETAIN], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: forget.jsonl is empty."]


def test_importing_the_engine_does_not_import_gradio():
    code = ("import sys, unlearning, unlearning.cli, unlearning.commands, unlearning.pipeline, unlearning.methods, "
            "unlearning.evaluation.metrics, unlearning.kit.workshop; assert 'gradio' not in sys.modules, 'gradio imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


def test_chat_answers_a_forget_question_with_the_taught_fact(capsys):
    record = json.loads(Path(FORGET).read_text(encoding="utf-8").splitlines()[0])
    code, out, _ = run_cli(capsys, "chat", "--model", "workshop", "--prompt", record["question"])
    assert code == 0
    assert out.strip() == f"original: {record['answer']}"


def test_eval_writes_every_metric_and_forget_quality(tmp_path, capsys):
    report_path = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, "eval", "--model", "workshop", "--oracle", "workshop-oracle", "--forget", FORGET,
                           "--retain", RETAIN, "--report", str(report_path))
    assert code == 0
    report = json.loads(report_path.read_text())
    for split in ("forget", "retain", "holdout", "general"):
        for metric in ("answer_prob", "rougeL", "truth_ratio", "mem_acc", "nll", "ppl", "fluency"):
            assert f"{split}.{metric}" in report["before"] and f"{split}.{metric}" in report["oracle"]
    assert "forget.extraction_n" in report["before"] and "mia_auc" in report["before"]
    assert report["before"]["forget_quality"] < 0.05  # it still knows the forget people
    assert report["oracle"]["forget_quality"] == 1.0
    assert "after" not in report and report["model"] == "workshop" and report["wall_s"] > 0
    assert "forget.rougeL" in out
    # the probes: the original tells every biography; the oracle, which never met the forget people, none
    assert report["before"]["probes.forget_bio.rougeL"] == 1.0 and report["oracle"]["probes.forget_bio.rougeL"] < 0.1
    assert report["oracle"]["oracle_distance"] == 0.0 and report["before"]["oracle_distance"] > 0.4
