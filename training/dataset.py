"""Reader for the prepared dataset files (data/train.tsv.gz, data/valid.tsv.gz)."""

import gzip
from collections.abc import Iterator
from typing import NamedTuple


class Example(NamedTuple):
    """One package: its name, its source package, its labels and its raw description."""

    package: str
    source: str
    labels: list[str]
    text: str


def read_examples(path) -> Iterator[Example]:
    """Yield the examples of a gzipped `package<TAB>source<TAB>labels<TAB>text` file."""
    with gzip.open(path, "rt", encoding="utf-8", newline="\n") as lines:
        for line in lines:
            package, source, labels, text = line.rstrip("\n").split("\t")
            yield Example(package, source, labels.split(), text)
