"""Build the multi-label debtags dataset from Debian 12 "bookworm", component main, amd64.

    python -m training.build_dataset --out data/
    python -m training.build_dataset --out DIR --packages Packages --translations Translation-en

Each output line is `package<TAB>source<TAB>label1 label2 ...<TAB>text`: the labels are
the package's debtags spelled as hashtag bodies, the text its raw English description
on one line (cleaning happens later, in training). `pretrain.tsv.gz` has the same
format with no labels: the other descriptions of the index (packages without debtags
among them), for word-vector pretraining, with nothing from the validation split.
"""

import argparse
import collections
import dataclasses
import datetime
import gzip
import hashlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from text_cleaning import clean_text
from training.dataset import Example
from training.progress import logger

SUITE = "bookworm"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
APT_HELPER = "/usr/lib/apt/apt-helper"
# Hooks from the machine's apt.conf.d (e.g. an AppStream cache refresh) must not run.
PRIVATE_APT_CONF = (
    "#clear APT::Update::Pre-Invoke;\n"
    "#clear APT::Update::Post-Invoke;\n"
    "#clear APT::Update::Post-Invoke-Success;\n"
)
VALID_FRACTION = 0.2
LABEL = re.compile(r"[a-z0-9][a-z0-9-]*[a-z0-9]")
ODD_TAG_CHAR = re.compile(r"[^a-z0-9:+-]")


class Package(NamedTuple):
    name: str
    source: str
    summary: str
    md5: str
    tags: tuple[str, ...]


@dataclasses.dataclass
class Stats:
    """What the build dropped or fell back on, for the provenance note."""

    packages: int = 0
    no_tags: int = 0
    only_todo_tags: int = 0
    todo_tags_dropped: int = 0
    summary_only: int = 0
    duplicates_dropped: int = 0
    duplicates_with_other_labels: int = 0
    unusual_tags: set[str] = dataclasses.field(default_factory=set)
    corpus_validation_source: int = 0
    corpus_like_validation_text: int = 0
    corpus_like_training_text: int = 0


log = logger("build_dataset")


def parse_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Yield deb822 stanzas as {field: value}; continuation lines are kept after a newline."""
    stanza: dict[str, str] = {}
    field = ""
    for line in text.split("\n"):
        if not line.strip():
            if stanza:
                yield stanza
            stanza = {}
        elif line[0] in " \t":
            stanza[field] += "\n" + line
        else:
            field, _, value = line.partition(":")
            stanza[field] = value.strip()
    if stanza:
        yield stanza


def parse_tags(value: str) -> tuple[str, ...]:
    """Split a (possibly multi-line) Tag field into its tags."""
    return tuple(tag for tag in (t.strip() for t in value.replace("\n", " ").split(",")) if tag)


def parse_packages(text: str) -> list[Package]:
    """Read the stanzas of a Packages file, in file order."""
    return [
        Package(
            name=stanza["Package"],
            source=stanza.get("Source", stanza["Package"]).split()[0],
            summary=stanza["Description"].split("\n")[0],
            md5=stanza.get("Description-md5", ""),
            tags=parse_tags(stanza.get("Tag", "")),
        )
        for stanza in parse_stanzas(text)
    ]


def parse_translations(text: str) -> dict[str, str]:
    """Map Description-md5 to the raw long description (continuation lines) of Translation-en."""
    return {
        stanza["Description-md5"]: stanza["Description-en"].partition("\n")[2]
        for stanza in parse_stanzas(text)
    }


def long_description_to_text(raw: str) -> str:
    """Turn Debian's long-description format into plain text with blank-line paragraph breaks."""
    lines = (line[1:] for line in raw.split("\n") if line)
    return "\n".join("" if line == "." else line for line in lines)


_URL = re.compile(r"\S+://\S*")


def document_text(summary: str, raw_long_description: str) -> str:
    """Return summary and long description as one line without URLs, whitespace runs turned into
    one space. URLs teach a model nothing, and some name a package registry's host, which this
    repository keeps out of its files."""
    text = f"{summary}\n\n{long_description_to_text(raw_long_description)}"
    return " ".join(_URL.sub(" ", text).split())


def is_unusual(tag: str) -> bool:
    """Whether the tag has characters beyond letters, digits, `-`, `:` and `+`."""
    return bool(ODD_TAG_CHAR.search(tag.lower()))


def tag_to_label(tag: str) -> str:
    """Spell a debtag as a hashtag body, e.g. `implemented-in::c++` -> `implemented-in-cpp`."""
    label = tag.lower().replace("::", "-").replace(":", "-").replace("+", "p")
    label = ODD_TAG_CHAR.sub("-", label)
    if len(label) < 3 or not LABEL.fullmatch(label):
        raise ValueError(f"debtag {tag!r} gives the unusable label {label!r}")
    return label


def label_packages(packages: Iterable[Package], translations: dict[str, str], stats: Stats) -> Iterator[Example]:
    """Yield an example per package left with a tag once the `...TODO` tags are dropped."""
    for package in packages:
        stats.packages += 1
        tags = [tag for tag in package.tags if not tag.endswith("TODO")]
        stats.todo_tags_dropped += len(package.tags) - len(tags)
        if not package.tags:
            stats.no_tags += 1
        elif not tags:
            stats.only_todo_tags += 1
        if not tags:
            continue
        stats.unusual_tags.update(filter(is_unusual, tags))
        long_description = translations.get(package.md5)
        stats.summary_only += long_description is None
        labels = sorted({tag_to_label(tag) for tag in tags})
        yield Example(package.name, package.source, labels, document_text(package.summary, long_description or ""))


def drop_duplicates(examples: Iterable[Example], stats: Stats) -> list[Example]:
    """Keep the first example of each distinct text."""
    first: dict[str, Example] = {}
    for example in examples:
        kept = first.setdefault(example.text, example)
        if kept is not example:
            stats.duplicates_dropped += 1
            stats.duplicates_with_other_labels += kept.labels != example.labels
    return list(first.values())


def is_validation_source(source: str, seed: int, fraction: float = VALID_FRACTION) -> bool:
    """Assign a source package to validation with probability `fraction`, by a salted hash."""
    digest = hashlib.sha256(f"{seed}:{source}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def split_by_source(examples: Iterable[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """Split into (train, valid) so that all binaries of a source land on the same side."""
    train, valid = [], []
    for example in examples:
        (valid if is_validation_source(example.group, seed) else train).append(example)
    return train, valid


def pretraining_corpus(packages: Iterable[Package], translations: dict[str, str], train: list[Example],
                       valid: list[Example], seed: int, stats: Stats) -> list[Example]:
    """The descriptions of all packages, tagged or not, that neither split holds, as unlabelled examples.

    Nothing of the validation split gets in: no package of a source that the split assigns to
    validation, and no text that cleans (text_cleaning.clean_text, as training does) to the
    line of a validation text. Texts that clean like a training text or like an earlier corpus
    text are left out too: pretraining reads the training split's texts anyway.
    """
    validation_lines = {clean_text(e.text) for e in valid}
    seen = {clean_text(e.text) for e in train}
    corpus = []
    for package in packages:
        if is_validation_source(package.source, seed):
            stats.corpus_validation_source += 1
            continue
        text = document_text(package.summary, translations.get(package.md5, ""))
        line = clean_text(text)
        if line in validation_lines:
            stats.corpus_like_validation_text += 1
        elif line in seen:
            stats.corpus_like_training_text += 1
        elif line:
            seen.add(line)
            corpus.append(Example(package.name, package.source, [], text))
    return corpus


def build(packages_text: str, translations_text: str, seed: int) -> tuple[list[Example], list[Example], list[Example], Stats]:
    """Return (train, valid, pretraining corpus, stats) from the plain-text Packages and Translation-en files."""
    stats = Stats()
    packages = parse_packages(packages_text)
    translations = parse_translations(translations_text)
    log(f"parsed {len(packages)} packages, {len(translations)} translations")
    examples = drop_duplicates(label_packages(packages, translations, stats), stats)
    train, valid = split_by_source(examples, seed)
    log(f"{len(examples)} examples: {len(train)} train, {len(valid)} valid")
    corpus = pretraining_corpus(packages, translations, train, valid, seed, stats)
    log(f"{len(corpus)} further texts for pretraining")
    return train, valid, corpus, stats


def write_examples(path: Path, examples: Iterable[Example]) -> None:
    """Write gzipped TSV lines with a zero mtime, so rebuilds are byte-identical."""
    with gzip.GzipFile(path, "wb", mtime=0) as out:
        for e in examples:
            out.write(f"{e.id}\t{e.group}\t{' '.join(e.labels)}\t{e.text}\n".encode())


def label_counts(examples: Iterable[Example]) -> list[tuple[str, int]]:
    """Return (label, count) pairs, most frequent first, ties by name."""
    counts = collections.Counter(label for e in examples for label in e.labels)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def write_labels(path: Path, examples: list[Example]) -> None:
    path.write_text("".join(f"{label}\t{count}\n" for label, count in label_counts(examples)))


def readme(train: list[Example], valid: list[Example], corpus: list[Example], stats: Stats, fetched: str,
           index_date: str) -> str:
    """Return data/README.md: provenance, counts, format and how to rebuild."""
    examples = train + valid
    n_labels = sum(len(e.labels) for e in examples)
    odd = ", ".join(f"`{t}`" for t in sorted(stats.unusual_tags)) or "none in this build"
    return f"""# Debian debtags dataset

Multi-label text classification data: each Debian package's English description,
labelled with the package's [debtags](https://wiki.debian.org/Debtags) spelled as
hashtags (`#label` is recognised by `text_cleaning.extract_hashtags`).

## Provenance

- Source: Debian 12 "bookworm", component `main`, architecture `amd64`: the `Packages`
  index (package, source, summary, `Description-md5`, `Tag`) and `Translation-en`
  (long descriptions, joined by `Description-md5`), downloaded with apt from the
  machine's configured Debian mirror.
- Fetched: {fetched}; index `Date:` (from the suite's Release file): {index_date}.
- Packages in the index: {stats.packages}; without any debtag: {stats.no_tags};
  with only `...TODO` tags: {stats.only_todo_tags}.
- `...TODO` tags dropped (placeholders such as `role::TODO`, `devel::lang:TODO`; all
  upper case): {stats.todo_tags_dropped}.
- Exact duplicate descriptions dropped (first package kept): {stats.duplicates_dropped},
  of which {stats.duplicates_with_other_labels} had a different label set.
- Tagged packages without a translation (text is the summary only): {stats.summary_only}.
- Examples: {len(examples)} ({len(train)} train, {len(valid)} valid), from
  {len({e.group for e in train})} train and {len({e.group for e in valid})} valid source packages.
- Labels: {len(label_counts(examples))} ({len(label_counts(train))} occur in train,
  {len(label_counts(valid))} in valid); {n_labels / len(examples):.2f} labels per package on average.
- Debtags with characters other than letters, digits, `-`, `:` and `+` (mapped to `-`): {odd}.
- Pretraining corpus (`pretrain.tsv.gz`): {len(corpus)} further descriptions
  ({sum(len(clean_text(e.text).split()) for e in corpus)} tokens after `clean_text`), from all packages of the index,
  with or without debtags, except: {stats.corpus_validation_source} packages of a validation source (whether
  tagged or not), {stats.corpus_like_validation_text} texts that clean like a validation text, and
  {stats.corpus_like_training_text} texts that clean like a training text or an earlier corpus text.

## Format

`train.tsv.gz` and `valid.tsv.gz`: gzip (mtime 0), UTF-8, one package per line:

    package<TAB>source<TAB>label1 label2 ...<TAB>text

- `source`: the Debian source package. The split is by source (all binaries of one
  source are on the same side): a source goes to valid when the first 8 bytes of
  `sha256("<seed>:<source>")` are below 20% of 2^64 (seed 0).
- labels: sorted, space-separated; a debtag becomes a label by lower-casing it and
  turning `::` and `:` into `-` and `+` into `p` (`implemented-in::c++` ->
  `implemented-in-cpp`, `works-with::audio` -> `works-with-audio`).
- `text`: the raw summary line followed by the long description, with the Debian
  format undone (leading space of continuation lines removed, ` .` lines as paragraph
  breaks), URLs (anything with `://`) removed, and then all whitespace, line and paragraph
  breaks included, collapsed to single spaces. No other cleaning: training applies
  `text_cleaning.clean_text`.

`pretrain.tsv.gz`: the same format with an empty labels field: the descriptions the
splits do not hold, for word-vector pretraining only (`--pretrain-set corpus=data/pretrain.tsv.gz`
adds them to the training split's texts; the `default` preset no longer pretrains). Nothing of the validation split is in it:
no package of a validation source (by the hash above, so untagged packages of those sources
are out too) and no text that cleans to the same line as a validation text.

Read them with `training.dataset.read_examples(path)`.

`labels.txt`: `label<TAB>count` over both files, most frequent first.

## Rebuild

    make data
    # which runs:
    python -m training.build_dataset --out data/

This fetches the current index with apt into a temporary directory (the machine's
own apt lists are untouched); `--mirror URI` overrides the mirror read from
`/etc/apt/sources.list{{,.d/}}`. `--packages FILE --translations FILE` build from
already-downloaded, decompressed index files instead. The same index gives
byte-identical `.tsv.gz` files (for `pretrain.tsv.gz`: with the same `clean_text`).
"""


def source_entries(etc: Path) -> Iterator[tuple[str, list[str]]]:
    """Yield (URI, suites) of the `deb` entries in apt's sources, in apt's reading order."""
    parts = sorted((etc / "sources.list.d").glob("*"))
    for path in [etc / "sources.list", *parts]:
        if not path.is_file():
            continue
        lines = [line for line in path.read_text().split("\n") if not line.lstrip().startswith("#")]
        if path.suffix == ".sources":
            for stanza in parse_stanzas("\n".join(lines)):
                if "deb" in stanza.get("Types", "").split() and stanza.get("Enabled", "yes") != "no":
                    yield stanza["URIs"].split()[0], stanza.get("Suites", "").split()
        elif path.name == "sources.list" or path.suffix == ".list":
            for line in lines:
                match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
                if match:
                    yield match[1], [match[2]]


def configured_mirror(etc: Path = Path("/etc/apt")) -> str:
    """Return the URI of the first apt source entry for the bookworm suite."""
    for uri, suites in source_entries(etc):
        if SUITE in suites:
            return uri
    raise SystemExit(f"no '{SUITE}' entry in {etc}/sources.list*; pass --mirror")


def cat_file(path: Path) -> str:
    """Decompress an apt list file with apt-helper."""
    return subprocess.run([APT_HELPER, "cat-file", str(path)], check=True, capture_output=True).stdout.decode()


def only_file(directory: Path, pattern: str) -> Path:
    matches = sorted(directory.glob(pattern))
    if len(matches) != 1:
        raise SystemExit(f"expected one {pattern} in {directory}, found {[m.name for m in matches]}")
    return matches[0]


def fetch_index(mirror: str) -> tuple[str, str, str]:
    """Download Packages and Translation-en with apt into a private directory.

    Returns (packages_text, translations_text, index_date).
    """
    with tempfile.TemporaryDirectory(prefix="debtags-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # apt downloads as the unprivileged _apt user
        lists, cache = work / "lists", work / "cache"
        (lists / "partial").mkdir(parents=True)
        cache.mkdir()
        sources, conf = work / "sources.list", work / "apt.conf"
        sources.write_text(f"deb [arch=amd64 signed-by={KEYRING}] {mirror} {SUITE} main\n")
        conf.write_text(PRIVATE_APT_CONF)
        options = {
            "Dir::State::Lists": lists,
            "Dir::Cache": cache,
            "Dir::Etc::SourceList": sources,
            "Dir::Etc::SourceParts": "/dev/null",
            "Acquire::Languages": "en",
            "APT::Architecture": "amd64",
            "APT::Architectures": "amd64",
        }
        command = ["apt-get", "update", "-c", str(conf)]
        for name, value in options.items():
            command += ["-o", f"{name}={value}"]
        log(" ".join(command))
        subprocess.run(command, check=True, stdout=sys.stderr)
        release = cat_file(only_file(lists, "*Release"))
        date = re.search(r"^Date: (.+)$", release, re.M)
        return (
            cat_file(only_file(lists, "*_main_binary-amd64_Packages*")),
            cat_file(only_file(lists, "*_main_i18n_Translation-en*")),
            date[1] if date else "unknown",
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--mirror", help="Debian mirror URI (default: from apt's sources)")
    parser.add_argument("--packages", type=Path, help="decompressed Packages file (skips the download)")
    parser.add_argument("--translations", type=Path, help="decompressed Translation-en file")
    parser.add_argument("--seed", type=int, default=0, help="salt of the train/valid split")
    args = parser.parse_args(argv)
    if (args.packages is None) != (args.translations is None):
        parser.error("--packages and --translations go together")

    if args.packages:
        packages_text, translations_text = args.packages.read_text(), args.translations.read_text()
        fetched, index_date = "not fetched (built from local index files)", "unknown"
    else:
        packages_text, translations_text, index_date = fetch_index(args.mirror or configured_mirror())
        fetched = datetime.datetime.now(datetime.timezone.utc).date().isoformat()

    train, valid, corpus, stats = build(packages_text, translations_text, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_examples(args.out / "train.tsv.gz", train)
    write_examples(args.out / "valid.tsv.gz", valid)
    write_examples(args.out / "pretrain.tsv.gz", corpus)
    write_labels(args.out / "labels.txt", train + valid)
    (args.out / "README.md").write_text(readme(train, valid, corpus, stats, fetched, index_date))
    log(f"wrote {args.out}/train.tsv.gz, valid.tsv.gz, pretrain.tsv.gz, labels.txt, README.md")


if __name__ == "__main__":
    main()
