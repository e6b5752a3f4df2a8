"""A site's own tagged posts, end to end: every input format trained for real, the model's labels
read back as hashtags, served by `make serve MODEL=...` over real HTTP, packaged by
`make package MODEL=...`; and every way an export can be wrong, reported before anything is trained.
"""

import gzip
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support import FIXTURES, ROOT, ZIP_NAME, cli_env, make_service, offline_server, request
from text_cleaning import extract_hashtags, tag_problem
from training import evaluate as ev
from training import prepare, report
from training.dataset import Columns, DatasetError, read_dataset
from training.model_file import read_model

POSTS = FIXTURES / "posts"
FORMATS = {"posts.csv": "csv", "posts.jsonl": "jsonl", "posts.txt": "fasttext", "posts.tsv.gz": "tsv"}
SITE_TAGS = {"c++", "c#", ".net", "node.js", "go", "r", "machine-learning", "python", "javascript", "sql"}
# Models that `make package` and `make serve` ship must sit inside the project: build/ is ignored by git.
MODELS = ROOT / "build" / "test-own-data"


def train(data: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -m training.train --train DATA --output OUTPUT ...`, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "training.train", "--train", str(data), "--output", str(output), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def trained_ok(data: Path, output: Path, *extra: str) -> str:
    result = train(data, output, *extra)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stderr


def refused(data: Path, output: Path, *extra: str) -> str:
    """Training that must stop with an error and write nothing; returns what it printed."""
    result = train(data, output, *extra)
    assert result.returncode != 0, f"training accepted {data}:\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert not output.exists() and not output.with_suffix(".metrics.json").exists()
    return result.stderr


@pytest.fixture(scope="module")
def models(fasttext_binary) -> dict:
    """One model per sample export format, trained by the real pipeline."""
    MODELS.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, fmt in FORMATS.items():
        model = MODELS / f"{fmt}.bin"
        out[fmt] = {"model": model, "log": trained_ok(POSTS / name, model),
                    "metrics": json.loads(model.with_suffix(".metrics.json").read_text())}
    return out


def test_sample_exports_are_what_the_generator_writes():
    sys.path.insert(0, str(POSTS))
    try:
        import generate
    finally:
        sys.path.remove(str(POSTS))
    files = generate.files()
    assert sorted(files) == sorted(FORMATS)
    for name, content in files.items():
        on_disk = (POSTS / name).read_bytes()
        if name.endswith(".gz"):
            on_disk, content = gzip.decompress(on_disk), gzip.decompress(content)
        assert on_disk == content, f"{name} differs from generate.py's output: rerun it"


@pytest.mark.parametrize("name, fmt", FORMATS.items())
def test_every_format_reads_to_the_same_posts(name, fmt):
    dataset = read_dataset(POSTS / name)
    assert dataset.format == fmt
    assert len(dataset.examples) == 400
    reference = read_dataset(POSTS / "posts.jsonl").examples
    assert [e.labels for e in dataset.examples] == [e.labels for e in reference]
    assert [e.text for e in dataset.examples] == [e.text for e in reference]
    assert {label for e in dataset.examples for label in e.labels} == SITE_TAGS


@pytest.mark.slow  # trains a model end to end
@pytest.mark.parametrize("fmt", FORMATS.values())
def test_each_format_trains_a_model_whose_labels_are_the_sites_hashtags(models, fmt, fasttext_binary):
    trained = models[fmt]
    labels = read_model(trained["model"]).labels
    assert set(labels) == SITE_TAGS
    for label in labels:  # the invariant, for every label of every model the pipeline writes
        assert tag_problem(label) is None, label
        assert extract_hashtags(f"Pasted back: #{label}.") == ["#" + label]
    metrics = trained["metrics"]
    fasttext = next(c for c in metrics["candidates"] if c["learner"] == "fasttext")
    assert fasttext["params"]["preset"] == "auto" and metrics["model_bytes"] <= 10 * 2**20
    assert metrics["p_at_1"] >= 0.8 and metrics["valid_examples"] > 40
    assert metrics["data"]["valid"] is None and metrics["data"]["split_seed"] == 1
    for suffix in (".report.md", ".pr.png"):
        assert trained["model"].with_suffix(suffix).stat().st_size > 0
    log = trained["log"]
    assert "fastText preset 'auto' for this data: dim 25, epoch 50, bucket 16,384" in log
    assert "no --valid: kept" in log and "with seed 1 (--split-seed)" in log
    assert "most frequent: #machine-learning" in log and "least frequent: " in log
    assert "WARNING" not in log


@pytest.mark.slow  # trains a model end to end
def test_split_keeps_groups_together_and_is_reproducible(models):
    csv_notes = models["csv"]["metrics"]["data_notes"]
    assert any("split by group with seed 1" in note for note in csv_notes)
    assert any("split by row with seed 1" in note for note in models["fasttext"]["metrics"]["data_notes"])
    again = MODELS / "csv-again.bin"
    trained_ok(POSTS / "posts.csv", again)
    assert json.loads(again.with_suffix(".metrics.json").read_text())["data_notes"] == csv_notes


def test_dropped_rows_each_get_one_summary_line(tmp_path):
    rows = [
        "text,tags",
        '"How to use std::vector in C++?","c++"',
        '"!!! ???","c++"',  # no words
        '"A post with no tags",""',
        '"How to use std::vector in C++?","c++"',  # a repeat
        '"Rare tag post about Go","go"',
    ] + [f'"C++ post number {i} about templates","c++, #C#"' for i in range(8)]
    data, valid = tmp_path / "posts.csv", tmp_path / "valid.csv"
    data.write_text("\n".join(rows) + "\n")
    valid.write_text("text,tags\n" + "".join(f'"Templates in C++ and C# number {i}","c++ c#"\n' for i in range(4)))
    log = train(data, tmp_path / "m.bin", "--valid", str(valid), "--min-tag-count", "3").stderr
    assert "dropped 1 training rows whose text has no words (row id or line: 3)" in log
    assert "dropped 1 training rows with no tags (row id or line: 4)" in log
    assert "dropped 1 training rows whose text is a duplicate of one earlier (the first is kept) " \
           "(row id or line: 5)" in log
    assert "dropped 1 tags seen fewer than 3 times in training (--min-tag-count): #go" in log


@pytest.mark.slow  # trains a model end to end
def test_validation_tags_unknown_to_training_are_named(tmp_path, models):
    valid = tmp_path / "valid.jsonl"
    valid.write_text(json.dumps({"text": "Goroutines and channels in Go", "hashtags": ["go", "#haskell"]}) + "\n"
                     + json.dumps({"text": "Monads in Haskell", "hashtags": ["haskell"]}) + "\n")
    log = trained_ok(POSTS / "posts.csv", tmp_path / "m.bin", "--valid", str(valid))
    assert "1 validation tags that no training row has are not scored: #haskell" in log
    assert "dropped 1 validation rows left with no tag the training rows have" in log


# --- every bad row named before anything is trained ----------------------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", "", "empty.csv: the file is empty"),
        ("blank.jsonl", "\n \n", "blank.jsonl: the file is empty"),
        ("header-only.csv", "text,tags\n", "header-only.csv: no examples in the file (read as csv)"),
        ("no-header.csv", '"How do I parse JSON in Go?","go"\n',
         "no-header.csv:1: no text column named 'text' in the header"),
        ("other-names.csv", "body,labels\nA post,go\n", "no text column named 'text' in the header ['body', 'labels']"),
        ("missing-tags.csv", "text,title\nA post,Title\n", "no tags column named 'hashtags' or 'tags'"),
        ("ragged.csv", "text,tags\nHow to use C++, templates,c++\n",
         "ragged.csv:2: 3 fields where the header has 2; quote a field that holds a comma"),
        ("bad-quote.csv", 'text,tags\n"unterminated,go\n', "bad-quote.csv:2: not valid CSV"),
        ("bad.jsonl", '{"text": "ok", "hashtags": ["go"]}\n{"text": "broken", \n',
         "bad.jsonl:2: not a JSON object: Expecting property name enclosed in double quotes"),
        ("list.jsonl", '["go", "text"]\n', "list.jsonl:1: not a JSON object such as"),
        ("no-text.jsonl", '{"body": "x", "hashtags": ["go"]}\n', "no-text.jsonl:1: no 'text' key"),
        ("no-tags.jsonl", '{"text": "x"}\n', "no-tags.jsonl:1: no 'hashtags or tags' key"),
        ("number.jsonl", '{"text": 42, "hashtags": ["go"]}\n', "number.jsonl:1: the text must be a string, not 42"),
        ("null.jsonl", '{"text": null, "hashtags": ["go"]}\n', "null.jsonl:1: the text must be a string, not null"),
        ("apostrophe.csv", "text,tags\nA post,o'reilly\n", "apostrophe.csv:2: tag \"o'reilly\" cannot be a hashtag"),
        ("tag-type.jsonl", '{"text": "x", "hashtags": [1, 2]}\n',
         "tag-type.jsonl:1: the tags must be a string or a list of strings, not [1, 2]"),
        ("short.tsv", "id\tgroup\tgo\n", "short.tsv:1: 3 tab-separated fields; a line is id<TAB>group<TAB>tags<TAB>text"),
        ("latin1.csv", "text,tags\nCaf\xe9 post,go\n", "latin1.csv:2: not UTF-8 text"),
        ("unknown.dat", "just some words\n", "cannot tell the format from the name or the first line"),
    ],
)
def test_bad_exports_are_refused_with_file_line_and_reason(tmp_path, name, content, message):
    data = tmp_path / name
    data.write_bytes(content.encode("latin-1") if name.startswith("latin1") else content.encode())
    assert message in refused(data, tmp_path / "m.bin")


def test_every_bad_row_is_listed_not_only_the_first(tmp_path):
    lines = ['{"text": "fine", "hashtags": ["go"]}'] + ["not json"] * 30
    data = tmp_path / "many.jsonl"
    data.write_text("\n".join(lines) + "\n")
    log = refused(data, tmp_path / "m.bin")
    assert "many.jsonl: 30 of 31 rows cannot be read (read as jsonl; --format names another), " \
           "nothing was trained" in log
    assert "many.jsonl:2: not a JSON object" in log and "many.jsonl:21: not a JSON object" in log
    assert "... and 10 more" in log


# --- a messy export trains: what cannot be used is dropped, one line a rule; --strict refuses it ------------

MESSY_ROWS = [  # the tags of a real export of package summaries that cannot be hashtags, and other trouble
    'x1,An HTTP/2 server with push,"http, HTTP/2"',  # line 2: kept, as #http
    "x2,Image generation with DALL\u00b7E,DALL\u00b7E",  # line 3: no tag left
    "x3,Object mapper for databases,orm;O/RM",
    'x4,Sign mail with S/MIME,"crypto s/mime"',
    "x5,MySQL driver for .NET,connector/net",  # line 6: no tag left
    "x6,,http",  # line 7: no text
    'x7,"A post with no tags",',  # line 8
    "x8,Unquoted, comma row,http",  # line 9: 4 fields
]
TOPICS = [("http", "HTTP client {i} sending requests with retries"), ("orm", "Database mapper {i} with sessions"),
          ("crypto", "Encryption toolkit {i} with keys and ciphers")]


def messy_export(tmp_path: Path) -> Path:
    data = tmp_path / "export.csv"
    good = [f"p{i},{text.format(i=i)},{tag}" for i in range(60) for tag, text in [TOPICS[i % 3]]]
    data.write_text("id,text,tags\n" + "\n".join(MESSY_ROWS + good) + "\n", encoding="utf-8")
    return data


MESSY_NOTES = [
    "dropped 5 tags that cannot be hashtags, 5 times in 5 training rows, which keep their other tags: "
    "'HTTP/2', 'DALL\u00b7E', 'O/RM', 's/mime', 'connector/net' (lines 2, 3, 4, 5, 6; ids x1, x2, x3, x4, x5); "
    "--strict refuses the file instead",
    "dropped 2 training rows whose every tag cannot be a hashtag (lines 3, 6; ids x2, x5)",
    "dropped 1 training rows with another number of fields than the header (line 9): line 9: 4 fields where "
    "the header has 3; quote a field that holds a comma (\"a, b\")",
    "dropped 1 training rows whose text has no words (row id or line: x6)",
    "dropped 1 training rows with no tags (row id or line: x7)",
]


def test_a_messy_export_trains_and_says_what_it_dropped(tmp_path, fasttext_binary):
    model = tmp_path / "messy.bin"
    log = trained_ok(messy_export(tmp_path), model)
    metrics = json.loads(model.with_suffix(".metrics.json").read_text())
    notes = metrics["data_notes"]
    assert notes[0] == f"read 68 rows of {tmp_path / 'export.csv'} as csv"
    assert notes[1:6] == MESSY_NOTES
    for note in MESSY_NOTES:
        assert note in log
    assert metrics["train_examples"] + metrics["valid_examples"] == 63  # 60, and x1, x3, x4 with their other tags
    assert set(read_model(model).labels) == {"http", "orm", "crypto"}
    report = model.with_suffix(".report.md").read_text()
    assert "## Dropped from the data" in report
    for note in MESSY_NOTES:
        assert f"- {note}" in report


def test_strict_refuses_the_messy_export_naming_every_bad_row(tmp_path):
    data = messy_export(tmp_path)
    log = refused(data, tmp_path / "m.bin", "--strict")
    assert f"{data}: 6 bad rows (read as csv; --format names another), nothing was trained:" in log
    for line, tag in [(2, "HTTP/2"), (3, "DALL\u00b7E"), (4, "O/RM"), (5, "s/mime"), (6, "connector/net")]:
        assert f"{data}:{line}: tag {tag!r} cannot be a hashtag: a hashtag is letters and digits" in log
    assert f"{data}:9: 4 fields where the header has 3" in log
    assert "export.csv:7" not in log and "export.csv:8" not in log  # no text or no tags: dropped, as without it


def load(train: Path, valid: Path | None = None, strict: bool = False) -> prepare.Split:
    return prepare.load({"train": str(train), "valid": str(valid) if valid else None, "format": None,
                         "columns": {"text": None, "tags": None, "group": None}, "min_tag_count": 1,
                         "split_seed": 1, "strict": strict})


def test_json_lines_that_cannot_be_read_are_dropped_one_line_a_rule(tmp_path):
    good = [json.dumps({"id": f"g{i}", "text": f"Goroutine leak number {i}", "hashtags": ["go"]}) for i in range(6)]
    broken = [
        '{"text": "broken", ',  # line 7
        json.dumps({"text": None, "hashtags": ["go"]}),
        json.dumps({"text": "tags of numbers", "hashtags": [1, 2]}),
        json.dumps({"body": "no text key", "hashtags": ["go"]}),
        '["a", "list"]',  # line 11
        json.dumps({"id": "w", "text": "A weird tag and go", "hashtags": ["go", "-weird"]}),  # kept, as #go
    ]
    data = tmp_path / "posts.jsonl"
    data.write_text("\n".join(good + broken) + "\n")
    split = load(data)
    assert len(split.train) + len(split.valid) == 7
    assert split.notes[1:6] == [
        "dropped 2 training rows that are not JSON objects (lines 7, 11): line 7: not a JSON object: "
        "Expecting property name enclosed in double quotes at column 20",
        "dropped 1 training rows whose text is not a string (line 8): line 8: the text must be a string, not null",
        "dropped 1 training rows whose tags are not a string or a list of strings (line 9): line 9: the tags "
        "must be a string or a list of strings, not [1, 2]",
        "dropped 1 training rows without a text or tags key (line 10): line 10: no 'text' key",
        "dropped 1 tags that cannot be hashtags, 1 times in 1 training rows, which keep their other tags: "
        "'-weird' (line 12; id w); --strict refuses the file instead",
    ]
    with pytest.raises(DatasetError) as strict:
        load(data, strict=True)
    message = str(strict.value)
    assert f"{data}: 6 bad rows (read as jsonl; --format names another), nothing was trained:" in message
    assert all(f"{data}:{line}: " in message for line in range(7, 13))


def test_a_validation_file_says_what_it_dropped_by_name(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,tags\n" + "".join(f"Go post {i},go\n" for i in range(6)))
    valid = tmp_path / "valid.csv"
    valid.write_text("text,tags\nA Go post about HTTP/2,go HTTP/2\nAnother Go post,go\n")
    split = load(train, valid)
    assert split.valid.gold == [["go"], ["go"]] and split.valid_from_file
    assert "dropped 1 tags that cannot be hashtags, 1 times in 1 validation rows, which keep their other tags: " \
           "'HTTP/2' (line 2); --strict refuses the file instead" in split.notes


def test_a_file_that_mostly_cannot_be_read_is_refused_not_trained_on(tmp_path):
    """Half the rows or more unreadable: the file is not in the format it was read as; nothing is dropped."""
    data = tmp_path / "posts.csv"
    data.write_text("text,tags\nGo post one,go\nGo post two,go\nbroken, row,go\nbroken, too,go\n")
    with pytest.raises(DatasetError, match=r"posts.csv: 2 of 4 rows cannot be read \(read as csv; --format names "
                                           r"another\), nothing was trained:\n.*posts.csv:4: 3 fields"):
        read_dataset(data)
    data.write_text("text,tags\nGo post one,go\nGo post two,go\nGo post three,go\nbroken, row,go\nbroken, too,go\n")
    dataset = read_dataset(data)
    assert [e.id for e in dataset.examples] == ["2", "3", "4"] and [p.line for p in dataset.problems] == [5, 6]


def test_the_report_says_when_nothing_was_dropped():
    assert report.data_lines(["read 3 rows of a.csv as csv"]) == [
        "", "## Dropped from the data", "", "Nothing was dropped.", "", "- read 3 rows of a.csv as csv"]
    lines = report.data_lines(["read 3 rows", "dropped 1 training rows with no tags"])
    assert lines[3] == "1 rule dropped rows or tags; all that training said about the data:"


def test_gzip_named_file_that_is_damaged_is_refused(tmp_path):
    data = tmp_path / "posts.csv.gz"
    data.write_bytes(gzip.compress(b"text,tags\nA post,go\n")[:-8])
    assert "posts.csv.gz: a damaged gzip file" in refused(data, tmp_path / "m.bin")


def test_csv_fields_may_hold_quoted_commas_tabs_and_newlines(tmp_path):
    data = tmp_path / "posts.csv"
    data.write_text('id,text,hashtags\n'
                    'a,"First line\nsecond line, with a comma\tand a tab","c++; #C# | .NET"\n'
                    'b,Another post\u2028with a line separator,"node.js go"\n'
                    'c,"Third",""\n')
    examples = read_dataset(data).examples
    assert [e.id for e in examples] == ["a", "b", "c"]
    assert examples[0].text == "First line\nsecond line, with a comma\tand a tab"
    assert examples[1].text == "Another post\u2028with a line separator"
    assert examples[0].labels == ["c++", "c#", ".net"] and examples[1].labels == ["node.js", "go"]
    assert examples[2].labels == []


def test_format_option_overrides_detection_and_columns_can_be_named(tmp_path):
    data = tmp_path / "export.dat"
    data.write_text("body,labels,thread\n" + "".join(f'"Go channels post {i}","go",t{i // 2}\n' for i in range(6)))
    dataset = read_dataset(data, "csv", columns=Columns(text="body", tags="labels", group="thread"))
    assert dataset.has_groups and [e.group for e in dataset.examples][:2] == ["t0", "t0"]
    with pytest.raises(DatasetError, match="no group column named 'missing'"):
        read_dataset(data, "csv", columns=Columns(text="body", tags="labels", group="missing"))


def test_a_stack_exchange_export_reads_with_its_own_headers_tags_and_title_plus_body(tmp_path):
    """A Stack Exchange Data Explorer CSV: capitalised headers, HTML bodies, tags as `<a><b>`."""
    data = tmp_path / "QueryResults.csv"
    data.write_text('Id,Title,Body,Tags\n'
                    '11,How do channels close?,"<p>My <code>range</code> loop never ends.</p>",<go><channels>\n'
                    '12,Pointer to a C# struct,<p>Unsafe code?</p>,<c#><.net><unsafe>\n')
    examples = read_dataset(data, columns=Columns(text="Title,Body")).examples
    assert [e.id for e in examples] == ["11", "12"]
    assert examples[0].text == "How do channels close?\n<p>My <code>range</code> loop never ends.</p>"
    assert [e.labels for e in examples] == [["go", "channels"], ["c#", ".net", "unsafe"]]
    data.write_text('Id,Title,Body,Tags\n21,Lists,<p>A cell holding a list</p>,"[""go"", ""c++""]"\n'
                    "22,Repr,<p>A Python list's repr</p>,\"['sql', 'node.js']\"\n")
    assert [e.labels for e in read_dataset(data, columns=Columns(text="Title,Body")).examples] == [
        ["go", "c++"], ["sql", "node.js"]]
    assert [e.text for e in read_dataset(data, columns=Columns(text=" Title , Body")).examples] == [
        "Lists\n<p>A cell holding a list</p>", "Repr\n<p>A Python list's repr</p>"]
    with pytest.raises(DatasetError, match="no text column named 'Summary'"):
        read_dataset(data, columns=Columns(text="Title,Summary"))
    with pytest.raises(DatasetError, match="--text-column 'Title,': an empty name"):
        read_dataset(data, columns=Columns(text="Title,"))


def test_json_lines_texts_may_join_several_keys(tmp_path):
    data = tmp_path / "posts.jsonl"
    data.write_text('{"title": "Go channels", "body": "never close", "tags": "<go>"}\n'
                    '{"title": "R factors", "tags": "<r>"}\n'
                    '{"title": "SQL joins", "body": ["a list"], "tags": "<sql>"}\n')
    with pytest.raises(DatasetError) as refused:
        read_dataset(data, columns=Columns(text="title,body"))
    assert "posts.jsonl:2: no 'body' key" in str(refused.value)
    assert 'posts.jsonl:3: the text must be a string, not ["a list"]' in str(refused.value)
    data.write_text('{"title": "Go channels", "body": "never close", "tags": "<go>"}\n')
    (example,) = read_dataset(data, columns=Columns(text="title,body")).examples
    assert (example.text, example.labels) == ("Go channels\nnever close", ["go"])


@pytest.mark.slow  # trains a model end to end
def test_a_stack_exchange_export_trains_and_evaluates_with_the_columns_recorded(tmp_path):
    data = tmp_path / "QueryResults.csv"
    rows = [f'{i},Question {i} about {topic},"<p>{topic} {word} details {i}</p>",<{topic}>'
            for i, (topic, word) in enumerate([("go", "goroutine"), ("sql", "join"), ("rust", "borrow")] * 20)]
    data.write_text("Id,Title,Body,Tags\n" + "\n".join(rows) + "\n")
    model = tmp_path / "se.bin"
    log = trained_ok(data, model, "--text-column", "Title,Body", "--no-refit")
    metrics = json.loads(model.with_suffix(".metrics.json").read_text())
    assert metrics["data"]["columns"]["text"] == "Title,Body" and metrics["labels"] == 3
    assert "read 60 rows" in log
    [row] = ev.main(["--model", str(model)]).values()  # reads the export again, with the recorded columns
    assert row["p_at_1"] == pytest.approx(metrics["p_at_1"], abs=0.01)


def test_a_header_row_in_the_tsv_is_not_an_example(tmp_path):
    data = tmp_path / "posts.tsv"
    data.write_text("id\tgroup\tlabels\ttext\n1\t1\tgo\tGo channels\n")
    assert [e.labels for e in read_dataset(data).examples] == [["go"]]


def test_fasttext_lines_without_labels_are_dropped_with_a_note(tmp_path):
    lines = [f"__label__go Goroutine number {i} leaks" for i in range(12)] + ["a line with no label at all"]
    data = tmp_path / "posts.txt"
    data.write_text("\n".join(lines) + "\n")
    log = train(data, tmp_path / "m.bin").stderr
    assert "dropped 1 training rows with no tags (row id or line: 13)" in log


def test_training_never_falls_back_to_the_bundled_data(tmp_path):
    data = tmp_path / "posts.csv"
    data.write_text("text,tags\n" + "".join(f'"Go post {i}",go\n' for i in range(3)))
    log = refused(data, tmp_path / "m.bin")
    assert "no validation examples are left" in log or "no training examples are left" in log
    assert "debian" not in log.lower() and "valid.tsv.gz" not in log


# --- evaluate ------------------------------------------------------------------------------------------


@pytest.mark.slow  # trains a model end to end
def test_evaluate_scores_a_model_on_the_data_it_recorded(tmp_path, capsys):
    model = tmp_path / "posts.bin"
    trained_ok(POSTS / "posts.csv", model, "--no-refit")
    metrics = json.loads(model.with_suffix(".metrics.json").read_text())
    [row] = ev.main(["--model", str(model)]).values()
    assert row["p_at_1"] == pytest.approx(metrics["p_at_1"], abs=0.01)
    assert row["r_at_5"] == pytest.approx(metrics["r_at_5"], abs=0.01)
    assert row["ece_top5"] == pytest.approx(metrics["ece_top5"], abs=0.015)


@pytest.mark.slow  # trains a model end to end
def test_evaluate_refuses_a_model_that_knows_none_of_the_tags(models, tmp_path, capsys):
    lonely = tmp_path / "lonely.bin"
    lonely.write_bytes(models["csv"]["model"].read_bytes())  # no metrics next to it: the bundled split
    with pytest.raises(SystemExit) as refused:
        ev.main(["--model", str(lonely)])
    assert refused.value.code == 2
    assert "error: none of the validation set's tags is among" in capsys.readouterr().err


# --- serving and packaging the user's model --------------------------------------------------------------


def make(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.slow  # trains a model end to end
def test_make_serve_serves_the_chosen_model_and_two_servers_can_run(models, serverless_cli, tmp_path):
    model = models["csv"]["model"].relative_to(ROOT)

    def make_serve(port: int) -> list[str]:
        return ["make", "--no-print-directory", "serve", f"MODEL={model}", f"PORT={port}", "HOST=127.0.0.1"]

    with offline_server(ROOT, tmp_path / "one.log", make_serve) as one, \
            offline_server(ROOT, tmp_path / "two.log", make_serve) as two:
        text = "Why does a C++ template fail with g++ #c++? A std::vector question."
        digest = hashlib.sha256((ROOT / model).read_bytes()).hexdigest()
        for server in (one, two):
            status, _, _ = request(server.url + "/recommendations", json.dumps({"text": text}).encode())
            assert status == 200
            status, _, body = request(server.url + "/health")
            assert status == 200
            [served] = json.loads(body)["models"]
            assert served["name"] == "default" and served["sha256"] == digest and str(ROOT) not in body.decode()
        status, _, body = request(one.url + "/recommendations",
                                  json.dumps({"text": text, "k": 3, "exclude_used": True}).encode())
        assert status == 200, body
        answer = json.loads(body)
        assert answer["hashtags_already_used"] == ["#c++"]
        recommended = [r["hashtag"] for r in answer["hashtags_recommended"]]
        assert "#c++" not in recommended and 1 <= len(recommended) <= 3
        assert set(recommended) <= {"#" + tag for tag in SITE_TAGS}


@pytest.mark.slow  # `make serve` runs the whole setup first
def test_make_serve_refuses_a_model_that_does_not_exist():
    result = make("serve", "MODEL=build/no-such-model.bin")
    assert result.returncode != 0
    assert "MODEL=build/no-such-model.bin does not exist: train it with 'make train" in result.stderr


@pytest.mark.slow  # trains a model end to end
def test_make_package_ships_the_chosen_model(models, serverless_cli):
    model = models["jsonl"]["model"].relative_to(ROOT)
    result = make("package", f"MODEL={model}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with zipfile.ZipFile(ROOT / ".serverless" / ZIP_NAME) as zf:
        names = zf.namelist()
        assert str(model) in names and "model.bin" not in names
        assert zf.read(str(model)) == (ROOT / model).read_bytes()
    template = json.loads((ROOT / ".serverless" / "cloudformation-template-update-stack.json").read_text())
    function = template["Resources"]["TagRecommendationsLambdaFunction"]["Properties"]
    assert function["Environment"]["Variables"]["MODEL_PATH"] == str(model)


@pytest.fixture(scope="module")
def service(tmp_path_factory, serverless_cli, tiny_model) -> Path:
    return make_service(tmp_path_factory.mktemp("params") / "fasttext-serverless", tiny_model)


@pytest.mark.parametrize(
    "param, message",
    [
        ("modelS3Uri=https://bucket.s3.amazonaws.com/model.bin", "modelS3Uri must look like s3://bucket/key"),
        ("modelS3Uri=s3://bucket-only", "modelS3Uri must look like s3://bucket/key"),
        ("modelSha256=abc123", "modelSha256 must be the model's sha256 as 64 hex digits"),
        ("model=../outside.bin", "model '../outside.bin' is outside the service directory"),
        ("model=missing.bin", "model 'missing.bin' cannot be read (ENOENT)"),
        ("model=serverless.yml", "model 'serverless.yml' is not a fastText model"),
    ],
)
def test_package_refuses_bad_model_params(service, param, message):
    result = subprocess.run([str(ROOT / "node_modules" / ".bin" / "serverless"), "package", f"--param={param}"],
                            cwd=service, env=cli_env(), capture_output=True, text=True, timeout=180,
                            stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


@pytest.mark.slow  # needs the Debian model.bin
def test_the_default_model_is_built_only_when_missing():
    # -W: as if these had just changed (a `git pull`); model.bin exists, so nothing is retrained.
    assert (ROOT / "model.bin").is_file()
    result = make("-n", "-W", "training/train.py", "-W", "text_cleaning.py", "-W", "data/train.tsv.gz", "model.bin")
    assert result.returncode == 0 and "training.train" not in result.stdout, result.stdout
    assert "training.train" in make("-n", "train").stdout  # retraining is asked for by name


def test_make_train_takes_data_and_model(tmp_path):
    dry = make("-n", "train", "DATA=posts.csv", "VALID=valid.csv", "MODEL=models/posts.bin",
               "TRAIN_ARGS=--min-tag-count 5").stdout
    assert "-m training.train --train posts.csv --valid valid.csv --output models/posts.bin --min-tag-count 5" in dry

