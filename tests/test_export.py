"""The downloaded artifact (service/export.py): a README written from the run's own manifest,
followed to the letter in a fresh process with transformers + peft, answers as the app does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from unlearning.service import ChatJob, Session, Studio, UnlearnJob, artifact_zip
from unlearning.service.export import readme
from unlearning.service.session import preset

ROOT = Path(__file__).resolve().parents[1]
FORGET = json.loads((ROOT / "assets/workshop/forget.jsonl").read_text(encoding="utf-8").splitlines()[0])


@pytest.fixture(scope="module")
def ihl_run(tmp_path_factory):
    """A short IHL + FILA run on the preset, its zip unpacked, and the app's answer to a forget question."""
    studio, session = Studio(), Session()
    session.data = preset("qa")
    run = studio.start(session, UnlearnJob("workshop", "ihl-fila", {"steps": 8, "stop": "steps"}))
    run.wait(600)
    assert run.state == "done", run.since(0)[-1]
    answer = list(studio.chat(session, ChatJob("workshop", FORGET["question"])))[-1].unlearned
    folder = tmp_path_factory.mktemp("artifact")
    with zipfile.ZipFile(artifact_zip(session, into=folder)) as z:
        z.extractall(folder / "unzipped")
    yield folder / "unzipped", answer
    session.close()


def test_the_readme_says_what_is_in_the_zip_and_names_the_method_and_base(ihl_run):
    folder, _ = ihl_run
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# Unlearned with ihl-fila")
    for name in ("adapter/", "offset/", "report.json", "run.json", "unlearning.json"):
        assert f"`{name}`" in text, name
    assert "assets/workshop/model" in text and "PeftModel.from_pretrained" in text and "load_unlearned" in text
    assert "ECO" not in text  # never the other method's instructions


def test_following_the_readme_with_peft_gives_the_apps_answer(ihl_run, tmp_path):
    """The README's peft block, run as written (its prompt's question swapped for a forget one)
    in a fresh process, next to a checkout (`assets/`), greedily answers what the app's
    unlearned side answered."""
    folder, answer = ihl_run
    text = (folder / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Load it with transformers \+ peft.*?```python\n(.*?)```", text, re.DOTALL).group(1)
    code = code.replace("Where was she born?", FORGET["question"].replace('"', '\\"'))
    (folder / "assets").symlink_to(ROOT / "assets")  # the README: the base ships with the Studio's checkout
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == answer.strip()


def test_an_eco_readme_says_the_guard_loads_through_the_package(tmp_path):
    (tmp_path / "unlearning.json").write_text(json.dumps({"method": "eco", "model": "owner/model", "settings": {}}))
    (tmp_path / "guard.json").write_text("{}")
    text = readme(tmp_path)
    assert "## ECO: the guard" in text and "load_unlearned" in text and "owner/model" in text
    assert "PeftModel" not in text  # no adapter: no peft instructions


def test_a_taught_base_travels_in_the_zip(tmp_path):
    (tmp_path / "unlearning.json").write_text(json.dumps({"method": "ga", "model": "workshop (taught model)", "settings": {}}))
    (tmp_path / "adapter").mkdir()
    (tmp_path / "base-model").mkdir()
    text = readme(tmp_path, taught=True)
    assert 'from_pretrained("./base-model"' in text and "`base-model/`" in text and "Teach first" in text
