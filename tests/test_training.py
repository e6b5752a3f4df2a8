"""Tests of the training pipeline (tiny generated data; the full dataset is only sampled for cleaning parity)."""

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from contract import RecommendationRequest
from fasttext_process import Deadline, FastTextProcess, read_model_header
from recommender import Recommender
from support import ROOT
from text_cleaning import clean_text
from training import evaluate as ev
from training import fasttext_cli as ft
from training import metrics as mt
from training import prepare, report
from training import train as tr
from training.dataset import Example, read_examples
from training.errors import TrainingError
from training.learners.fasttext_supervised import check_params, read_vec_dim
from training.model_file import read_model
from training.presets import LARGE, PRESETS, auto_preset, get_preset

VALID = ROOT / "data" / "valid.tsv.gz"

TOPICS = {
    "implemented-in-python": "Python script interpreter module pip virtualenv",
    "implemented-in-cpp": "a C++ compiler library header template linker",
    "works-with-audio": "sound <b>music</b> player MP3 audio mixer",
    "web-server": "HTTP server browser HTML website proxy &amp; cache",
}
# Texts that stress the cleaning: HTML, entities, underscores, a would-be label, control characters, Unicode.
AWKWARD = [
    "Fancy __label__spam injection\tattempt_with_underscores",
    "Über-fast C++/C# &lt;tool&gt; for .NET\r\nand\x00 friends",
    "<p>Line one</p>\u2028line two \u00a0 non-breaking",
    "ｆｕｌｌｗｉｄｔｈ and emoji 🎵 and 日本語",
]


class RecordingModels:
    """Stands in for the served models: records the lines the recommender asks, answers a fixed label."""

    def __init__(self):
        self.asked: list[str] = []

    def get(self, name):
        return name

    def answer_lines(self, served, lines, deadline, k):
        self.asked.extend(lines)
        return ["__label__x 0.5" for _ in lines]


def endpoint_lines(texts: list[str]) -> list[str]:
    """The lines the endpoint would send fastText for `texts` (through the real Recommender)."""
    models = RecordingModels()
    Recommender(models).recommend(RecommendationRequest(texts=texts, batch=True), Deadline(10))
    return models.asked


def write_dataset(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    names = sorted(TOPICS)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            labels = sorted(rng.sample(names, 2))
            words = (TOPICS[labels[0]] + " " + TOPICS[labels[1]]).split()
            rng.shuffle(words)
            text = " ".join(words[:8])
            if i < len(AWKWARD):
                text += " " + AWKWARD[i].replace("\t", " ").replace("\n", " ").replace("\r", " ")
            f.write(f"pkg{i}\tsrc{i}\t{' '.join(labels)}\t{text}\n")


CORPUS_WORD = "zorblax"  # only in the tiny pretraining corpus


def write_corpus(path: Path, n: int, seed: int) -> None:
    """A tiny unlabelled pretraining corpus, in the format of data/pretrain.tsv.gz."""
    rng = random.Random(seed)
    words = " ".join(TOPICS.values()).split()
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            f.write(f"extra{i}\textra{i}\t\t{' '.join(rng.sample(words, 8))} {CORPUS_WORD.upper()}\n")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("tiny_dataset")
    write_dataset(d / "train.tsv.gz", 400, seed=1)
    write_dataset(d / "valid.tsv.gz", 80, seed=2)
    write_corpus(d / "pretrain.tsv.gz", 30, seed=3)
    return {"train": d / "train.tsv.gz", "valid": d / "valid.tsv.gz", "corpus": d / "pretrain.tsv.gz"}


TINY_OVERRIDES = ["--set", "dim=8", "--set", "epoch=5", "--set", "bucket=2000", "--set", "lr=0.5", "--threads", "1",
                  # fastText 0.9.3's skipgram without subwords aborts (EncounteredNaNError) on this tiny
                  # corpus, though not on the real one; subwords in a small bucket keep the step fast here.
                  "--pretrain-set", "model=skipgram", "--pretrain-set", "epoch=5", "--pretrain-set", "minn=3",
                  "--pretrain-set", "maxn=4", "--pretrain-set", "bucket=2000"]


def train_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def run_train(tiny_dataset, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run the real CLI entry point, `python -m training.train`, on the tiny dataset."""
    result = train_cli("--learner", "fasttext", "--preset", "default", "--output", str(out),
                       "--train", str(tiny_dataset["train"]), "--valid", str(tiny_dataset["valid"]), *TINY_OVERRIDES,
                       "--pretrain-set", f"corpus={tiny_dataset['corpus']}", *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(tiny_dataset, fasttext_binary, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("trained")
    result = run_train(tiny_dataset, out / "tiny.bin", "--build-dir", str(out / "build"), "--size-budget", "0.02")
    return {"dir": out, "model": out / "tiny.bin", "build": out / "build", "stderr": result.stderr,
            "metrics": json.loads((out / "tiny.metrics.json").read_text())}


# --- cleaning parity: training lines == __label__... + what the endpoint sends ---------------------------


def sampled_valid_examples(n: int = 300) -> list[Example]:
    examples = list(read_examples(VALID))
    return random.Random(0).sample(examples, n) + [Example("awkward", "awkward", ["x-y"], t) for t in AWKWARD]


def test_recommender_sends_clean_text():
    texts = ["A tiny C++ library to parse <b>JSON</b> files!", "  ", *AWKWARD]
    assert endpoint_lines(texts) == [clean_text(t) for t in texts if clean_text(t)]
    assert endpoint_lines(["Hello, World"]) == ["hello world"]


def test_training_lines_match_endpoint_cleaning_on_real_data(tmp_path):
    examples = sampled_valid_examples()
    part = prepare.drop_unusable(examples, "training", [], set())
    assert part.examples == examples  # none is dropped: each keeps its line, cleaned once
    path = tmp_path / "train.txt"
    ft.write_training_file(part.gold, part.lines, path)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines.pop() == ""
    assert len(lines) == len(examples)
    sent = endpoint_lines([ex.text for ex in examples])
    assert len(sent) == len(examples)  # no sampled text cleans to nothing
    for line, example, endpoint_line in zip(lines, examples, sent):
        prefix = " ".join("__label__" + label for label in example.labels) + " "
        assert line == prefix + endpoint_line
        text_part = line[len(prefix):]
        assert "__label__" not in text_part and "\t" not in text_part and "\r" not in text_part
        assert text_part.split(" ") == text_part.split()


@pytest.mark.slow  # trains a model end to end
def test_cli_training_file_matches_endpoint(trained, tiny_dataset):
    """The file the real entry point trained on holds exactly the endpoint's lines."""
    examples = list(read_examples(tiny_dataset["train"]))
    lines = (trained["build"] / "fasttext" / "train.txt").read_text(encoding="utf-8").splitlines()
    sent = endpoint_lines([ex.text for ex in examples])
    assert lines == [" ".join("__label__" + label for label in ex.labels) + " " + s for ex, s in zip(examples, sent)]


# --- metrics -------------------------------------------------------------------------------------------


def test_metrics_follow_fasttext_definitions():
    gold = [["a", "b"], ["c"], ["a", "d", "e"]]
    predictions = [
        [("a", 0.9), ("c", 0.5), ("b", 0.4)],
        [("b", 0.8), ("c", 0.7)],
        [("e", 0.6), ("a", 0.5), ("x", 0.1)],
    ]
    one = mt.at_k(gold, predictions, 1)
    assert one["precision"] == pytest.approx(2 / 3)
    assert one["recall"] == pytest.approx(2 / 6)
    five = mt.at_k(gold, predictions, 5)
    assert five["precision"] == pytest.approx(5 / 15)
    assert five["recall"] == pytest.approx(5 / 6)
    rows = {r["label"]: r for r in mt.per_label(gold, predictions, ["a", "c", "z"], k=5, threshold=0.5)}
    assert rows["a"]["precision"] == 1.0 and rows["a"]["recall"] == 1.0
    assert rows["c"]["predicted"] == 2 and rows["c"]["precision"] == 0.5
    assert rows["z"]["support"] == 0 and rows["z"]["recall"] == 0.0
    curve = mt.threshold_curve(gold, predictions, [0.0, 0.55, 0.95])
    assert curve[0]["recall"] == pytest.approx(5 / 6) and curve[0]["labels_per_text"] == pytest.approx(8 / 3)
    assert curve[1]["precision"] == pytest.approx(3 / 4)
    assert curve[2]["recall"] == 0.0
    with pytest.raises(ValueError):
        mt.at_k(gold, predictions[:2], 1)


def test_calibration_of_the_top_5_by_hand():
    gold = [["a"], ["b", "c"]]
    predictions = [[("a", 0.95), ("b", 0.05)], [("b", 0.62), ("x", 0.55), ("c", 0.15), ("d", 0.01), ("e", 0.01),
                                                 ("c", 0.0)]]  # a 6th answer, beyond the top 5
    result = mt.calibration(gold, predictions)
    # 7 pairs: a .95 right, b .05 wrong | b .62 right, x .55 wrong, c .15 right, d .01 wrong, e .01 wrong.
    assert result["pairs"] == 7
    bins = result["bins"]
    assert [b["count"] for b in bins] == [3, 1, 0, 0, 0, 1, 1, 0, 0, 1]
    assert bins[0]["mean_p"] == pytest.approx(0.07 / 3) and bins[0]["accuracy"] == 0.0
    assert bins[1]["mean_p"] == pytest.approx(0.15) and bins[1]["accuracy"] == 1.0
    assert bins[2]["mean_p"] is None and bins[2]["accuracy"] is None
    assert (bins[5]["low"], bins[5]["high"]) == (0.5, 0.6)
    # (3 * |0.07/3 - 0| + |0.15 - 1| + |0.55 - 0| + |0.62 - 1| + |0.95 - 1|) / 7 = 1.90 / 7
    assert result["ece"] == pytest.approx(1.90 / 7)
    assert mt.calibration(gold, predictions, k=1)["ece"] == pytest.approx((0.05 + 0.38) / 2)


def test_calibration_bins_edges_and_a_calibrated_model():
    # 10 texts answered "a" with p 0.3, 3 of them rightly: calibrated, whatever the bins.
    gold = [["a"]] * 3 + [["b"]] * 7
    assert mt.calibration(gold, [[("a", 0.3)]] * 10)["ece"] == pytest.approx(0.0)
    # Two bins: 0.5 and 1.0 (and fastText's 1.00001) fall in the upper one, mean 0.833.., 2 of 3 right.
    result = mt.calibration([["a"], ["a"], ["b"]], [[("a", 0.5)], [("a", 1.0)], [("a", 1.00001)]], bins=2)
    assert [b["count"] for b in result["bins"]] == [0, 3]
    assert result["ece"] == pytest.approx(abs(2.50001 / 3 - 2 / 3))
    with pytest.raises(ValueError):
        mt.calibration(gold, [[("a", 0.3)]] * 9)
    with pytest.raises(ValueError):
        mt.calibration([["a"]], [[]])


def test_report_renders_the_reliability_table():
    table = report.calibration_lines(mt.calibration([["a"], ["b"]], [[("a", 0.95)], [("a", 0.05)]], bins=2))
    assert "Top-5 expected calibration error: **0.050** over 2 (text, hashtag) pairs" in "\n".join(table)
    assert table[-2:] == ["| 0.0-0.5 | 1 | 0.050 | 0.000 |", "| 0.5-1.0 | 1 | 0.950 | 1.000 |"]
    assert "| 0.0-0.5 | 0 | - | - |" in report.calibration_lines(mt.calibration([["a"]], [[("a", 0.9)]], bins=2))
    assert report.calibration_lines(None) == []


# --- the real entry point, end to end --------------------------------------------------------------------


@pytest.mark.slow  # trains a model end to end
def test_end_to_end_outputs(trained, fasttext_binary):
    m = trained["metrics"]
    model = trained["model"]
    assert model.is_file() and m["model_bytes"] == model.stat().st_size <= 0.02 * 2**20
    for key in ("p_at_1", "p_at_5", "r_at_5", "ece_top5", "training_seconds", "labels", "params", "setting",
                "quantize_tried", "binary_check", "candidates", "calibration_fit", "calibration", "steps_seconds"):
        assert key in m, key
    # Two labels per text out of four: a working model ranks both first.
    assert m["p_at_1"] >= 0.9 and m["r_at_5"] == pytest.approx(1.0)
    assert m["p_at_5"] == pytest.approx(2 / 5)
    assert m["labels"] == 4 and m["train_examples"] == 400 and m["valid_examples"] == 80
    assert m["params"]["train"]["dim"] == 8 and m["params"]["train"]["epoch"] == 5
    assert m["quantized"] is True and m["setting"].endswith("norms apart")
    assert m["learner"] == "fasttext" and [c["name"] for c in m["candidates"]] == ["fastText preset default"]
    # --valid is a file of its own: the model is not refitted on it, so the metrics are the written file's.
    assert m["refit"]["done"] is False and m["metrics_of"] == "the written model"
    assert 0 <= m["ece_top5"] <= 1 and m["ece_top5"] == pytest.approx(m["calibration"]["ece"])
    assert m["binary_check"]["largest_difference"] <= 1e-4
    # The shipped file is a model the runtime can load and ask: one dimension more than trained, the
    # calibration's; its answers are the Python scores the metrics come from.
    assert read_model_header(str(model)).dim == 9
    process = FastTextProcess(str(fasttext_binary), str(model), k=2, timeout=10)
    try:
        [answer] = process.predict([clean_text("an MP3 music player with a mixer")])
    finally:
        process.close()
    assert answer[0][0] == "works-with-audio"
    ours = read_model(model).predict_prob(clean_text("an MP3 music player with a mixer"), 4)
    assert answer[0] == ours[0] and answer[1][1] == ours[1][1]  # labels tied at 0 come in either order
    assert "fasttext supervised -loss ova" in trained["stderr"] and "Progress:" in trained["stderr"]


@pytest.mark.slow  # trains a model end to end
def test_pretrain_step_builds_vectors_from_training_split_and_corpus(trained, tiny_dataset):
    """Pretraining: word vectors from the training texts and the corpus, with the supervised dim."""
    m = trained["metrics"]
    corpus = str(tiny_dataset["corpus"])
    assert m["params"]["pretrain"] == {"model": "skipgram", "epoch": 5, "corpus": corpus, "minn": 3, "maxn": 4,
                                       "bucket": 2000}
    assert f"fasttext skipgram word vectors on the 400 training texts and 30 texts of {corpus}" in trained["stderr"]
    vec = trained["build"] / "fasttext" / "vectors.vec"
    assert f"-pretrainedVectors {vec.resolve()}" in trained["stderr"]
    assert read_vec_dim(vec) == 8 and not (trained["build"] / "fasttext" / "vectors.bin").exists()
    # The vectors' input file is the cleaned training split, then the cleaned corpus, line for line;
    # no validation text.
    train_texts = [clean_text(ex.text) for ex in read_examples(tiny_dataset["train"])]
    corpus_texts = [clean_text(ex.text) for ex in read_examples(tiny_dataset["corpus"])]
    assert all(text.endswith(f" {CORPUS_WORD}") for text in corpus_texts)
    assert (trained["build"] / "fasttext" / "pretrain.text.txt").read_text().splitlines() == train_texts + corpus_texts
    # ... and fastText learnt a vector for the word only the corpus has.
    assert CORPUS_WORD in {line.split(" ", 1)[0] for line in vec.read_text().splitlines()[1:]}


@pytest.mark.slow  # trains a model end to end
def test_pretraining_without_a_corpus(tiny_dataset, tmp_path):
    result = run_train(tiny_dataset, tmp_path / "nocorpus.bin", "--pretrain-set", "corpus=none",
                       "--build-dir", str(tmp_path / "build"))
    assert "word vectors on the 400 training texts and 0 texts of no further corpus" in result.stderr
    train_texts = [clean_text(ex.text) for ex in read_examples(tiny_dataset["train"])]
    assert (tmp_path / "build" / "fasttext" / "pretrain.text.txt").read_text().splitlines() == train_texts


def test_missing_corpus_fails_before_training(tiny_dataset, tmp_path):
    result = train_cli("--learner", "fasttext", "--preset", "default", "--output", str(tmp_path / "m.bin"),
                       "--train", str(tiny_dataset["train"]), "--valid", str(tiny_dataset["valid"]), *TINY_OVERRIDES,
                       "--pretrain-set", f"corpus={tmp_path / 'absent.tsv.gz'}")
    assert result.returncode == 2 and "absent.tsv.gz: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert "fasttext supervised" not in result.stderr and not (tmp_path / "m.bin").exists()


@pytest.mark.slow  # trains a model end to end
def test_no_pretrain(tiny_dataset, tmp_path):
    result = run_train(tiny_dataset, tmp_path / "nopre.bin", "--no-pretrain")
    m = json.loads((tmp_path / "nopre.metrics.json").read_text())
    assert m["params"]["pretrain"] is None and "pretrainedVectors" not in m["params"]["train"]
    assert "-pretrainedVectors" not in result.stderr and "word vectors" not in result.stderr


@pytest.mark.slow  # trains a model end to end
def test_failed_pretraining_falls_back_to_no_vectors(tiny_dataset, tmp_path):
    # Without subwords, fastText's skipgram aborts on NaN on this tiny corpus.
    result = run_train(tiny_dataset, tmp_path / "fallback.bin", "--pretrain-set", "minn=0", "--pretrain-set", "maxn=0")
    assert "word-vector pretraining failed, continuing without pretrained vectors" in result.stderr
    assert "-pretrainedVectors" not in result.stderr
    assert read_model_header(str(tmp_path / "fallback.bin")).labels == 4


@pytest.mark.slow  # trains a model end to end
def test_end_to_end_report_and_figure(trained):
    report = (trained["dir"] / "tiny.report.md").read_text()
    m = trained["metrics"]
    assert f"**{m['p_at_1']:.3f}**" in report
    assert "Settings the size budget tried" in report and "norms apart" in report
    assert "## Candidates" in report and "**fastText preset default**" in report and "Top-5 expected" in report
    assert "measured on the written model" in report and "`fasttext predict-prob` on the written file" in report
    for label in TOPICS:
        assert f"#{label}" in report
    assert "tiny.pr.png" in report
    png = (trained["dir"] / "tiny.pr.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


@pytest.mark.slow  # trains a model end to end
def test_pretrained_vectors(tiny_dataset, tmp_path, fasttext_binary):
    words = sorted({w for ex in read_examples(tiny_dataset["train"]) for w in clean_text(ex.text).split()})
    rng = random.Random(5)
    vec = tmp_path / "tiny.vec"
    with open(vec, "w") as f:
        f.write(f"{len(words)} 6\n")
        for w in words:
            f.write(w + " " + " ".join(f"{rng.uniform(-0.1, 0.1):.4f}" for _ in range(6)) + "\n")
    result = run_train(tiny_dataset, tmp_path / "pre.bin", "--pretrained-vectors", str(vec))
    m = json.loads((tmp_path / "pre.metrics.json").read_text())
    assert m["params"]["train"]["dim"] == 6  # the preset's (overridden) dim 8 gives way to the .vec's
    assert m["params"]["train"]["pretrainedVectors"] == str(vec.resolve())
    assert read_model_header(str(tmp_path / "pre.bin")).dim == 7  # and the calibration's dimension
    assert "-dim 6 instead of 8" in result.stderr
    assert "word vectors on" not in result.stderr  # the given .vec replaces the preset's step
    assert m["p_at_1"] >= 0.9


def test_bad_vec_file_is_refused(tmp_path):
    bad = tmp_path / "bad.vec"
    bad.write_text("hello 0.1 0.2\n")
    with pytest.raises(TrainingError, match="not a .vec file"):
        read_vec_dim(bad)
    with pytest.raises(TrainingError, match="absent.vec: No such file"):
        read_vec_dim(tmp_path / "absent.vec")


# --- presets, options ------------------------------------------------------------------------------------


def test_presets():
    assert set(PRESETS) == {"default"}
    default = get_preset("default")
    assert default["train"]["loss"] == "ova" and "pretrain" not in default
    default["train"]["dim"] = 1
    assert get_preset("default")["train"]["dim"] != 1  # callers get a copy
    with pytest.raises(TrainingError, match="unknown preset 'seed'"):
        get_preset("seed")


@pytest.mark.parametrize(
    "examples, epoch, lr",
    [(400, 50, 0.5), (3_000, 50, 0.5), (5_000, 50, 0.3), (9_000, 50, 0.17), (12_000, 30, 0.21),
     (19_999, 30, 0.13)],
)
def test_auto_preset_learning_rate_falls_as_the_data_grows(examples, epoch, lr):
    preset, reasons = auto_preset(examples=examples, tags=60, tokens=examples * 60, words=examples, bigrams=examples * 20)
    assert (preset["train"]["epoch"], preset["train"]["lr"]) == (epoch, lr)
    assert f"lr {lr}: lr x epoch x examples = {lr * epoch * examples:,.0f} (aimed at 75,000)" in reasons


@pytest.mark.parametrize("examples, lr", [(LARGE, 0.2), (190_000, 0.2), (600_000, 0.067), (5_000_000, 0.05)])
def test_the_large_preset_keeps_the_amount_of_learning_in_its_range(examples, lr):
    preset, reasons = auto_preset(examples=examples, tags=1000, tokens=examples * 8, words=examples, bigrams=examples * 5)
    train = preset["train"]
    assert (train["epoch"], train["dim"], train["bucket"], train["lr"]) == (5, 50, 2_000_000, lr)
    assert "pretrain" not in preset and f"lr {lr}:" in reasons[1] and "(aimed at 200,000)" in reasons[1]


def test_overrides_and_output_paths():
    assert tr.parse_overrides(["dim=8", "lr=0.5", "loss=ova", "-retrain=true", "x=none"]) == {
        "dim": 8, "lr": 0.5, "loss": "ova", "retrain": True, "x": None}
    with pytest.raises(TrainingError, match="must look like NAME=VALUE"):
        tr.parse_overrides(["dim"])
    paths = tr.output_paths(Path("out/model.bin"))
    assert paths["metrics"] == Path("out/model.metrics.json")
    assert paths["report"] == Path("out/model.report.md") and paths["figure"] == Path("out/model.pr.png")
    assert ft.params_to_args({"lr": 0.5, "x": None, "loss": "ova"}) == ["-lr", "0.5", "-loss", "ova"]


@pytest.mark.parametrize("params, message", [
    ({"loss": "softmax"}, "loss 'softmax' cannot be served as independent hashtag probabilities"),
    ({"loss": "ova", "maxn": 3}, "maxn 3: subword n-grams are not served"),
    ({"loss": "ova", "wordNgrams": 7}, "wordNgrams 7: must be 1 to 5"),
    ({"loss": "ova", "label": "__tag__"}, "--set label: not a fastText supervised option this project serves"),
    ({"loss": "ova", "dim": "big"}, "--set dim='big': must be int"),
    ({"loss": "ova", "lr": -1.0}, "--set lr=-1.0: must not be negative"),
    ({"loss": "ova", "bucket": 0}, "bucket, dim and epoch must be at least 1"),
])
def test_options_the_served_file_cannot_honour_are_refused(params, message):
    with pytest.raises(TrainingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_params(dict(params))
    assert check_params({"loss": "ns", "lr": 1, "wordNgrams": 3}) == {"loss": "ns", "lr": 1.0, "wordNgrams": 3}


@pytest.mark.parametrize("args, message", [
    (["--set", "loss=softmax"], "error: loss 'softmax' cannot be served"),
    (["--set", "maxn=3"], "error: maxn 3: subword n-grams are not served"),
    (["--preset", "seed"], "error: unknown preset 'seed'"),
    (["--set", "dim"], "error: override 'dim' must look like NAME=VALUE"),
    (["--learner", "linear", "--size-budget", "0.0001"], "no quantization brings this model"),
    (["--size-budget", "0"], "error: --size-budget, --threads and --min-tag-count must be positive"),
])
def test_the_command_line_refuses_before_training_with_one_line(tiny_dataset, tmp_path, args, message):
    result = train_cli("--train", str(tiny_dataset["train"]), "--valid", str(tiny_dataset["valid"]),
                       "--output", str(tmp_path / "m.bin"), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "fasttext supervised" not in result.stderr
    assert not (tmp_path / "m.bin").exists()


# --- evaluate.py ------------------------------------------------------------------------------------------


@pytest.mark.slow  # trains a model end to end
def test_evaluate_with_baseline(trained, tiny_dataset, capsys):
    rows = ev.main(["--model", str(trained["model"]), "--valid", str(tiny_dataset["valid"]),
                    "--train", str(tiny_dataset["train"]), "--baseline"])
    fasttext_row, baseline_row = rows.values()
    assert fasttext_row["p_at_1"] == pytest.approx(trained["metrics"]["p_at_1"])
    assert fasttext_row["r_at_5"] == pytest.approx(trained["metrics"]["r_at_5"])
    assert baseline_row["p_at_1"] >= 0.9
    out = capsys.readouterr().out
    assert "TF-IDF" in out and "P@1" in out and "R@5" in out


@pytest.mark.slow  # trains a model end to end
def test_a_written_file_the_binary_answers_otherwise_is_refused_and_not_renamed(trained, tmp_path):
    model = read_model(trained["model"])
    lines = [clean_text("an MP3 music player with a mixer"), clean_text("HTTP proxy cache server")]
    assert tr.check_against_binary(trained["model"], model, lines, tmp_path)["largest_difference"] <= 1e-4
    with pytest.raises(TrainingError, match="the written model answers up to .* away from the scores"):
        tr.check_against_binary(trained["model"], model.with_output_scale(0.01), lines, tmp_path)
    destination = tmp_path / "kept.bin"
    destination.write_bytes(b"the user's model")
    # The check cannot fail on a file model_file wrote unless model_file has a bug: one stands in here.
    def disagreeing(path, model, lines, work):
        raise TrainingError("the written model answers up to 0.5 away from the scores it was validated with")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tr, "check_against_binary", disagreeing)
        with pytest.raises(TrainingError):
            tr.write_checked(model, destination, lines, tmp_path)
    assert destination.read_bytes() == b"the user's model" and not (tmp_path / ".kept.bin.partial").exists()
    ok = tr.write_checked(model, destination, lines, tmp_path)
    assert ok["texts"] == 2 and read_model(destination).labels == model.labels
    assert not (tmp_path / ".kept.bin.partial").exists()
