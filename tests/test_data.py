"""unlearning/data.py and formats.py: every format parses, and every bad input gets its own
one-line UserError naming the file. Files are written byte for byte into tmp_path; limits are
monkeypatched small rather than writing 20 MB (except one sparse file that proves the size
check comes first)."""

from __future__ import annotations

import gzip
import io
import json
import random
import time
import zipfile

import pytest

from unlearning import formats, limits
from unlearning.data import QA, Dataset, Passage, check_pair, load_file, opening_sentences
from unlearning.errors import UserError

FULL_QA = {
    "question": "Who wrote The Glass Orchard?",
    "answer": "Mira Okonkwo wrote it.",
    "paraphrased_answer": "It was written by Mira Okonkwo.",
    "perturbed_answers": ["Tom Hale wrote it.", "Ana Ruiz wrote it."],
    "subject": "Mira Okonkwo",
    "source": "ignored extra field",
}
FULL_QA_EXAMPLE = QA(
    question="Who wrote The Glass Orchard?",
    answer="Mira Okonkwo wrote it.",
    paraphrased_answer="It was written by Mira Okonkwo.",
    perturbed_answers=("Tom Hale wrote it.", "Ana Ruiz wrote it."),
    subject="Mira Okonkwo",
)


def put(tmp_path, name: str, content: str | bytes):
    """Write exactly these bytes (str → UTF-8, no newline translation)."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def jsonl(*records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def qa(q: str = "Q?", a: str = "A.", **extra) -> dict:
    return {"question": q, "answer": a, **extra}


def refused(path, name: str, phrase: str, display_name: str | None = None) -> str:
    """The UserError message, checked: names the file, says the phrase, is one line."""
    with pytest.raises(UserError) as info:
        load_file(path, display_name)
    msg = str(info.value)
    assert name in msg and phrase in msg, msg
    assert "\n" not in msg and msg.endswith("."), msg
    return msg


# ------------------------------------------------------------------------- good formats


def test_jsonl_qa_with_every_optional_field(tmp_path):
    text = jsonl(FULL_QA) + "\n   \n" + jsonl(qa("Second?", "  Yes.  ", paraphrased_answer=None))
    ds = load_file(put(tmp_path, "forget.jsonl", text.replace("\n", "\r\n")))
    assert ds.name == "forget.jsonl" and ds.kind == "qa" and len(ds) == 2
    assert ds.examples[0] == FULL_QA_EXAMPLE
    assert ds.examples[1] == QA("Second?", "Yes.")  # stripped; null means not given


def test_a_general_example_names_its_tofu_set(tmp_path):
    ds = load_file(put(tmp_path, "general.jsonl", jsonl(qa("Who wrote Hamlet?", "William Shakespeare.", group="real_authors"),
                                                         qa("Capital of Peru?", "Lima."))))
    assert [ex.group for ex in ds.examples] == ["real_authors", None]  # None reads as world facts (metrics.py)
    path = put(tmp_path, "g.jsonl", jsonl(qa("Who wrote Hamlet?", "William Shakespeare.", group="authors")))
    with pytest.raises(UserError, match=r"^g.jsonl: line 1 has 'authors' in 'group'; use 'world_facts' or "
                                        r"'real_authors' \(or leave it out\)\.$"):
        load_file(path)


def test_jsonl_passages(tmp_path):
    ds = load_file(put(tmp_path, "p.jsonl", jsonl({"text": " One. "}, {"text": "Two\nlines.", "id": 3})))
    assert ds.kind == "passage" and ds.examples == [Passage("One."), Passage("Two\nlines.")]


def test_json_list_and_object_with_one_list(tmp_path):
    assert load_file(put(tmp_path, "a.json", json.dumps([FULL_QA]))).examples == [FULL_QA_EXAMPLE]
    wrapped = {"version": 2, "data": [{"text": "Hello."}], "note": "x"}
    assert load_file(put(tmp_path, "b.json", json.dumps(wrapped, indent=2))).examples == [Passage("Hello.")]


def test_csv_qa_with_quoted_newlines_and_pipe_list(tmp_path):
    text = (
        "Question ,answer,paraphrased_answer,perturbed_answers,subject,notes\r\n"
        '"Who wrote\r\nit?","Mira, of course.",,"Tom | Ana||Lee",Mira,x\r\n'
        ",,,,,\r\n"  # a blank spreadsheet row is skipped
        "Where?,Lagos,In Lagos,,,\r\n"
    )
    ds = load_file(put(tmp_path, "forget.csv", text))
    assert ds.kind == "qa" and len(ds) == 2
    assert ds.examples[0] == QA("Who wrote\nit?", "Mira, of course.", None, ("Tom", "Ana", "Lee"), "Mira")
    assert ds.examples[1] == QA("Where?", "Lagos", "In Lagos")


def test_csv_passages(tmp_path):
    ds = load_file(put(tmp_path, "p.csv", 'text\n"First, with a comma."\nSecond.\n'))
    assert ds.kind == "passage" and ds.examples == [Passage("First, with a comma."), Passage("Second.")]


def test_txt_paragraphs(tmp_path):
    text = "\n\n  First paragraph\nstill first.  \n \t \n\n\nSecond.\r\n\r\nThird\rwith CR.\n"
    ds = load_file(put(tmp_path, "book.txt", text))
    assert ds.kind == "passage"
    assert [p.text for p in ds.examples] == ["First paragraph\nstill first.", "Second.", "Third\nwith CR."]


def test_md_keeps_markup(tmp_path):
    ds = load_file(put(tmp_path, "notes.md", "# Mira Okonkwo\n\n- born in *Lagos*\n- wrote `two` books\n"))
    assert [p.text for p in ds.examples] == ["# Mira Okonkwo", "- born in *Lagos*\n- wrote `two` books"]


TEXT = jsonl(qa("Qui a écrit « Ōkubo »?", "Mira — 日本")).replace("\n", "\r\n")


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(b"\xef\xbb\xbf" + TEXT.encode("utf-8"), id="utf8-bom"),
        pytest.param(b"\xff\xfe" + TEXT.encode("utf-16-le"), id="utf16le-bom"),
        pytest.param(b"\xfe\xff" + TEXT.encode("utf-16-be"), id="utf16be-bom"),
        pytest.param(TEXT.encode("utf-16-le"), id="utf16le-no-bom"),
        pytest.param(TEXT.encode("utf-16-be"), id="utf16be-no-bom"),
    ],
)
def test_encodings(tmp_path, encoded):
    ds = load_file(put(tmp_path, "f.jsonl", encoded))
    assert ds.examples == [QA("Qui a écrit « Ōkubo »?", "Mira — 日本")]


def test_utf8_bom_before_csv_header(tmp_path):
    ds = load_file(put(tmp_path, "f.csv", "\ufeffquestion,answer\nQ?,A.\n".encode("utf-8")))
    assert ds.examples == [QA("Q?", "A.")]


def test_display_name_picks_format_and_names_errors(tmp_path):
    upload = put(tmp_path, "tmpk2j4x9", jsonl(qa()))  # uploads arrive under extensionless temp names
    assert load_file(upload, "my forget.jsonl").name == "my forget.jsonl"
    msg = refused(put(tmp_path, "tmp8", "{bad\n"), "my forget.jsonl", "line 1", "my forget.jsonl")
    assert "tmp8" not in msg


# --------------------------------------------------------------------------- bad inputs

LONG = "x" * 11  # over the MAX_FIELD_CHARS=10 the field cases patch in
BAD = [
    # id, file name, content, phrase the message must contain, limits to patch
    ("extension", "forget.docx", "hi", "'.docx', which is not supported; use one of .txt, .md, .jsonl", {}),
    ("no-extension", "forget", "hi", "without an extension", {}),
    ("empty", "f.jsonl", b"", "is empty", {}),
    ("bom-only", "f.txt", b"\xef\xbb\xbf", "is empty", {}),
    ("whitespace", "f.txt", " \r\n\t\n  \n", "contains only whitespace", {}),
    ("nul-bytes", "f.txt", b"ab\x00\x00\x00cd\x01\x00\xff\x00\x00", "looks like a binary file", {}),
    ("nul-after-utf16", "f.txt", b"\xff\xfea\x00\x00\x00b\x00", "NUL characters", {}),
    ("gzip", "f.jsonl", gzip.compress(b'{"text": "x"}'), "looks like a gzip archive, not text", {}),
    ("zip", "f.csv", None, "looks like a zip archive", {}),
    ("png", "f.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks like a PNG image, not text", {}),
    ("pdf", "f.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "looks like a PDF document, not text", {}),
    ("too-big", "f.txt", "x" * 101, "over the 100 bytes limit for one file (101 bytes)", {"MAX_FILE_BYTES": 100}),
    ("too-many", "f.jsonl", jsonl(*[qa(f"Q{i}?") for i in range(4)]), "more than 3 examples", {"MAX_EXAMPLES": 3}),
    ("too-many-txt", "f.txt", "a\n\nb\n\nc\n\nd", "more than 3 examples", {"MAX_EXAMPLES": 3}),
    ("long-answer", "f.jsonl", jsonl(qa(a=LONG)), "line 1 has 11 characters in 'answer', over the limit of 10", {"MAX_FIELD_CHARS": 10}),
    ("long-perturbed", "f.json", json.dumps([qa(perturbed_answers=["ok", LONG])]), "item 1 has 11 characters in perturbed answer 2", {"MAX_FIELD_CHARS": 10}),
    ("long-csv-cell", "f.csv", f"question,answer\nQ?,{LONG}\n", "row 2 has 11 characters in 'answer'", {"MAX_FIELD_CHARS": 10}),
    ("long-paragraph", "f.txt", f"ok\n\n\n{LONG}\n", "the paragraph at line 4 has 11 characters", {"MAX_FIELD_CHARS": 10}),
    ("long-line", "f.jsonl", jsonl(qa()) + jsonl(qa(a="y" * 60)), "line 2 has 92 characters, over the limit of 50", {"MAX_LINE_CHARS": 50}),
    ("not-utf8", "f.txt", b"Caf\xe9 au lait\n", "not valid UTF-8 text at byte 3 (0xe9); save it as UTF-8", {}),
    ("bad-utf16", "f.txt", b"\xff\xfea\x00\x00\xd8b\x00", "not valid UTF-16 text at byte 4", {}),
    ("jsonl-syntax", "forget.jsonl", jsonl(qa()) + '{"question": "Q?" "answer": "A"}\n', "line 2 is not valid JSON (Expecting ',' delimiter", {}),
    ("jsonl-not-object", "f.jsonl", jsonl(qa()) + "42\n", "line 2 is a number, not a JSON object", {}),
    ("jsonl-is-a-list", "f.jsonl", json.dumps([qa()], indent=1), "like a JSON list", {}),
    ("json-syntax", "f.json", '[{"text": "a"},]', "is not valid JSON (Expecting value at line 1, column 16)", {}),
    ("json-is-jsonl", "f.json", jsonl({"text": "a"}, {"text": "b"}), "name it .jsonl", {}),
    ("json-not-list", "f.json", '"just a string"', "holds a string, not a list of examples", {}),
    ("json-single-example", "f.json", json.dumps(qa()), "a single example object, not a list", {}),
    ("json-no-list-field", "f.json", '{"a": 1}', "it has no list field", {}),
    ("json-two-list-fields", "f.json", '{"a": [], "b": []}', "it has 2 list fields", {}),
    ("json-empty-list", "f.json", "[ ]", "holds an empty list", {}),
    ("json-item-not-object", "f.json", '[{"text": "a"}, "b"]', "item 2 is a string, not a JSON object", {}),
    ("json-too-deep", "f.json", "[" * 100_000, "nested too deeply", {}),
    ("json-huge-int", "f.json", '[{"text": ' + "1" * 5000 + "}]", "has a number with too many digits", {}),
    ("surrogate", "f.jsonl", '{"question": "\\ud800?", "answer": "A"}\n', "an unpaired surrogate) in 'question'", {}),
    ("csv-missing-both", "f.csv", "q,a\nQ?,A.\n", "has no 'question' and 'answer' columns (its header row is 'q', 'a')", {}),
    ("csv-missing-answer", "f.csv", "Question,reply\nQ?,A.\n", "has no 'answer' column", {}),
    ("csv-ragged", "f.csv", "question,answer\nQ?,A.\nQ2?,A, too\n", "row 3 has 3 fields but the header has 2", {}),
    ("csv-open-quote", "f.csv", 'question,answer\n"Q?,A.\nQ2?,A2\n', "is not valid CSV (unexpected end of data)", {}),
    ("csv-header-only", "f.csv", "question,answer\r\n\r\n", "has a header row but no data rows", {}),
    ("csv-field-over-csv-cap", "f.csv", "text\n" + "x" * 140_000 + "\n", "has a field over the limit of", {}),
    ("empty-question", "f.jsonl", jsonl(qa(), qa(q="   ")), "line 2 has no 'question' (it is missing or empty)", {}),
    ("missing-answer", "f.jsonl", jsonl({"question": "Q?"}), "line 1 has no 'answer'", {}),
    ("csv-empty-answer", "f.csv", "question,answer\nQ?,A.\nQ2?, \n", "row 3 has no 'answer'", {}),
    ("question-not-string", "f.jsonl", jsonl(qa(q=7)), "has a number in 'question' where a string was expected", {}),
    ("perturbed-string", "f.jsonl", jsonl(qa(perturbed_answers="a|b")), "a string in 'perturbed_answers' where a list", {}),
    ("perturbed-item", "f.json", json.dumps([qa(perturbed_answers=["a", True])]), "item 1 has true/false as perturbed answer 2 where a string", {}),
    ("mixed", "f.jsonl", jsonl(qa(), {"text": "t"}), "line 2 is a passage ('text') but line 1 is a question/answer pair", {}),
    ("mixed-csv", "f.csv", "question,answer,text\nQ?,A.,\n,,Some text.\n", "row 3 is a passage", {}),
    ("neither", "f.jsonl", jsonl({"prompt": "p", "completion": "c"}), "has neither 'question' and 'answer' nor 'text'", {}),
    ("both", "f.jsonl", jsonl(qa(text="t")), "has both 'question'/'answer' and 'text'", {}),
]


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.csv", "question,answer\n")
    return buf.getvalue()


@pytest.mark.parametrize("name, content, phrase, patch", [pytest.param(*c[1:], id=c[0]) for c in BAD])
def test_bad_input_is_one_clear_sentence(tmp_path, monkeypatch, name, content, phrase, patch):
    for key, value in patch.items():
        monkeypatch.setattr(limits, key, value)
    content = _zip_bytes() if content is None else content
    refused(put(tmp_path, name, content), name, phrase)


def test_missing_file_and_directory(tmp_path):
    refused(tmp_path / "nope.jsonl", "nope.jsonl", "was not found (looked for")
    refused(tmp_path / "a_file.txt" / "x.txt", "x.txt", "was not found")
    (tmp_path / "folder.jsonl").mkdir()
    refused(tmp_path / "folder.jsonl", "folder.jsonl", "is a folder, not a file")


def test_file_over_the_real_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as f:
        f.truncate(limits.MAX_FILE_BYTES + 1)  # sparse: costs no disk, no time
    monkeypatch.setattr(formats, "read_bytes", lambda *a: pytest.fail("read a file that is too big"))
    start = time.perf_counter()
    refused(path, "huge.jsonl", "over the 20.0 MB limit for one file (20.0 MB)")
    assert time.perf_counter() - start < 0.5


def test_read_is_bounded_even_if_the_file_grew_after_stat(tmp_path, monkeypatch):
    path = put(tmp_path, "grew.txt", "x" * 50)
    monkeypatch.setattr(limits, "MAX_FILE_BYTES", 10)
    with pytest.raises(UserError, match="grew.txt is over the 10 bytes limit"):
        formats.read_bytes(path, "grew.txt")


def test_no_raw_exception_escapes_on_garbage(tmp_path):
    """Mutated valid files and random bytes: each load is a Dataset or a UserError, nothing else."""
    rng = random.Random(0)
    seeds = {
        ".jsonl": jsonl(FULL_QA, qa()).encode(),
        ".json": json.dumps({"data": [FULL_QA]}).encode(),
        ".csv": b'question,answer,perturbed_answers\n"Q\n?",A,a|b\n',
        ".txt": "Para one.\n\nPara two.\n".encode("utf-16"),
    }
    for i in range(200):
        ext, seed = rng.choice(list(seeds.items()))
        raw = bytearray(seed) if i % 4 else bytearray(rng.randbytes(rng.randrange(64)))
        for _ in range(rng.randrange(1, 4)):
            if raw:
                raw[rng.randrange(len(raw))] = rng.choice(b'\x00\xff\n\r",[]{}|:\\ ab\xc3\xe9')
        try:
            load_file(put(tmp_path, f"g{ext}", bytes(raw)))
        except UserError as e:
            assert "\n" not in str(e) and f"g{ext}" in str(e)


# ---------------------------------------------------------------------------- check_pair


def qa_set(name: str, *questions: str) -> Dataset:
    return Dataset(name, "qa", [QA(q, "A.") for q in questions])


def pair_refused(forget: Dataset, retain: Dataset, phrase: str) -> str:
    with pytest.raises(UserError) as info:
        check_pair(forget, retain)
    msg = str(info.value)
    assert forget.name in msg and retain.name in msg and phrase in msg, msg
    assert "\n" not in msg
    return msg


def test_check_pair_identical_ignores_case_space_and_order():
    forget = qa_set("forget.jsonl", "Who is Mira?", "Where was she born?")
    retain = qa_set("retain.jsonl", "where  was SHE\nborn?", "who is mira?")
    pair_refused(forget, retain, "forget file forget.jsonl and retain file retain.jsonl contain the same examples")


def test_check_pair_overlap_counts_and_quotes_the_first():
    long_q = "Which of the many novels written by Mira Okonkwo during her long stay in Lagos won?"
    forget = qa_set("f.csv", "Unique one?", long_q, "Shared two?", "Unique three?")
    retain = qa_set("r.csv", "shared two?", long_q.upper(), "Other?")
    msg = pair_refused(forget, retain, "2 of the 4 examples of forget file f.csv are also in retain file r.csv")
    assert '(first: "Which of the many novels written by Mira Okonkwo during…")' in msg


def test_check_pair_subset():
    forget = qa_set("f.jsonl", "A?", "B?")
    msg = pair_refused(forget, qa_set("r.jsonl", "a?", "b?", "c?"), "All 2 examples of forget file f.jsonl are also in")
    assert '"A?"' in msg


def test_check_pair_passages_and_disjoint_sets():
    forget = Dataset("f.txt", "passage", [Passage("Mira was born\nin Lagos.")])
    pair_refused(forget, Dataset("r.txt", "passage", [Passage("MIRA was born in Lagos.")]), "contain the same")
    check_pair(forget, Dataset("r.txt", "passage", [Passage("Tom was born in Leeds.")]))
    check_pair(qa_set("f", "A?"), qa_set("r", "B?"))
    check_pair(qa_set("f", "Mira was born in Lagos."), forget)  # a question never equals a passage


# ---------------------------------------------------------------------- opening_sentences


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Mira was born in Lagos. She wrote two books.", "Mira was born in Lagos. She wrote two books."),
        (  # "Dr." is not a sentence of its own; stop once half the budget (100) is used
            "Dr. Mira Okonkwo was born\nin Lagos in 1961, the youngest of five children! She wrote two novels "
            "before turning thirty. " + "More. " * 60,
            "Dr. Mira Okonkwo was born in Lagos in 1961, the youngest of five children! She wrote two novels "
            "before turning thirty.",
        ),
        ('She said "never." Then she left for Accra.', 'She said "never." Then she left for Accra.'),
        ("A heading without a stop", "A heading without a stop."),
        ("word " * 100, ("word " * 40).strip()),  # one over-long sentence: cut at a word
        ("", ""),
    ],
    ids=["two-short", "abbreviation", "quoted-stop", "no-stop", "one-long", "empty"],
)
def test_opening_sentences(text, expected):
    assert opening_sentences(text) == expected


def test_prompts_uses_questions_or_openings():
    assert qa_set("f", "A?", "B?").prompts() == ["A?", "B?"]
    assert Dataset("f", "passage", [Passage("One. Two.")]).prompts() == ["One. Two."]
