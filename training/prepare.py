"""From the examples a user's files hold to the training and validation sets, saying what is dropped.

Nothing is dropped silently: each rule that drops something prints one summary line. Each text is
cleaned once, here (text_cleaning.clean_text, as the endpoint cleans requests): a Part holds the
examples with their cleaned lines, and every learner, score and file downstream reads the lines.
"""

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from text_cleaning import clean_text
from training.build_dataset import VALID_FRACTION, is_validation_source
from training.dataset import BAD_TAG, NO_HASHTAG_LEFT, Columns, Example, Problem, read_dataset
from training.errors import TrainingError
from training.progress import PROGRESS_SECONDS

DEFAULT_MIN_TAG_COUNT = 1  # a logistic regression learns a tag from one example: none is dropped by default
SPLIT_SEED = 1
MAX_VALID = 10_000  # validation rows kept from --train: enough to choose and calibrate; the rest trains
_SHOWN = 5


@dataclass
class Part:
    """Examples and their cleaned lines, in the same order."""

    examples: list[Example]
    lines: list[str]

    @property
    def gold(self) -> list[list[str]]:
        return [e.labels for e in self.examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __add__(self, other: "Part") -> "Part":
        return Part(self.examples + other.examples, self.lines + other.lines)

    def label_counts(self) -> Counter:
        return Counter(label for e in self.examples for label in e.labels)


@dataclass
class Split:
    """The training and validation parts, what was read and dropped, and where validation came from."""

    train: Part
    valid: Part
    notes: list[str] = field(default_factory=list)
    valid_from_file: bool = False  # validation is a file of its own, not a part of --train
    export_tags: int = 0  # distinct usable tags in the training file, before any was dropped

    @property
    def labels(self) -> list[str]:
        return sorted(self.train.label_counts())


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


def drop_unusable(examples: list[Example], name: str, notes: list[str], seen: set[str],
                  progress: Callable[[str], None] | None = None) -> Part:
    """Clean each example's text once, and drop examples with no words, with no tags, and repeats of a
    text already in `seen`; `progress`, when given, hears every PROGRESS_SECONDS how far cleaning is.

    `seen` holds the cleaned texts met so far and gains the kept ones, so that validation
    rows repeating a training text are dropped too.
    """
    kept, lines, no_words, no_tags, repeats = [], [], [], [], []
    where = "earlier or in the training set" if seen else "earlier"
    started = last = time.monotonic()
    for i, example in enumerate(examples):
        if progress is not None and i % 1000 == 0 and time.monotonic() - last >= PROGRESS_SECONDS:
            last = time.monotonic()
            eta = (last - started) / i * (len(examples) - i)
            progress(f"  cleaned {i:,} of {len(examples):,} {name} rows, ETA {eta:.0f} s")
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
            lines.append(line)
    _note_dropped(no_words, f"{name} rows whose text has no words", notes)
    _note_dropped(no_tags, f"{name} rows with no tags", notes)
    _note_dropped(repeats, f"{name} rows whose text is a duplicate of one {where} (the first is kept)", notes)
    return Part(kept, lines)


def split(part: Part, by_group: bool, seed: int = SPLIT_SEED) -> tuple[Part, Part]:
    """A reproducible (train, valid) split by a seeded hash of the group or id: VALID_FRACTION of the
    rows, or MAX_VALID when that is fewer."""
    fraction = min(VALID_FRACTION, MAX_VALID / max(1, len(part)))
    train, valid = Part([], []), Part([], [])
    for example, line in zip(part.examples, part.lines):
        side = valid if is_validation_source(example.group if by_group else example.id, seed, fraction) else train
        side.examples.append(example)
        side.lines.append(line)
    return train, valid


def drop_rare_tags(train: Part, valid: Part, min_count: int, notes: list[str]) -> tuple[Part, Part]:
    """Keep the tags seen at least `min_count` times in training; validation keeps only those too."""
    counts = train.label_counts()
    rare = sorted(label for label, n in counts.items() if n < min_count)
    if rare:
        shown = ", ".join("#" + label for label in rare[:_SHOWN]) + (", ..." if len(rare) > _SHOWN else "")
        notes.append(f"dropped {len(rare)} tags seen fewer than {min_count} times in training "
                     f"(--min-tag-count): {shown}")
    known = {label for label, n in counts.items() if n >= min_count}
    unknown = sorted({label for e in valid.examples for label in e.labels} - set(counts))
    if unknown:
        shown = ", ".join("#" + label for label in unknown[:_SHOWN]) + (", ..." if len(unknown) > _SHOWN else "")
        notes.append(f"{len(unknown)} validation tags that no training row has are not scored: {shown}")
    train = _keep_tags(train, known, "training rows left with no tags", notes)
    valid = _keep_tags(valid, known, "validation rows left with no tag the training rows have", notes)
    return train, valid


def _keep_tags(part: Part, known: set[str], what: str, notes: list[str]) -> Part:
    kept, dropped = Part([], []), []
    for example, line in zip(part.examples, part.lines):
        labels = [label for label in example.labels if label in known]
        if labels:
            kept.examples.append(example._replace(labels=labels))
            kept.lines.append(line)
        else:
            dropped.append(example)
    _note_dropped(dropped, what, notes)
    return kept


def summary(split: Split, top: int = 10) -> list[str]:
    """Lines describing the data about to be trained on: sizes, tags, the most and least frequent."""
    counts = split.train.label_counts()
    per_example = [len(example.labels) for example in split.train.examples]
    ranked = counts.most_common()
    return [
        f"{len(split.train)} training and {len(split.valid)} validation examples; {len(counts)} tags to learn "
        f"of the {split.export_tags} usable tags in the export",
        f"tags per training example: mean {sum(per_example) / len(per_example):.2f}, max {max(per_example)}",
        "most frequent: " + ", ".join(f"#{label} {n}" for label, n in ranked[:top]),
        "least frequent: " + ", ".join(f"#{label} {n}" for label, n in ranked[::-1][:top]),
    ]


def load(source: dict, progress: Callable[[str], None] | None = None) -> Split:
    """The training and validation parts of the data `source` names, with lines describing what was read,
    dropped and split; DatasetError (a TrainingError) naming every bad row of a file that is refused."""
    columns, strict = Columns(**source["columns"]), source.get("strict", False)
    notes = []
    train_set = read_dataset(Path(source["train"]), source["format"], columns, strict)
    valid_set = read_dataset(Path(source["valid"]), source["format"], columns, strict) if source["valid"] else None
    notes.append(f"read {train_set.rows_read()} rows of {train_set.path} as {train_set.format}")
    note_problems(train_set.problems, "training", notes)
    seen = set()
    train = drop_unusable(train_set.examples, "training", notes, seen, progress)
    export_tags = len(train.label_counts())
    if valid_set is not None:
        notes.append(f"read {valid_set.rows_read()} rows of {valid_set.path} as {valid_set.format}")
        note_problems(valid_set.problems, "validation", notes)
        valid = drop_unusable(valid_set.examples, "validation", notes, seen, progress)
    else:
        by = "group" if train_set.has_groups else "row"
        train, valid = split(train, by_group=train_set.has_groups, seed=source["split_seed"])
        notes.append(f"no --valid: kept {len(valid)} of {len(train) + len(valid)} examples for validation, "
                     f"split by {by} with seed {source['split_seed']} (--split-seed)")
    train, valid = drop_rare_tags(train, valid, source["min_tag_count"], notes)
    return Split(train, valid, notes, valid_from_file=valid_set is not None, export_tags=export_tags)


def require_examples(split: Split) -> None:
    """Stop when the drops left nothing to train on or to validate with."""
    if not split.train or not split.valid:
        raise TrainingError(f"{'no training' if not split.train else 'no validation'} examples are left after "
                            f"the drops above; more data, or a --valid file, is needed")
