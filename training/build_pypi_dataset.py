"""A large tagged dataset from real text: package summaries of a PyPI name list, tagged with their own words.

    python -m training.build_pypi_dataset --pypi-tsv PATH --rows N [--tags 1000] [--seed 1] --out FILE.csv

PATH is a tab-separated list with a header naming a `name` and a `summary` column (one package a
row). Summaries that are empty, mostly not ASCII letters, or (once cleaned) a repeat of an earlier
one are left out. The T most frequent content words of the rest (clean_text tokens of two or
more characters with a letter, not a stopword; counted once per summary) are the tags. A row's
tags are the tag words of its summary and its text the summary's other tokens, so a model has to
infer the tags from the rest; rows left without tags or without text, or whose text repeats an
earlier one, are dropped, and N of the others are drawn with a seeded sample (in file order).
The CSV has the columns id (the package name), text and tags (space-separated), as
training.dataset reads them.
"""

import argparse
import csv
import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from text_cleaning import clean_text, tag_problem
from training.errors import TrainingError, exit_with

DEFAULT_TAGS = 1000
DEFAULT_SEED = 1
MIN_ASCII_LETTERS = 0.9  # of a summary's letters: English-ish
STOPWORDS = frozenset("""
a an the and or nor but if then so than as at by for from in into of on onto to with without via
is are was were be been being it its this that these those there here which who whom whose what
when where how why not no all any each every both some such only own same other more most very
can could will would should may might must do does did done has have had having
i me my we our you your he she they them their his her us about over under up down out off
also just too again once per vs etc
""".split())


class Row(NamedTuple):
    id: str
    text: str
    tags: list[str]


def read_summaries(path: Path) -> Iterator[tuple[str, str]]:
    """(name, summary) of each row of the tab-separated list, by the columns its header names."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        missing = [column for column in ("name", "summary") if column not in header]
        if missing:
            raise TrainingError(f"{path}: no {missing[0]!r} column in the header {header[:8]}")
        name_at, summary_at = header.index("name"), header.index("summary")
        for line in f:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) > max(name_at, summary_at):
                yield fields[name_at], fields[summary_at]


def is_english_ish(summary: str) -> bool:
    letters = [c for c in summary if c.isalpha()]
    return bool(letters) and sum(c.isascii() for c in letters) >= MIN_ASCII_LETTERS * len(letters)


def is_content_word(token: str) -> bool:
    return (len(token) >= 2 and token not in STOPWORDS and any(c.isalpha() for c in token)
            and tag_problem(token) is None)


def usable_summaries(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(name, cleaned tokens) of the non-empty, English-ish summaries, the first of each cleaned text."""
    seen, kept = set(), []
    for name, summary in pairs:
        line = clean_text(summary)
        if line and line not in seen and is_english_ish(summary):
            seen.add(line)
            kept.append((name, line.split()))
    return kept


def frequent_words(summaries: list[tuple[str, list[str]]], count: int) -> set[str]:
    """The `count` content words found in the most summaries (ties broken alphabetically)."""
    frequency = Counter(word for _, tokens in summaries for word in set(tokens) if is_content_word(word))
    return {word for word, _ in sorted(frequency.items(), key=lambda item: (-item[1], item[0]))[:count]}


def tagged_rows(summaries: list[tuple[str, list[str]]], tags: set[str]) -> list[Row]:
    """Each summary as a row: its tag words as tags, its other tokens as text; rows left empty or
    repeating an earlier text are dropped."""
    seen, rows = set(), []
    for name, tokens in summaries:
        row_tags = list(dict.fromkeys(token for token in tokens if token in tags))
        text = " ".join(token for token in tokens if token not in tags)
        if row_tags and text and text not in seen:
            seen.add(text)
            rows.append(Row(name, text, row_tags))
    return rows


def sample(rows: list[Row], n: int, seed: int) -> list[Row]:
    """`n` rows drawn with `seed`, in their order in the list."""
    if n > len(rows):
        raise TrainingError(f"--rows {n}: only {len(rows):,} rows are left after the filters; ask for fewer")
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), n))]


def write_csv(rows: list[Row], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "text", "tags"])
        writer.writerows([row.id, row.text, " ".join(row.tags)] for row in rows)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pypi-tsv", type=Path, required=True, help="the tab-separated name list with summaries")
    parser.add_argument("--rows", type=int, required=True, metavar="N", help="rows to write")
    parser.add_argument("--tags", type=int, default=DEFAULT_TAGS, metavar="T",
                        help="the T most frequent words are the tags")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the row sample")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.tags < 1:
        parser.error("--rows and --tags must be at least 1")
    try:
        return build(args)
    except TrainingError as e:
        raise exit_with(e) from None


def build(args: argparse.Namespace) -> dict:
    if not args.pypi_tsv.is_file():
        raise TrainingError(f"{args.pypi_tsv}: no such file")
    summaries = usable_summaries(read_summaries(args.pypi_tsv))
    tags = frequent_words(summaries, args.tags)
    rows = tagged_rows(summaries, tags)
    chosen = sample(rows, args.rows, args.seed)
    write_csv(chosen, args.out)
    stats = {"summaries": len(summaries), "tags": len(tags), "rows_available": len(rows), "rows": len(chosen),
             "tags_in_rows": len({tag for row in chosen for tag in row.tags}),
             "tags_per_row": sum(len(row.tags) for row in chosen) / len(chosen)}
    print(f"{stats['summaries']:,} usable summaries, {stats['tags']:,} tags, {stats['rows_available']:,} rows with "
          f"tags and text; wrote {stats['rows']:,} rows ({stats['tags_in_rows']:,} tags in them, "
          f"{stats['tags_per_row']:.2f} a row) to {args.out}", file=sys.stderr)
    return stats


if __name__ == "__main__":
    main()
