"""Labelled texts in the formats sites export, read into examples with every problem named.

Formats (gzipped or not; detected from the name, then the content; or named with `format`):
- csv: a header row, then one post a row. A text column (`text`) and a tags column
  (`hashtags` or `tags`); optional `id` and `group` columns; names match in any case.
  Quoted fields may hold commas, tabs and newlines.
- jsonl: one JSON object a line, `{"text": "...", "hashtags": ["#a", "b"]}`; the tags may
  also be one string, and `tags` may stand for `hashtags`; optional `id` and `group`.
- fasttext: fastText's training format, `__label__a __label__b text ...`.
- tsv: the prepared Debian data, `id<TAB>group<TAB>tag tag ...<TAB>text`.

Several text columns or keys, named as `Columns(text="title,body")`, are joined in that order.
Tags in one string are separated by whitespace, commas, semicolons or `|`, with or
without a leading `#`, or written as `<a><b>` (Stack Exchange) or as a list, `["a", "b"]` or
`['a', 'b']`; each is normalised with `text_cleaning.normalize_tag`.

A tag that cannot read back as a hashtag (`HTTP/2`) is dropped, the row kept when it has other
tags; a row that cannot be read (bad JSON, a wrong field count, a text or tags of the wrong type)
is dropped. Each is recorded in `Dataset.problems`, for the caller to report. With `strict`, or
when such rows are at least half of the file (it is then not what the format says), the file is
refused instead, every problem named.
"""

import codecs
import csv
import functools
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from fasttext_format import LABEL_PREFIX
from text_cleaning import normalize_tag, tag_problem
from training.errors import TrainingError

FORMATS = ("csv", "jsonl", "fasttext", "tsv")
TEXT_COLUMNS = ("text",)
TAGS_COLUMNS = ("hashtags", "tags")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".tsv": "tsv",
               ".ft": "fasttext", ".fasttext": "fasttext"}
_TAG_SEPARATORS = re.compile(r"[\s,;|<>\[\]\"]+")  # none of them can be in a tag
_GZIP_MAGIC = b"\x1f\x8b"
MAX_ERRORS_SHOWN = 20
_tag_problem = functools.lru_cache(maxsize=None)(tag_problem)


class Example(NamedTuple):
    """One labelled text: an id, a group (related examples stay on one side of a split), tags, text."""

    id: str
    group: str
    labels: list[str]
    text: str


# The rules a row or a tag can break, each completing "dropped N rows ...", "dropped N tags ...".
NOT_JSON = "that are not JSON objects"
MISSING_KEY = "without a text or tags key"
TEXT_NOT_STRING = "whose text is not a string"
TAGS_NOT_STRINGS = "whose tags are not a string or a list of strings"
FIELD_COUNT = "with another number of fields than the header"
TSV_FIELDS = "without 4 tab-separated fields"
NO_HASHTAG_LEFT = "whose every tag cannot be a hashtag"
BAD_TAG = "that cannot be hashtags"
UNREADABLE = {NOT_JSON, MISSING_KEY, TEXT_NOT_STRING, TAGS_NOT_STRINGS, FIELD_COUNT, TSV_FIELDS}


class Problem(NamedTuple):
    """A row, or one tag of a row, that was read but dropped: the rule it breaks and what is wrong."""

    rule: str
    line: int
    id: str
    detail: str  # as the refusal names it: "not a JSON object: ...", "tag 'HTTP/2' cannot be a hashtag: ..."
    tag: str | None = None  # the tag as the file spells it, for BAD_TAG


class DatasetError(TrainingError):
    """The file cannot be read as labelled texts; the message names the file, the lines and the fix."""


@dataclass
class Columns:
    """Which CSV columns or JSON keys hold the text, the tags and the group (None: the defaults)."""

    text: str | None = None  # several columns, joined in this order: "title,body"
    tags: str | None = None
    group: str | None = None

    def text_names(self, default: str | None = None) -> list[str | None]:
        if not self.text:
            return [default]
        names = [name.strip() for name in self.text.split(",")]
        if not all(names):
            raise DatasetError(f"--text-column {self.text!r}: an empty name; name the columns as 'Title,Body'")
        return names


@dataclass
class Dataset:
    """The examples of one file, the format they were read as, and whether the file names groups."""

    path: Path
    format: str
    examples: list[Example] = field(default_factory=list)
    has_groups: bool = False
    problems: list[Problem] = field(default_factory=list)  # rows and tags dropped, in file order

    def rows_read(self) -> int:
        """The examples and the rows dropped while reading."""
        return len(self.examples) + sum(problem.tag is None for problem in self.problems)


class _Row(NamedTuple):
    line: int
    id: str
    group: str | None
    tags: object  # a string or a list of strings, as the file has them
    text: str
    problem: Problem | None = None  # what is wrong with the row as a whole


def _bad_row(line: int, rule: str, detail: str) -> _Row:
    return _Row(line, str(line), None, [], "", Problem(rule, line, str(line), detail))


def read_examples(path) -> Iterator[Example]:
    """The examples of a prepared Debian TSV file (data/*.tsv.gz), which has no bad row."""
    return iter(read_dataset(Path(path), "tsv", strict=True).examples)


def read_dataset(path: Path, format: str | None = None, columns: Columns | None = None,
                 strict: bool = False) -> Dataset:
    """Read every row of `path`, dropping bad rows and tags into `problems`; DatasetError naming each
    of them when `strict`, when the rows that cannot be read are at least half, or when none is left."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DatasetError(f"{path}: a damaged gzip file: {e}") from None
    try:
        content = codecs.decode(raw, "utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not UTF-8 text ({e.reason}); save the export as UTF-8") from None
    if not content.strip():
        raise DatasetError(f"{path}: the file is empty")
    format = format or detect_format(path, content)
    reader = {"csv": _csv_rows, "jsonl": _jsonl_rows, "fasttext": _fasttext_rows, "tsv": _tsv_rows}[format]
    dataset = Dataset(path, format)
    for row in reader(path, content, columns or Columns(), dataset):
        example, problems = _example(row)
        dataset.problems += problems
        if example is not None:
            dataset.examples.append(example)
    errors = [f"{path}:{p.line}: {p.detail}" for p in dataset.problems if p.rule != NO_HASHTAG_LEFT]
    unreadable = sum(p.rule in UNREADABLE for p in dataset.problems)
    rows = dataset.rows_read()
    if strict and errors:
        bad = len({p.line for p in dataset.problems})
        raise DatasetError(_error_summary(path, format, errors, f"{bad} bad row{'s' if bad > 1 else ''}"))
    if unreadable and 2 * unreadable >= rows:
        raise DatasetError(_error_summary(path, format, errors, f"{unreadable} of {rows} rows cannot be read"))
    if not dataset.examples:
        if errors:
            raise DatasetError(_error_summary(path, format, errors, "no row is left to train on"))
        raise DatasetError(f"{path}: no examples in the file (read as {format})")
    return dataset


def detect_format(path: Path, content: str) -> str:
    """The format from the file name (a .gz suffix aside), else from its first line."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    first = next(line for line in content.splitlines() if line.strip())
    if first.lstrip().startswith("{"):
        return "jsonl"
    if first.startswith(LABEL_PREFIX):
        return "fasttext"
    if first.count("\t") == 3:
        return "tsv"
    if "," in first:
        return "csv"
    raise DatasetError(
        f"{path}: cannot tell the format from the name or the first line {first[:80]!r}; "
        f"say it with --format ({', '.join(FORMATS)})"
    )


def split_tags(tags: str) -> list[str]:
    """'#c++, python;go|r' -> ['#c++', 'python', 'go', 'r']; '<sql><go>' (Stack Exchange) and '["sql", "go"]'
    (a list written into one CSV cell) -> ['sql', 'go']."""
    # Quotes only at the ends, for ['a', 'b']: a tag such as o'reilly is still refused by name.
    return [tag for tag in (part.strip("'") for part in _TAG_SEPARATORS.split(tags)) if tag]


def _example(row: _Row) -> tuple[Example | None, list[Problem]]:
    """The row as an example without the tags that cannot be hashtags, and what was dropped."""
    if row.problem:
        return None, [row.problem]
    if isinstance(row.tags, str):
        tags = split_tags(row.tags)
    elif isinstance(row.tags, list) and all(isinstance(tag, str) for tag in row.tags):
        tags = [part for tag in row.tags for part in split_tags(tag)]
    else:
        return None, [Problem(TAGS_NOT_STRINGS, row.line, row.id, f"the tags must be a string or a list of "
                                                                  f"strings, not {json.dumps(row.tags)[:40]}")]
    labels, problems = {}, []
    for tag in tags:
        label = normalize_tag(tag)
        if problem := _tag_problem(label):
            problems.append(Problem(BAD_TAG, row.line, row.id, f"tag {tag!r} cannot be a hashtag: {problem}", tag))
        else:
            labels.setdefault(label)
    if problems and not labels:
        return None, problems + [Problem(NO_HASHTAG_LEFT, row.line, row.id, "no tag left that can be a hashtag")]
    return Example(row.id, row.group if row.group is not None else row.id, list(labels), row.text), problems


def _error_summary(path: Path, format: str, errors: list[str], what: str) -> str:
    shown = errors[:MAX_ERRORS_SHOWN]
    more = f"\n... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
    return (f"{path}: {what} (read as {format}; --format names another), nothing was trained:\n"
            + "\n".join(shown) + more)


def _find(names: list[str], name: str) -> str | None:
    """The header name `name` matches: itself, else the one that differs from it only in case."""
    if name in names:
        return name
    return next((n for n in names if n.casefold() == name.casefold()), None)


def _pick(names: list[str], wanted: str | None, defaults: tuple[str, ...], what: str, option: str, path: Path) -> str:
    """The column or key for `what`: the one asked for, else the first default present (in any case)."""
    candidates = (wanted,) if wanted else defaults
    for name in candidates:
        found = _find(names, name)
        if found is not None:
            return found
    raise DatasetError(
        f"{path}:1: no {what} column named {' or '.join(repr(c) for c in candidates)} in the header "
        f"{names[:8]}; the first row must name the columns, or pick one with {option}"
    )


def _csv_rows(path: Path, content: str, columns: Columns, dataset: Dataset) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)  # rows end at \n or \r only
    try:
        header = [name.strip() for name in next(reader)]
        text_cols = [_pick(header, name, TEXT_COLUMNS, "text", "--text-column", path) for name in columns.text_names()]
        tags_col = _pick(header, columns.tags, TAGS_COLUMNS, "tags", "--tags-column", path)
        group_col = _pick(header, columns.group, (), "group", "--group-column", path) if columns.group \
            else _find(header, "group")
        id_col = _find(header, "id")
        dataset.has_groups = group_col is not None
        index = {name: i for i, name in enumerate(header)}
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                yield _bad_row(line, FIELD_COUNT, (
                    f"{len(cells)} fields where the header has {len(header)}; quote a field "
                    f"that holds a comma (\"a, b\")"))
                continue
            yield _Row(line, cells[index[id_col]] if id_col else str(line), cells[index[group_col]] if group_col else None,
                       cells[index[tags_col]], "\n".join(cells[index[col]] for col in text_cols))
    except csv.Error as e:
        raise DatasetError(f"{path}:{reader.line_num}: not valid CSV: {e}") from None


def _jsonl_rows(path: Path, content: str, columns: Columns, dataset: Dataset) -> Iterator[_Row]:
    text_keys, tags_key, group_key = columns.text_names(TEXT_COLUMNS[0]), columns.tags, columns.group or "group"
    for line, raw in enumerate(content.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as e:
            yield _bad_row(line, NOT_JSON, (f"not a JSON object: {getattr(e, 'msg', e)} "
                                            f"at column {getattr(e, 'colno', '?')}"))
            continue
        if not isinstance(record, dict):
            yield _bad_row(line, NOT_JSON, 'not a JSON object such as {"text": "...", "hashtags": [...]}')
            continue
        keys = (tags_key,) if tags_key else TAGS_COLUMNS
        tags = next((record[key] for key in keys if key in record), None)
        missing = [key for key in text_keys if key not in record] + ([" or ".join(keys)] if tags is None else [])
        if missing:
            yield _bad_row(line, MISSING_KEY, f"no {missing[0]!r} key")
            continue
        texts = [record[key] for key in text_keys]
        not_texts = [text for text in texts if not isinstance(text, str)]
        if not_texts:
            yield _bad_row(line, TEXT_NOT_STRING, f"the text must be a string, not {json.dumps(not_texts[0])[:40]}")
            continue
        group = record.get(group_key)
        dataset.has_groups |= group is not None
        yield _Row(line, str(record.get("id", line)), None if group is None else str(group), tags, "\n".join(texts))


def _fasttext_rows(path: Path, content: str, columns: Columns, dataset: Dataset) -> Iterator[_Row]:
    for line, raw in enumerate(content.split("\n"), start=1):
        words = raw.split()
        if not words:
            continue
        tags = [w[len(LABEL_PREFIX):] for w in words if w.startswith(LABEL_PREFIX)]
        text = " ".join(w for w in words if not w.startswith(LABEL_PREFIX))
        yield _Row(line, str(line), None, tags, text)


_TSV_HEADERS = {"labels", "tags", "hashtags"}


def _tsv_rows(path: Path, content: str, columns: Columns, dataset: Dataset) -> Iterator[_Row]:
    dataset.has_groups = True
    for line, raw in enumerate(content.split("\n"), start=1):
        if not raw.strip():
            continue
        fields = raw.rstrip("\r").split("\t")
        if len(fields) != 4:
            yield _bad_row(line, TSV_FIELDS, (
                f"{len(fields)} tab-separated fields; a line is id<TAB>group<TAB>tags<TAB>text"))
            continue
        if line == 1 and fields[2].strip().lower() in _TSV_HEADERS:
            continue  # a header row
        yield _Row(line, fields[0], fields[1], fields[2], fields[3])
