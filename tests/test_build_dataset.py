"""Tests of the dataset builder (on small fixtures) and of the committed data."""

import gzip
from pathlib import Path

import pytest

from text_cleaning import extract_hashtags
from training import build_dataset as bd
from training.dataset import Example, read_examples

FIXTURES = Path(__file__).parent / "fixtures" / "debian"
DATA = Path(__file__).parent.parent / "data"
SPLITS = ["train.tsv.gz", "valid.tsv.gz"]


@pytest.fixture(scope="module")
def packages():
    return {p.name: p for p in bd.parse_packages((FIXTURES / "Packages").read_text())}


@pytest.fixture(scope="module")
def translations():
    return bd.parse_translations((FIXTURES / "Translation-en").read_text())


@pytest.fixture(scope="module")
def built():
    return bd.build((FIXTURES / "Packages").read_text(), (FIXTURES / "Translation-en").read_text(), seed=0)


def build_into(out: Path) -> Path:
    bd.main(["--out", str(out), "--packages", str(FIXTURES / "Packages"), "--translations", str(FIXTURES / "Translation-en")])
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
    train, valid, stats = built
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
    train, valid, stats = built
    delta = next(e for e in train + valid if e.id == "delta")
    assert delta.text == "Delta chess engine"
    assert stats.summary_only == 1


def test_exact_duplicates_removed(built):
    train, valid, stats = built
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
    train, valid, _ = built
    sides = {e.id: e in valid for e in train + valid}
    assert sides["alpha"] == sides["alpha-data"]


def test_output_readable_and_byte_identical(tmp_path):
    first = build_into(tmp_path / "a")
    second = build_into(tmp_path / "b")
    for name in ["train.tsv.gz", "valid.tsv.gz", "labels.txt"]:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    for name in SPLITS:
        assert (first / name).read_bytes()[4:8] == bytes(4), "gzip mtime must be 0"
    examples = list(read_examples(first / "train.tsv.gz")) + list(read_examples(first / "valid.tsv.gz"))
    epsilon = next(e for e in examples if e.id == "epsilon")
    assert epsilon == Example("epsilon", "epsilon", ["role-shared-lib"], "Epsilon shared library Epsilon provides tab-separated helpers.")
    assert (first / "labels.txt").read_text().split("\n")[0] == "role-program\t2"
    assert "Exact duplicate descriptions dropped (first package kept): 2" in (first / "README.md").read_text()


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
    for name in [*SPLITS, "labels.txt", "README.md"]:
        assert (DATA / name).is_file(), name
    for name in SPLITS:
        assert (DATA / name).read_bytes()[4:8] == bytes(4), "gzip mtime must be 0"


def test_committed_lines_have_four_fields():
    for name in SPLITS:
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
