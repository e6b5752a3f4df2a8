"""Tests of the dataset builder (on small fixtures) and of the committed data."""

import gzip
from pathlib import Path

import pytest

from support import FIXTURES, ROOT
from text_cleaning import clean_text, extract_hashtags
from training import build_dataset as bd
from training.dataset import Example, read_examples

DEBIAN = FIXTURES / "debian"
DATA = ROOT / "data"
SPLITS = ["train.tsv.gz", "valid.tsv.gz"]
CORPUS = "pretrain.tsv.gz"


@pytest.fixture(scope="module")
def packages():
    return {p.name: p for p in bd.parse_packages((DEBIAN / "Packages").read_text())}


@pytest.fixture(scope="module")
def translations():
    return bd.parse_translations((DEBIAN / "Translation-en").read_text())


@pytest.fixture(scope="module")
def built():
    return bd.build((DEBIAN / "Packages").read_text(), (DEBIAN / "Translation-en").read_text(), seed=0)


def build_into(out: Path) -> Path:
    bd.main(["--out", str(out), "--packages", str(DEBIAN / "Packages"), "--translations", str(DEBIAN / "Translation-en")])
    return out


def test_parse_multiline_tag_field(packages):
    assert packages["alpha"].tags == (
        "devel::lang:c++",
        "implemented-in::c++",
        "interface::commandline",
        "role::program",
        "uitoolkit::TODO",
        "works-with::audio",
    )


def test_parse_source_with_version_and_missing_source(packages):
    assert packages["alpha-data"].source == "alpha"
    assert packages["beta"].source == "beta-src"
    assert packages["alpha"].source == "alpha"
    assert packages["gamma"].tags == ()
    assert packages["alpha"].summary == "Alpha sound editor"
    assert packages["alpha"].md5 == "0a" * 16


def test_long_description_joined_by_md5(translations):
    assert translations["1b" * 16] == " This package contains the data files of Alpha."
    assert "4e" * 16 not in translations


def test_long_description_paragraphs():
    raw = " First line\n second line.\n .\n Next paragraph:\n   * verbatim item"
    assert bd.long_description_to_text(raw) == "First line\nsecond line.\n\nNext paragraph:\n  * verbatim item"


def test_document_text_is_one_line(translations):
    text = bd.document_text("Alpha sound editor", translations["0a" * 16])
    assert text == "Alpha sound editor Alpha edits sound files of many kinds. Features: * cut and paste * filters"


def test_document_text_has_no_urls():
    raw = " See https://example.invalid/docs or\n ftp://mirror.invalid/pub/x.tar.gz.\n .\n Also (http://a.invalid)"
    assert bd.document_text("Beta tool", raw) == "Beta tool See or Also"


@pytest.mark.parametrize(
    "tag, label",
    [
        ("implemented-in::c++", "implemented-in-cpp"),
        ("works-with::audio", "works-with-audio"),
        ("devel::lang:c++", "devel-lang-cpp"),
        ("game::board:chess", "game-board-chess"),
        ("Suite::GNOME", "suite-gnome"),
        ("made-of::x.y", "made-of-x-y"),
    ],
)
def test_tag_to_label(tag, label):
    assert bd.tag_to_label(tag) == label


@pytest.mark.parametrize("tag", ["x", "a::", "::b"])
def test_tag_to_label_rejects_unusable_labels(tag):
    with pytest.raises(ValueError):
        bd.tag_to_label(tag)


def test_todo_tags_and_tagless_packages_dropped(built):
    train, valid, _, stats = built
    by_name = {e.id: e for e in train + valid}
    assert "beta" not in by_name and "gamma" not in by_name
    assert by_name["alpha"].labels == [
        "devel-lang-cpp",
        "implemented-in-cpp",
        "interface-commandline",
        "role-program",
        "works-with-audio",
    ]
    assert by_name["alpha-data"].labels == ["role-app-data"]
    assert (stats.packages, stats.no_tags, stats.only_todo_tags, stats.todo_tags_dropped) == (8, 1, 1, 5)


def test_summary_only_fallback(built):
    train, valid, _, stats = built
    delta = next(e for e in train + valid if e.id == "delta")
    assert delta.text == "Delta chess engine"
    assert stats.summary_only == 1


def test_exact_duplicates_removed(built):
    train, valid, _, stats = built
    names = sorted(e.id for e in train + valid)
    assert names == ["alpha", "alpha-data", "delta", "epsilon"]
    assert (stats.duplicates_dropped, stats.duplicates_with_other_labels) == (2, 1)


def test_split_keeps_sources_together_and_is_deterministic():
    examples = [Example(f"{s}-{b}", f"src{s}", ["role-program"], f"text {s} {b}") for s in range(500) for b in range(2)]
    train, valid = bd.split_by_source(examples, seed=0)
    assert not {e.group for e in train} & {e.group for e in valid}
    assert 0.15 < len(valid) / len(examples) < 0.25
    assert bd.split_by_source(examples, seed=0) == (train, valid)
    assert bd.split_by_source(examples, seed=1) != (train, valid)


def test_fixture_binaries_of_one_source_on_same_side(built):
    train, valid, _, _ = built
    sides = {e.id: e in valid for e in train + valid}
    assert sides["alpha"] == sides["alpha-data"]


def test_output_readable_and_byte_identical(tmp_path):
    first = build_into(tmp_path / "a")
    second = build_into(tmp_path / "b")
    for name in [*SPLITS, CORPUS, "labels.txt"]:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    for name in [*SPLITS, CORPUS]:
        assert (first / name).read_bytes()[4:8] == bytes(4), "gzip mtime must be 0"
    examples = list(read_examples(first / "train.tsv.gz")) + list(read_examples(first / "valid.tsv.gz"))
    epsilon = next(e for e in examples if e.id == "epsilon")
    assert epsilon == Example("epsilon", "epsilon", ["role-shared-lib"], "Epsilon shared library Epsilon provides tab-separated helpers.")
    assert (first / "labels.txt").read_text().split("\n")[0] == "role-program\t2"
    assert "Exact duplicate descriptions dropped (first package kept): 2" in (first / "README.md").read_text()


def test_fixture_corpus_has_the_untagged_and_todo_only_packages(built):
    *_, corpus, stats = built
    assert corpus == [
        Example("beta", "beta-src", [], "Beta placeholder tool Beta does nothing useful yet."),
        Example("gamma", "gamma", [], "Gamma tool without debtags"),
    ]
    # delta and epsilon-twin have validation sources; alpha, alpha-data and epsilon are training
    # examples, and epsilon-compat repeats epsilon's text.
    assert (stats.corpus_validation_source, stats.corpus_like_validation_text, stats.corpus_like_training_text) == (2, 0, 4)


def stanza(name: str, source: str, summary: str, tags: str = "") -> str:
    return f"Package: {name}\nSource: {source}\nDescription: {summary}\n" + (f"Tag: {tags}\n" if tags else "") + "\n"


def test_corpus_leaves_out_validation_sources_and_texts():
    assert bd.is_validation_source("theta", 0) and bd.is_validation_source("rho", 0)
    assert not bd.is_validation_source("iota", 0) and not bd.is_validation_source("kappa", 0)
    packages = "".join([
        stanza("theta", "theta", "Theta image viewer", "role::program"),  # valid
        stanza("theta-doc", "theta", "Documentation for a photo tool"),  # untagged, validation source
        stanza("rho", "rho", "Rho unrelated untagged tool"),  # untagged, validation source
        stanza("iota-viewer", "iota", "THETA image-viewer!"),  # cleans like the validation text
        stanza("iota", "iota", "Iota music player", "role::program"),  # train
        stanza("iota-copy", "iota", "Iota: music player"),  # cleans like the training text
        stanza("kappa", "kappa", "Kappa chess clock"),  # the corpus
        stanza("kappa-twin", "kappa", "kappa chess clock."),  # cleans like an earlier corpus text
    ])
    train, valid, corpus, stats = bd.build(packages, "", seed=0)
    assert [e.id for e in valid] == ["theta"] and [e.id for e in train] == ["iota"]
    assert corpus == [Example("kappa", "kappa", [], "Kappa chess clock")]
    assert (stats.corpus_validation_source, stats.corpus_like_validation_text, stats.corpus_like_training_text) == (3, 1, 3)


def test_configured_mirror(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://other.example/debian trixie main\n"
    )
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    assert bd.configured_mirror(tmp_path) == "http://mirror.example/debian"


# The committed data.


@pytest.fixture(scope="module")
def committed():
    return {name: list(read_examples(DATA / name)) for name in SPLITS}


def test_committed_files_exist():
    for name in [*SPLITS, CORPUS, "labels.txt", "README.md"]:
        assert (DATA / name).is_file(), name
    for name in [*SPLITS, CORPUS]:
        assert (DATA / name).read_bytes()[4:8] == bytes(4), "gzip mtime must be 0"


def test_committed_lines_have_four_fields():
    for name in [*SPLITS, CORPUS]:
        with gzip.open(DATA / name, "rt", encoding="utf-8", newline="\n") as lines:
            for line in lines:
                assert line.endswith("\n") and line.count("\t") == 3 and "\r" not in line, line


def test_committed_examples_sane(committed):
    for examples in committed.values():
        assert len(examples) > 1000
        for e in examples:
            assert e.labels and e.text and e.text == e.text.strip()


def test_committed_labels_round_trip_as_hashtags():
    labels = [line.split("\t")[0] for line in (DATA / "labels.txt").read_text().splitlines()]
    assert len(labels) > 100
    for label in labels:
        assert extract_hashtags("#" + label) == ["#" + label]


def test_committed_labels_file_matches_data(committed):
    counts = bd.label_counts(committed["train.tsv.gz"] + committed["valid.tsv.gz"])
    assert (DATA / "labels.txt").read_text() == "".join(f"{label}\t{n}\n" for label, n in counts)


def test_committed_split_by_source(committed):
    train_sources = {e.group for e in committed["train.tsv.gz"]}
    valid_sources = {e.group for e in committed["valid.tsv.gz"]}
    assert not train_sources & valid_sources
    assert 0.15 < len(committed["valid.tsv.gz"]) / sum(map(len, committed.values())) < 0.25


def test_committed_texts_unique(committed):
    texts = [e.text for examples in committed.values() for e in examples]
    assert len(texts) == len(set(texts))


def test_committed_corpus_holds_nothing_of_the_validation_split(committed):
    corpus = list(read_examples(DATA / CORPUS))
    assert len(corpus) > 20000
    valid = committed["valid.tsv.gz"]
    valid_sources = {e.group for e in valid}
    valid_lines = {clean_text(e.text) for e in valid}
    train_lines = {clean_text(e.text) for e in committed["train.tsv.gz"]}
    lines = [clean_text(e.text) for e in corpus]
    assert all(e.labels == [] and e.text and "://" not in e.text for e in corpus)
    assert not {e.group for e in corpus} & valid_sources
    assert not any(bd.is_validation_source(e.group, seed=0) for e in corpus)
    assert not set(lines) & valid_lines
    assert not set(lines) & train_lines and len(set(lines)) == len(lines)
