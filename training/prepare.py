"""From the examples a user's files hold to the training and validation sets, saying what is dropped.

Nothing is dropped silently: each rule that drops something prints one summary line.
"""

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from text_cleaning import clean_text
from training.build_dataset import is_validation_source
from training.dataset import BAD_TAG, NO_HASHTAG_LEFT, Columns, DatasetError, Example, Problem, read_dataset

DEFAULT_MIN_TAG_COUNT = 3
SPLIT_SEED = 1
_SHOWN = 5


def _first(items: list) -> str:
    return ", ".join(map(str, items[:_SHOWN])) + (", ..." if len(items) > _SHOWN else "")


def _where(problems: list[Problem]) -> str:
    """'lines 3, 7', and the rows' ids when the file names them."""
    lines = list(dict.fromkeys(problem.line for problem in problems))
    ids = list(dict.fromkeys(problem.id for problem in problems if problem.id != str(problem.line)))
    return (f"line{'s' if len(lines) > 1 else ''} {_first(lines)}"
            + (f"; id{'s' if len(ids) > 1 else ''} {_first(ids)}" if ids else ""))


def _note_dropped(dropped: list[Example], what: str, notes: list[str]) -> None:
    if dropped:
        notes.append(f"dropped {len(dropped)} {what} (row id or line: {_first([e.id for e in dropped])})")


def note_problems(problems: list[Problem], name: str, notes: list[str]) -> None:
    """One line for each rule that rows or tags of the `name` file broke: how many, which, where."""
    by_rule = {}
    for problem in problems:
        by_rule.setdefault(problem.rule, []).append(problem)
    for rule, found in by_rule.items():
        if rule == BAD_TAG:
            tags = list(dict.fromkeys(problem.tag for problem in found))
            rows = len({problem.line for problem in found})
            notes.append(f"dropped {len(tags)} tags {rule}, {len(found)} times in {rows} {name} rows, which keep "
                         f"their other tags: {_first([repr(tag) for tag in tags])} ({_where(found)}); "
                         f"--strict refuses the file instead")
        else:
            first = "" if rule == NO_HASHTAG_LEFT else f": line {found[0].line}: {found[0].detail}"
            notes.append(f"dropped {len(found)} {name} rows {rule} ({_where(found)}){first}")


def _drop(examples: list[Example], unwanted: Callable[[Example], bool], what: str, notes: list[str]) -> list[Example]:
    kept, dropped = [], []
    for example in examples:
        (dropped if unwanted(example) else kept).append(example)
    _note_dropped(dropped, what, notes)
    return kept


def drop_unusable(examples: list[Example], name: str, notes: list[str], seen: set[str]) -> list[Example]:
    """Drop examples with no words, with no tags, and repeats of a text already in `seen`.

    `seen` holds the cleaned texts met so far and gains the kept ones, so that validation
    rows repeating a training text are dropped too.
    """
    kept, no_words, no_tags, repeats = [], [], [], []
    where = "earlier or in the training set" if seen else "earlier"
    for example in examples:
        line = clean_text(example.text)
        if not line:
            no_words.append(example)
        elif not example.labels:
            no_tags.append(example)
        elif line in seen:
            repeats.append(example)
        else:
            seen.add(line)
            kept.append(example)
    _note_dropped(no_words, f"{name} rows whose text has no words", notes)
    _note_dropped(no_tags, f"{name} rows with no tags", notes)
    _note_dropped(repeats, f"{name} rows whose text is a duplicate of one {where} (the first is kept)", notes)
    return kept


def split(examples: list[Example], by_group: bool, seed: int = SPLIT_SEED) -> tuple[list[Example], list[Example]]:
    """A reproducible (train, valid) split: about VALID_FRACTION by a seeded hash of the group or id."""
    train, valid = [], []
    for example in examples:
        key = example.group if by_group else example.id
        (valid if is_validation_source(key, seed) else train).append(example)
    return train, valid


def drop_rare_tags(train: list[Example], valid: list[Example], min_count: int,
                   notes: list[str]) -> tuple[list[Example], list[Example]]:
    """Keep the tags seen at least `min_count` times in training; validation keeps only those too."""
    counts = Counter(label for example in train for label in example.labels)
    rare = sorted(label for label, n in counts.items() if n < min_count)
    if rare:
        shown = ", ".join("#" + label for label in rare[:_SHOWN]) + (", ..." if len(rare) > _SHOWN else "")
        notes.append(f"dropped {len(rare)} tags seen fewer than {min_count} times in training "
                     f"(--min-tag-count): {shown}")
    known = {label for label, n in counts.items() if n >= min_count}
    unknown = sorted({label for e in valid for label in e.labels} - set(counts))
    if unknown:
        shown = ", ".join("#" + label for label in unknown[:_SHOWN]) + (", ..." if len(unknown) > _SHOWN else "")
        notes.append(f"dropped {len(unknown)} validation tags that no training example has: {shown}")
    train = [e._replace(labels=[label for label in e.labels if label in known]) for e in train]
    valid = [e._replace(labels=[label for label in e.labels if label in known]) for e in valid]
    train = _drop(train, lambda e: not e.labels, "training rows left with no tags", notes)
    valid = _drop(valid, lambda e: not e.labels, "validation rows left with no tags", notes)
    return train, valid


def summary(train: list[Example], valid: list[Example], top: int = 10) -> list[str]:
    """Lines describing the data about to be trained on: sizes, tags, the most and least frequent."""
    counts = Counter(label for example in train for label in example.labels)
    per_example = [len(example.labels) for example in train]
    ranked = counts.most_common()
    return [
        f"{len(train)} training and {len(valid)} validation examples, {len(counts)} tags",
        f"tags per training example: mean {sum(per_example) / len(per_example):.2f}, max {max(per_example)}",
        "most frequent: " + ", ".join(f"#{label} {n}" for label, n in ranked[:top]),
        "least frequent: " + ", ".join(f"#{label} {n}" for label, n in ranked[::-1][:top]),
    ]


def load(source: dict) -> tuple[list[Example], list[Example], list[str]]:
    """(train, valid, lines describing what was read, dropped and split), or SystemExit naming every bad row."""
    columns, strict = Columns(**source["columns"]), source.get("strict", False)
    notes = []
    try:
        train_set = read_dataset(Path(source["train"]), source["format"], columns, strict)
        valid_set = read_dataset(Path(source["valid"]), source["format"], columns, strict) if source["valid"] else None
    except DatasetError as e:
        raise SystemExit(f"error: {e}") from None
    notes.append(f"read {train_set.rows_read()} rows of {train_set.path} as {train_set.format}")
    note_problems(train_set.problems, "training", notes)
    seen = set()
    train = drop_unusable(train_set.examples, "training", notes, seen)
    if valid_set is not None:
        notes.append(f"read {valid_set.rows_read()} rows of {valid_set.path} as {valid_set.format}")
        note_problems(valid_set.problems, "validation", notes)
        valid = drop_unusable(valid_set.examples, "validation", notes, seen)
    else:
        by = "group" if train_set.has_groups else "row"
        train, valid = split(train, by_group=train_set.has_groups, seed=source["split_seed"])
        notes.append(f"no --valid: kept {len(valid)} of {len(train) + len(valid)} examples for validation, "
                     f"split by {by} with seed {source['split_seed']} (--split-seed)")
    train, valid = drop_rare_tags(train, valid, source["min_tag_count"], notes)
    return train, valid, notes


def require_examples(train: list[Example], valid: list[Example]) -> None:
    """Stop when the drops left nothing to train on or to validate with."""
    if not train or not valid:
        raise SystemExit(f"error: {'no training' if not train else 'no validation'} examples are left "
                         f"after the drops above; more data, or a --valid file, is needed")
