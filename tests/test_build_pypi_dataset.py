"""The PyPI-summary dataset builder, on a tiny name list written here, run as a user runs it."""

import subprocess
import sys
from pathlib import Path

from training import build_pypi_dataset as bp
from training.dataset import read_dataset

ROOT = Path(__file__).resolve().parent.parent
SUMMARIES = {
    "pkg-a": "A Python library for HTTP requests",
    "pkg-b": "Python HTTP client library",
    "pkg-c": "A fast JSON <b>library</b> for Python",
    "pkg-d": "python library",  # nothing left once its tags are taken out
    "pkg-e": "",
    "pkg-f": "Библиотека для Python",  # not English-ish
    "pkg-g": "A python library for HTTP requests!",  # cleans to pkg-a's summary
    "pkg-h": "Tools 2024 and 3.11 for the web",  # no tag word
    "pkg-i": "Python client",  # its text, "client", repeats pkg-b's
    "pkg-j": "Python HTTP",
}
# Summaries counted: a b c d h i j. python 6, library 4, http 3; then client 2, the rest 1.


def build(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    tsv = tmp_path / "pypi.tsv"
    tsv.write_text("name\tversion\tmonth\trank\tsummary\n"
                   + "".join(f"{name}\t1.0\t2024-01\t\t{summary}\n" for name, summary in SUMMARIES.items()))
    return subprocess.run([sys.executable, "-m", "training.build_pypi_dataset", "--pypi-tsv", str(tsv), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_rows_are_tagged_with_the_most_frequent_words_taken_out_of_their_text(tmp_path):
    out = tmp_path / "pypi.csv"
    result = build(tmp_path, "--rows", "3", "--tags", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "7 usable summaries, 3 tags, 3 rows with tags and text; wrote 3 rows" in result.stderr
    assert out.read_text().splitlines() == [
        "id,text,tags",
        "pkg-a,a for requests,python library http",
        "pkg-b,client,python http library",
        "pkg-c,a fast json for,library python",
    ]
    dataset = read_dataset(out)
    assert dataset.problems == []
    assert [(e.id, e.labels) for e in dataset.examples] == [
        ("pkg-a", ["python", "library", "http"]), ("pkg-b", ["python", "http", "library"]),
        ("pkg-c", ["library", "python"])]


def test_the_sample_is_seeded_and_cannot_ask_for_more_rows_than_there_are(tmp_path):
    first, again, every = tmp_path / "1.csv", tmp_path / "2.csv", tmp_path / "all.csv"
    for out, rows in ((first, "2"), (again, "2"), (every, "3")):
        assert build(tmp_path, "--rows", rows, "--tags", "3", "--seed", "7", "--out", str(out)).returncode == 0
    assert first.read_text() == again.read_text()
    header, *rows = first.read_text().splitlines()
    all_rows = every.read_text().splitlines()
    assert header == all_rows[0] and len(rows) == 2 and rows == [row for row in all_rows[1:] if row in rows]
    refused = build(tmp_path, "--rows", "4", "--tags", "3", "--out", str(tmp_path / "4.csv"))
    assert refused.returncode == 2 and "error: --rows 4: only 3 rows are left after the filters" in refused.stderr
    assert not (tmp_path / "4.csv").exists()


def test_content_words_and_ties():
    assert [w for w in ["a", "x", "2024", "3.11", "the", "c++", "node.js", "http"] if bp.is_content_word(w)] == [
        "c++", "node.js", "http"]
    assert bp.frequent_words([("p", ["zeta", "alpha", "zeta"]), ("q", ["beta"])], 1) == {"alpha"}
    assert bp.is_english_ish("Ein schnelles Paket") and not bp.is_english_ish("日本語のパッケージ tool")


def test_a_list_without_a_summary_column_is_refused(tmp_path):
    tsv = tmp_path / "names.tsv"
    tsv.write_text("name\tversion\npkg\t1.0\n")
    result = subprocess.run([sys.executable, "-m", "training.build_pypi_dataset", "--pypi-tsv", str(tsv),
                             "--rows", "1", "--out", str(tmp_path / "x.csv")], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "no 'summary' column in the header ['name', 'version']" in result.stderr
    assert "Traceback" not in result.stderr
