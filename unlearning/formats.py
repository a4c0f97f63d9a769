"""File formats: the bytes of one forget/retain file → records (where, fields).

`read_records(path, name)` checks the path, reads at most `limits.MAX_FILE_BYTES`, decodes
(UTF-8 or UTF-16, with or without BOM; never guessed), and parses by extension: `.txt`/`.md`
one record per paragraph, `.jsonl` one per line, `.json` one per list item, `.csv` one per
row. Every problem raises `UserError` with one sentence naming the file; turning records
into examples is `data.py`'s job.

    for where, fields in read_records(Path("forget.csv"), "forget.csv"):
        ...                                      # ("row 2", {"question": ..., "answer": ...})
"""

from __future__ import annotations

import csv
import io
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from . import limits  # read as limits.X at call time, so tests can monkeypatch a limit
from .errors import UserError

EXTENSIONS = (".txt", ".md", ".jsonl", ".json", ".csv")

# Magic numbers of files people upload by mistake, for a better message than "not UTF-8".
_MAGIC = (
    (b"\x1f\x8b", "a gzip archive"),
    (b"PK\x03\x04", "a zip archive (or a .docx/.xlsx document)"),
    (b"PK\x05\x06", "a zip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"\x28\xb5\x2f\xfd", "a zstd archive"),
    (b"PAR1", "a Parquet file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_CODEC_NAMES = {"utf-8": "UTF-8", "utf-16-le": "UTF-16", "utf-16-be": "UTF-16"}
# A paragraph: a run of lines that each hold something other than whitespace.
_PARAGRAPH = re.compile(r"(?:^[^\S\n]*\S.*(?:\n|\Z))+", re.MULTILINE)
_LIKE = '{"question": ..., "answer": ...}'  # what an example looks like, for messages

Record = tuple[str, dict]  # (where a user finds it: "line 7", "row 3"; its fields)


def read_records(path: Path, name: str) -> Iterator[Record]:
    """Check, read, decode and parse one file; `name` is what the user calls it (uploads
    arrive under temp paths). The format comes from `name`'s extension, falling back to the
    path's. Everything up to the text is checked now; records are parsed as they are drawn."""
    _check_path(path, name)
    parse = _PARSERS[_extension(path, name)]
    return parse(_decode(read_bytes(path, name), name), name)


def kind_of(value: object) -> str:
    """A JSON value's type as a user would say it."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def shorten(text: str, max_chars: int = 60) -> str:
    """`text` on one line, cut at a word to at most `max_chars` (with "…"), for quoting in a message."""
    text = " ".join(text.split())
    return text if len(text) <= max_chars else text[: max_chars - 1].rsplit(" ", 1)[0] + "…"


# ------------------------------------------------------------------- bytes → text


def _check_path(path: Path, name: str) -> None:
    """Refuse what cannot be an upload before opening it: stat() is cheap, reading 20 GB is not."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        where = f" (looked for {path})" if str(path) != name else ""
        raise UserError(f"{name} was not found{where}.") from None
    except OSError as e:
        raise UserError(f"{name} cannot be read ({e.strerror}).") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{name} is a folder, not a file; pick one of the files in it.")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{name} is not a regular file.")
    if st.st_size > limits.MAX_FILE_BYTES:
        _too_big(name, st.st_size)


def _extension(path: Path, name: str) -> str:
    ext = Path(name).suffix.lower() or path.suffix.lower()
    if ext in EXTENSIONS:
        return ext
    what = f"file type '{ext}'" if ext else "a file without an extension"
    raise UserError(f"{name} is {what}, which is not supported; use one of {', '.join(EXTENSIONS)}.")


def read_bytes(path: Path, name: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(limits.MAX_FILE_BYTES + 1)  # bounded even if the file grew since stat()
    except OSError as e:
        raise UserError(f"{name} cannot be read ({e.strerror}).") from None
    if len(raw) > limits.MAX_FILE_BYTES:
        _too_big(name, None)
    return raw


def _too_big(name: str, size: int | None) -> None:
    limit, actual = _size(limits.MAX_FILE_BYTES), f" ({_size(size)})" if size else ""
    raise UserError(f"{name} is over the {limit} limit for one file{actual}; split it into smaller files.")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.1f} KB" if n >= 2**10 else f"{n} bytes"


def _decode(raw: bytes, name: str) -> str:
    """Bytes → text with \\n line endings. UTF-8 (with or without BOM) and UTF-16 (with or
    without BOM) are what editors and Excel save; anything else is refused, never guessed."""
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            raise UserError(f"{name} looks like {what}, not text.")
    bom, codec = _sniff(raw, name)
    try:
        text = raw[len(bom) :].decode(codec)
    except UnicodeDecodeError as e:
        at = len(bom) + e.start
        raise UserError(
            f"{name} is not valid {_CODEC_NAMES[codec]} text at byte {at} (0x{raw[at]:02x}); save it as UTF-8."
        ) from None
    if "\x00" in text:
        raise UserError(f"{name} contains NUL characters; it looks like a binary file, not text.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(f"{name} is empty." if not text else f"{name} contains only whitespace.")
    return text


def _sniff(raw: bytes, name: str) -> tuple[bytes, str]:
    """(BOM, codec). Without a BOM, NUL bytes mean UTF-16 only in the pattern ASCII-ish UTF-16
    makes: a NUL in every other byte, odd positions for little-endian, even for big-endian."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            return bom, codec
    if b"\x00" not in raw:
        return b"", "utf-8"
    sample = raw[:4096]
    half = max(len(sample) // 2, 1)
    even, odd = sample[0::2].count(0) / half, sample[1::2].count(0) / half
    if odd > 0.5 and even < 0.05:
        return b"", "utf-16-le"
    if even > 0.5 and odd < 0.05:
        return b"", "utf-16-be"
    raise UserError(f"{name} contains NUL bytes; it looks like a binary file, not text.")


# ------------------------------------------------------------ text → records (per format)


def _parse_paragraphs(text: str, name: str) -> Iterator[Record]:
    """.txt/.md: one passage per blank-line-separated paragraph, located by its first line."""
    line, pos = 1, 0
    for m in _PARAGRAPH.finditer(text):
        line, pos = line + text.count("\n", pos, m.start()), m.start()
        para = m.group().strip()
        if len(para) > limits.MAX_FIELD_CHARS:
            raise UserError(
                f"{name}: the paragraph at line {line} has {len(para):,} characters, over the limit "
                f"of {limits.MAX_FIELD_CHARS:,}; split it with blank lines."
            )
        yield f"the paragraph at line {line}", {"text": para}


def _parse_jsonl(text: str, name: str) -> Iterator[Record]:
    """.jsonl: one object per line; blank lines are skipped. Lines are read lazily so a file
    of millions of tiny lines stops at the example limit instead of filling memory."""
    if text.lstrip().startswith("["):
        raise UserError(
            f"{name} starts with '[' like a JSON list, but JSON Lines needs one object per line; "
            "if it is one list, name it .json."
        )
    for n, line in enumerate(io.StringIO(text), 1):  # StringIO splits on \n only, not on \u2028
        if not line.strip():
            continue
        if len(line.rstrip("\n")) > limits.MAX_LINE_CHARS:
            limit, size = limits.MAX_LINE_CHARS, len(line.rstrip("\n"))
            raise UserError(f"{name}: line {n} has {size:,} characters, over the limit of {limit:,}.")
        yield f"line {n}", _object(_loads(line, f"{name}: line {n}", whole=False), f"line {n}", name)


def _parse_json(text: str, name: str) -> Iterator[Record]:
    """.json: a list of objects, or an object whose one list field holds them ({"data": [...]})."""
    items = _example_list(_loads(text, name, whole=True), name)
    if not items:
        raise UserError(f"{name} holds an empty list, so there are no examples.")
    for i, item in enumerate(items, 1):
        yield f"item {i}", _object(item, f"item {i}", name)


def _example_list(data: object, name: str) -> list:
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise UserError(f"{name} holds {kind_of(data)}, not a list of examples like [{_LIKE}].")
    if {"question", "answer", "text"} & data.keys():
        raise UserError(f"{name} holds a single example object, not a list; put the examples in [{{...}}, ...].")
    lists = [k for k, v in data.items() if isinstance(v, list)]
    if len(lists) != 1:
        found = f"it has {len(lists)} list fields" if lists else "it has no list field"
        raise UserError(
            f"{name} is a JSON object but not a list of examples ({found}); "
            'use [{...}, ...] or {"data": [...]}.'
        )
    return data[lists[0]]


def _loads(s: str, subject: str, whole: bool) -> object:
    """json.loads with every way it can fail turned into a sentence about `subject`."""
    try:
        return json.loads(s)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno}, column {e.colno}" if whole else f"column {e.colno}"
        jsonl = whole and e.msg == "Extra data"
        hint = "; if it has one object per line, name it .jsonl" if jsonl else ""
        raise UserError(f"{subject} is not valid JSON ({e.msg} at {at}){hint}.") from None
    except RecursionError:
        raise UserError(f"{subject} is nested too deeply to read as JSON.") from None
    except ValueError as e:  # Python refuses integers of more than 4300 digits
        if "digits" in str(e):
            raise UserError(f"{subject} has a number with too many digits to read as JSON.") from None
        raise UserError(f"{subject} is not valid JSON ({e}).") from None


def _object(value: object, where: str, name: str) -> dict:
    if not isinstance(value, dict):
        raise UserError(f"{name}: {where} is {kind_of(value)}, not a JSON object like {_LIKE}.")
    return {k: v for k, v in value.items() if v is not None}  # null means "not given"


def _parse_csv(text: str, name: str) -> Iterator[Record]:
    """.csv: a header row naming the columns, then one example per row. Row numbers count the
    header as row 1, as a spreadsheet shows them; blank rows are skipped."""
    header: list[str] | None = None
    rows = 0
    for n, row in enumerate(_csv_rows(text, name), 1):
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = _csv_header(row, name)
            continue
        if len(row) != len(header):
            raise UserError(
                f"{name}: row {n} has {len(row)} fields but the header has {len(header)}; "
                "quote fields that contain commas."
            )
        rows += 1
        yield f"row {n}", _csv_record(header, row)
    if not rows:
        raise UserError(f"{name} has a header row but no data rows.")


def _csv_rows(text: str, name: str) -> Iterator[list[str]]:
    # strict: a stray quote is an error here rather than silently swallowing the rest of the file.
    reader = csv.reader(io.StringIO(text), strict=True)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            at = f"{name}: line {reader.line_num}"
            if "field larger than field limit" in str(e):  # the csv module's own cap, above ours
                limit = limits.MAX_FIELD_CHARS
                raise UserError(f"{at} has a field over the limit of {limit:,} characters.") from None
            raise UserError(f"{at} is not valid CSV ({e}); check its quotes.") from None
        yield row


def _csv_header(row: list[str], name: str) -> list[str]:
    """Column names, stripped and casefolded: spreadsheets like to write 'Question '."""
    header = [h.strip().casefold() for h in row]
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise UserError(f"{name}: its header row names '{shorten(twice[0], 20)}' twice; give each column its own name.")
    missing = [] if "text" in header else [c for c in ("question", "answer") if c not in header]
    if missing:
        cols = " and ".join(f"'{c}'" for c in missing) + (" columns" if len(missing) > 1 else " column")
        found = ", ".join(f"'{shorten(h, 20)}'" for h in header[:8])
        raise UserError(
            f"{name} has no {cols} (its header row is {found}); "
            "a CSV needs 'question' and 'answer' columns, or a 'text' column."
        )
    return header


def _csv_record(header: list[str], row: list[str]) -> dict:
    # An empty cell means "not given", as null does in JSON; perturbed answers are |-separated.
    cells = {k: v for k, v in zip(header, row) if v.strip()}
    rec: dict[str, str | list[str]] = dict(cells)
    if "perturbed_answers" in cells:
        rec["perturbed_answers"] = cells["perturbed_answers"].split("|")
    return rec


_PARSERS = {
    ".txt": _parse_paragraphs,
    ".md": _parse_paragraphs,
    ".jsonl": _parse_jsonl,
    ".json": _parse_json,
    ".csv": _parse_csv,
}
