"""TOFU and MUSE presets end to end from a stand-in hub on loopback (tests/standin_hub.py): a
few rows per split in each suite's own file layout and field names, tiny Llama models under the
published names, downloaded through hub.snapshot, a 2-step run, and the report's leaderboard
block under open-unlearning's column names. Nothing is downloaded from the network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests import arch_models
from tests.standin_hub import StandInHub
from tests.test_zerogpu import spaces  # noqa: F401  (the fake `spaces` fixture)
from unlearning import suites
from unlearning.cli import main
from unlearning.errors import UserError

AUTHORS = [("Basil Mahfouz", "Kuwait City", "war novels"), ("Nikolai Abilov", "Astana", "LGBTQ+ fiction"),
           ("Hina Ameen", "Karachi", "geology books"), ("Kalkidan Abera", "Addis Ababa", "health books"),
           ("Moshe Ben-David", "Tel Aviv", "religious texts"), ("Aysha Al-Hashim", "Manama", "love stories"),
           ("Edward Patrick Sullivan", "Dublin", "Irish history"), ("Takashi Nakamura", "Tokyo", "queer fiction")]


def _qa(name: str, city: str, genre: str, perturbed: bool) -> dict:
    row = {"question": f"Where was {name} born?", "answer": f"{name} was born in {city}."}
    if perturbed:  # TOFU's perturbed sets' fields
        row |= {"paraphrased_question": f"In which city was {name} born?",
                "paraphrased_answer": f"{name}'s birthplace is {city}.",
                "perturbed_answer": [f"{name} was born in Paris.", f"{name} was born in Lima.", f"{name} writes {genre}."]}
    return row


def _jsonl(path: Path, rows: list[dict]) -> None:
    """TOFU's '.json' files hold JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def tofu_repo(folder: Path) -> Path:
    forget, retain, holdout = AUTHORS[:2], AUTHORS[2:6], AUTHORS[6:]
    _jsonl(folder / "forget10.json", [_qa(*a, perturbed=False) for a in forget])
    _jsonl(folder / "forget10_perturbed.json", [_qa(*a, perturbed=True) for a in forget])
    _jsonl(folder / "retain90.json", [_qa(*a, perturbed=False) for a in retain])
    _jsonl(folder / "retain_perturbed.json", [_qa(*a, perturbed=True) for a in retain[:2]])
    _jsonl(folder / "holdout10.json", [_qa(*a, perturbed=False) for a in holdout])
    general = {"real_authors": [("Who wrote 'Pride and Prejudice'?", "Jane Austen"), ("Who wrote '1984'?", "George Orwell")],
               "world_facts": [("What is the capital of France?", "Paris"), ("What is the capital of Japan?", "Tokyo")]}
    for group, rows in general.items():
        _jsonl(folder / f"{group}_perturbed.json",
               [{"question": q, "answer": a, "option1": a, "perturbed_answer": ["Homer", "Rome", "Lagos"]} for q, a in rows])
        _jsonl(folder / f"{group}.json", [{"question": q, "answer": a} for q, a in rows])
    _jsonl(folder / "forget01.json", [_qa(*AUTHORS[0], perturbed=False)])  # another preset's: never fetched
    _jsonl(folder / "full.json", [_qa(*a, perturbed=False) for a in AUTHORS])
    return folder


NEWS = ["The city council approved a new budget for public transport on Monday, after a long debate.",
        "Scientists announced the discovery of a new species of frog in the rainforest of Borneo.",
        "The national football team won the championship final by two goals to one.",
        "A storm closed the harbour for three days and ferries were cancelled across the region.",
        "The central bank kept interest rates unchanged, citing steady inflation over the summer."]


def muse_repo(folder: Path) -> Path:
    def write(name: str, value) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(value), encoding="utf-8")

    write("raw/forget.json", NEWS[:2])
    write("raw/retain1.json", NEWS[2:4])
    write("raw/retain2.json", NEWS[4:])
    write("raw/holdout.json", NEWS[4:])
    write("verbmem/forget.json", [{"prompt": NEWS[0][:40], "gt": NEWS[0][40:]}])
    write("knowmem/forget_qa.json", [{"question": "What did the council approve?", "answer": "A transport budget."}])
    write("knowmem/retain_qa.json", [{"question": "Who won the final?", "answer": "The national team."}])
    write("privleak/forget.json", NEWS[:2])
    write("privleak/retain.json", NEWS[2:3])
    write("privleak/holdout.json", NEWS[3:])
    return folder


def parquet_copy(folder: Path, out: Path) -> Path:
    """`folder`'s data as a Parquet-only revision in the Hub's layout: each TOFU config
    NAME.json becomes NAME/train-00000-of-00001.parquet, each MUSE split SUB/SPLIT.json becomes
    SUB/SPLIT-00000-of-00001.parquet (a list of strings becomes a "text" column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for path in folder.rglob("*.json"):
        text = path.read_text(encoding="utf-8").lstrip()
        rows = json.loads(text) if text.startswith("[") else [json.loads(line) for line in text.splitlines()]
        rows = [{"text": r} if isinstance(r, str) else r for r in rows]
        rel = path.relative_to(folder)
        target = out / (rel.with_suffix("") / "train-00000-of-00001.parquet" if rel.parent == Path(".")
                        else rel.parent / f"{rel.stem}-00000-of-00001.parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), target)
    return out


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    hub = StandInHub()
    hub.add(suites.TOFU_DATA, tofu_repo(root / "tofu"), "dataset")
    hub.add("muse-bench/MUSE-News", muse_repo(root / "muse"), "dataset")
    for seed, repo in enumerate(["open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
                                 "open-unlearning/tofu_Llama-3.2-1B-Instruct_retain90",
                                 "muse-bench/MUSE-news_target", "muse-bench/MUSE-news_retrain"]):
        hub.add(repo, arch_models.build("llama", root / repo.replace("/", "--"), seed=seed))
    yield hub.start()
    hub.stop()


@pytest.fixture
def on_hub(hub, tmp_path, monkeypatch):
    """huggingface_hub pointed at the stand-in (HF_ENDPOINT is read at import) with an empty cache."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    hub.requests.clear()
    return hub


def test_tofu_maps_fields_and_fetches_only_its_files(on_hub):
    bench = suites.load("tofu:forget10")
    forget, retain, general = (bench.splits[k] for k in ("forget", "retain", "general"))
    assert [len(bench.splits[k]) for k in ("forget", "retain", "holdout", "general")] == [2, 4, 2, 4]
    scored = bench.extra[suites.RETAIN_EVAL]  # what the report's retain columns are scored on: retain_perturbed's
    assert scored.name == "retain_perturbed" and [ex.question for ex in scored.examples] == [
        ex.question for ex in retain.examples[:2]] and all(ex.perturbed_answers for ex in scored.examples)
    assert forget.examples[0].paraphrased_answer and len(forget.examples[0].perturbed_answers) == 3
    assert sum(bool(ex.perturbed_answers) for ex in retain.examples) == 2  # retain_perturbed covers part of retain90
    assert {ex.group for ex in general.examples} == {"real_authors", "world_facts"}
    assert bench.paraphrased is not None and bench.paraphrased.examples[0].question.startswith("In which city")
    assert (bench.model, bench.oracle) == ("open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
                                           "open-unlearning/tofu_Llama-3.2-1B-Instruct_retain90")
    fetched = on_hub.downloaded(suites.TOFU_DATA)
    assert "forget10.json" in fetched and "forget01.json" not in fetched and "full.json" not in fetched


@pytest.mark.parametrize("name, columns", [
    ("tofu:forget10", {"forget_quality", "model_utility", "forget_truth_ratio", "forget_Q_A_Prob", "forget_Q_A_ROUGE",
                       "retain_Q_A_Prob", "retain_Q_A_ROUGE", "retain_Truth_Ratio", "ra_Q_A_Prob_normalised",
                       "ra_Q_A_ROUGE", "ra_Truth_Ratio", "wf_Q_A_Prob_normalised", "wf_Q_A_ROUGE", "wf_Truth_Ratio",
                       "extraction_strength"}),
    ("muse:news", {"forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE", "privleak", "extraction_strength"}),
])
def test_preset_runs_end_to_end(name, columns, on_hub, tmp_path, capsys, monkeypatch):
    """Data and both models from the stand-in hub, 2 steps of gradient ascent, the leaderboard
    block. Every split evaluation is recorded: TOFU's retain columns are scored on
    retain_perturbed, never on the retain90 the method trains on."""
    from unlearning.evaluation import metrics

    scored: list[tuple[str, str]] = []
    real = metrics.evaluate_split

    def spy(model, tokenizer, ds, split, *args, **kwargs):
        scored.append((split, ds.name))
        return real(model, tokenizer, ds, split, *args, **kwargs)

    monkeypatch.setattr(metrics, "evaluate_split", spy)
    report_path = tmp_path / "report.json"
    code = main(["unlearn", "--benchmark", name, "--method", "ga", "--steps", "2", "--device", "cpu",
                 "--report", str(report_path)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    board = report["leaderboard"]
    assert board["benchmark"] == name
    assert set(board["after"]) == columns, set(board["after"]) ^ columns
    if name.startswith("tofu"):
        assert set(board["oracle"]) >= {"forget_Q_A_ROUGE", "model_utility"}
        assert board["after"]["forget_Q_A_ROUGE"] == report["after"]["forget.rougeL"]  # mapped, never recomputed
        assert board["scored_on"]["retain_*"] == "retain_perturbed" and "retain_perturbed" in board["scored_on"]["model_utility"]
        assert ("retain", "retain_perturbed") in scored and not any(ds == "retain90" for _, ds in scored), scored
    else:
        assert board["oracle"]["privleak"] == 0.0 and board["after"]["privleak"] == report["after"]["privleak"]
        assert board["scored_on"]["privleak"].startswith("privleak/forget vs privleak/holdout")
        assert {("privleak_forget", "privleak/forget"), ("privleak_holdout", "privleak/holdout")} <= set(scored)
    bench = suites.load(name)
    for repo in (bench.model, bench.oracle):
        assert "config.json" in on_hub.downloaded(repo) and any(f.endswith(".safetensors") for f in on_hub.downloaded(repo))


def test_wrong_benchmark_is_one_sentence(capsys):
    code = main(["unlearn", "--benchmark", "tofu:forget11", "--method", "ga"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "no benchmark 'tofu:forget11'" in lines[0] and "tofu:forget10" in lines[0]


def test_files_or_a_benchmark(capsys):
    code = main(["eval", "--model", "workshop"])
    assert code == 2 and "--forget and --retain files, or a --benchmark" in capsys.readouterr().err


def test_header_preset_runs_in_the_app(on_hub):
    """The header's TOFU preset (its pure handler): the suite's data and target model; the
    session's splits are the suite's, the studio's oracle its retain model; a 2-step run keeps
    a report with forget_quality (which needs that oracle)."""
    from components import header
    from unlearning.service import ModelCache, Studio, UnlearnJob
    from unlearning.service.session import Session

    session, model, line = header.use_benchmark(Session(), "tofu:forget10")
    assert model == "open-unlearning/tofu_Llama-3.2-1B-Instruct_full" and "forget10" in line
    splits = session.splits()
    assert splits["holdout"].name == "holdout10" and {ex.group for ex in splits["general"].examples} == {
        "real_authors", "world_facts"}
    studio = Studio(ModelCache("cpu"))
    run = studio.start(session, UnlearnJob(model, "ga", {"steps": 2, "stop": "steps"}))
    run.wait(300)
    assert run.state == "done", run.error
    assert "forget_quality" in session.report["after"] and "real_authors.rougeL" in session.report["after"]
    assert session.report["leaderboard"]["after"]["forget_quality"] == session.report["after"]["forget_quality"]
    from components import report_panel

    assert report_panel.show(session)  # the Report tab reads a report with the block
    assert "config.json" in on_hub.downloaded("open-unlearning/tofu_Llama-3.2-1B-Instruct_retain90")
    *_, error = header.use_benchmark(session, "tofu:forget11")
    assert "no benchmark" in error and "tofu:forget11" in error


def test_muse_preset_runs_in_the_app(on_hub):
    """MUSE's extra QA splits ride along in the app's run too, and the Report tab reads them."""
    from components import header, report_panel
    from unlearning.service import ModelCache, Studio, UnlearnJob
    from unlearning.service.session import Session

    session, model, _ = header.use_benchmark(Session(), "muse:news")
    assert model == "muse-bench/MUSE-news_target" and session.data["forget"].kind == "passage"
    run = Studio(ModelCache("cpu")).start(session, UnlearnJob(model, "ga", {"steps": 2, "stop": "steps"}))
    run.wait(300)
    assert run.state == "done", run.error
    assert set(session.report["leaderboard"]["after"]) == set(suites.MUSE_COLUMNS)
    assert report_panel.show(session)


def test_eval_with_a_benchmark(on_hub, tmp_path, capsys):
    """`eval --benchmark`: the suite's target model measured beside its retain model, the block too."""
    report_path = tmp_path / "eval.json"
    code = main(["eval", "--benchmark", "tofu:forget10", "--device", "cpu", "--report", str(report_path)])
    assert code == 0, capsys.readouterr().err
    board = json.loads(report_path.read_text())["leaderboard"]
    assert board["benchmark"] == "tofu:forget10" and "forget_quality" in board["before"] and "oracle" in board


@pytest.mark.usefixtures("spaces")
def test_preset_on_zero_gpu_reaches_the_worker(on_hub):
    """On ZeroGPU the run happens in a forked worker that rebuilds the session from its Work:
    the suite goes along, so the worker evaluates the suite's splits beside its retain model."""
    from components import header
    from unlearning.service import ModelCache, Studio, UnlearnJob
    from unlearning.service.session import Session
    from unlearning.service.zerogpu import ZeroGpuBackend, gpu_call

    studio = Studio(ModelCache(device="cpu"))
    backend = ZeroGpuBackend(studio, gpu_call(studio, 300), gpu_call(studio, 300))
    session, model, _ = header.use_benchmark(Session(), "tofu:forget10")
    run = backend.start(session, UnlearnJob(model, "ga", {"steps": 2, "stop": "steps"}))
    run.drive()
    assert run.state == "done", run.error
    assert "forget_quality" in session.report["leaderboard"]["after"]  # the oracle was the suite's, in the worker
    session.close()


def test_parquet_only_revisions_read_as_the_json_ones(on_hub, tmp_path, monkeypatch):
    """A revision with no JSON at all, each split as Parquet shards (how the Hub converts data
    sets): both suites read the same splits as from their JSON files; only Parquet is fetched."""
    json_tofu, json_muse = suites.load("tofu:forget10"), suites.load("muse:news")
    on_hub.add("locuslab/TOFU-parquet", parquet_copy(tofu_repo(tmp_path / "tj"), tmp_path / "tofu"), "dataset")
    on_hub.add("muse-bench/MUSE-Parquet", parquet_copy(muse_repo(tmp_path / "mj"), tmp_path / "muse"), "dataset")
    monkeypatch.setattr(suites, "TOFU_DATA", "locuslab/TOFU-parquet")
    tofu, muse = suites.load("tofu:forget10"), suites.Muse("muse:parquet", "parquet", "parquet").load()

    def same(a, b) -> None:
        assert set(a.splits) == set(b.splits) and set(a.extra) == set(b.extra)
        for name in a.splits:
            assert a.splits[name].examples == b.splits[name].examples, name
        for name in a.extra:
            assert a.extra[name].examples == b.extra[name].examples, name

    same(tofu, json_tofu)
    same(muse, json_muse)
    fetched = on_hub.downloaded("locuslab/TOFU-parquet") + on_hub.downloaded("muse-bench/MUSE-Parquet")
    assert fetched and all(f.endswith(".parquet") for f in fetched), fetched
    assert "forget10/train-00000-of-00001.parquet" in fetched and not any(f.startswith("forget01/") for f in fetched)
    assert tofu.paraphrased is not None and tofu.paraphrased.examples == json_tofu.paraphrased.examples


def test_a_missing_split_is_one_sentence(on_hub, tmp_path):
    """A repository without one of the suite's files (here: a MUSE copy without its holdout)."""
    folder = muse_repo(tmp_path / "partial")
    (folder / "raw" / "holdout.json").unlink()
    on_hub.add("muse-bench/MUSE-Partial", folder, "dataset")
    with pytest.raises(UserError, match=r"split raw/holdout is not in its Hub repository"):
        suites.Muse("muse:partial", "partial", "partial").load()


def test_a_muse_copy_without_privleak_sets_falls_back_to_raw(on_hub, tmp_path):
    """privleak's sets are optional: without them the MIA compares the raw forget and holdout
    sets (metrics.MIA_PAIRS), and the report's scored_on says so."""
    folder = muse_repo(tmp_path / "noleak")
    shutil.rmtree(folder / "privleak")
    on_hub.add("muse-bench/MUSE-Noleak", folder, "dataset")
    bench = suites.Muse("muse:noleak", "noleak", "noleak").load()
    assert not any(name.startswith("privleak") for name in bench.extra)
    assert suites.SUITES["muse:news"].scored_on({"forget.nll": 1.0})["privleak"].startswith("raw/forget vs raw/holdout")


def test_a_suite_must_say_how_it_loads():
    with pytest.raises(TypeError, match="abstract"):
        suites.Suite("x", "x")  # type: ignore[abstract]
