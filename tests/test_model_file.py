"""Model files written by training/model_file.py are served unchanged by the bundled binary, which
answers them exactly as the learners' own computation does."""

import gzip
import subprocess
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from fasttext_process import parse_answer
from text_cleaning import clean_text
from training import calibration, size_budget
from training.dataset import read_examples
from training.fasttext_features import EOS, Vocabulary, token_hash
from training.learners import Candidate
from training.learners.linear import LinearLearner
from training.model_file import (
    SIGMOID_TABLE,
    FastTextModel,
    ModelFileError,
    printed_probability,
    read_model,
    table_sigmoid,
    write_model,
)

ROOT = Path(__file__).resolve().parent.parent


def binary_answers(binary: Path, model: Path, lines: list[str], k: int) -> list[dict]:
    result = subprocess.run([str(binary), "predict-prob", str(model), "-", str(k)], check=True,
                            input="".join(line + "\n" for line in lines).encode(), stdout=subprocess.PIPE)
    return [dict(parse_answer(line)) for line in result.stdout.decode().splitlines()]


@pytest.fixture(scope="module")
def debian_sample():
    """600 real Debian descriptions: 400 to fit on, and 200 unseen ones with words the model never saw."""
    examples = list(islice(read_examples(ROOT / "data" / "train.tsv.gz"), 600))
    return examples[:400], examples[400:]


def hard_lines(unseen) -> list[str]:
    long_text = " ".join(e.text for e in unseen)[:20_000]
    return [
        clean_text(long_text),                       # a 20,000-character text
        "",                                          # a text that cleans to nothing: `</s>` alone
        clean_text("?!? ... ---"),
        "library library library python python",     # repeated words
        "zzzunknown qqqunknown",                     # only unknown words: their pairs still count
        "ünïcödé 日本語 library",                     # bytes above 0x7f hash sign-extended
        clean_text("C++ and C# and .NET node.js 3.11"),
    ]


@pytest.fixture(scope="module")
def linear_models(debian_sample):
    train, _ = debian_sample
    learner = LinearLearner(threads=2, log=lambda message: None)
    full = learner.fit(Candidate("linear", "full", {"c": 100.0, "min_lines": 2, "rank": None}), train)
    low = learner.fit(Candidate("linear", "rank 20", {"c": 100.0, "min_lines": 2, "rank": 20}), train)
    return {"full": full, "rank 20": calibration.with_temperature(low, 0.7)}


@pytest.mark.parametrize("name", ["full", "rank 20"])
def test_the_binary_answers_a_written_model_as_the_learner_computes(name, linear_models, debian_sample, tmp_path,
                                                                   fasttext_binary):
    model = linear_models[name]
    _, unseen = debian_sample
    lines = [clean_text(e.text) for e in unseen] + hard_lines(unseen)
    assert len(lines) >= 200 and any(len(line) > 15_000 for line in lines)
    path = tmp_path / "linear.bin"
    write_model(model, path)
    assert path.stat().st_size == model.file_bytes()
    k = len(model.labels)
    answers = binary_answers(fasttext_binary, path, lines, k)
    assert len(answers) == len(lines)
    worst = 0.0
    for line, answer in zip(lines, answers):
        ours = dict(model.predict_prob(line, k))
        assert answer.keys() == ours.keys()
        worst = max(worst, max(abs(answer[label] - ours[label]) for label in answer))
    assert worst <= 1e-4
    # And the learner's probabilities are the logistic regressions' own, but for the sigmoid table's steps.
    true = 1 / (1 + np.exp(-model.scores(lines)))
    ours = np.array([model.probabilities(line) for line in lines])
    assert np.abs(true - ours).max() < 0.0085


def test_a_fasttext_model_read_and_written_back_answers_the_same(tiny_model, tmp_path, fasttext_binary):
    model = read_model(tiny_model)
    copy = tmp_path / "copy.bin"
    write_model(model, copy)
    lines = ["python script module", "sound music player", "", "unknownword http server html", "compiler compiler"]
    assert binary_answers(fasttext_binary, copy, lines, 4) == binary_answers(fasttext_binary, tiny_model, lines, 4)
    for line, answer in zip(lines, binary_answers(fasttext_binary, tiny_model, lines, 4)):
        ours = dict(model.predict_prob(line, 4))
        assert max(abs(answer[label] - ours[label]) for label in answer) <= 1e-4


def test_a_temperature_scales_every_score_in_the_file(tiny_model, tmp_path, fasttext_binary):
    model = read_model(tiny_model)
    cooler = calibration.with_temperature(model, 0.25)
    path = tmp_path / "cool.bin"
    write_model(cooler, path)
    lines = ["python script module", "sound music player mp3"]
    np.testing.assert_allclose(cooler.scores(lines), 0.25 * model.scores(lines), rtol=1e-5, atol=1e-6)
    for line, answer in zip(lines, binary_answers(fasttext_binary, path, lines, 4)):
        ours = dict(cooler.predict_prob(line, 4))
        assert max(abs(answer[label] - ours[label]) for label in answer) <= 1e-4


def test_quantized_within_the_budget_the_binary_still_serves_it(linear_models, debian_sample, tmp_path,
                                                               fasttext_binary):
    model = linear_models["rank 20"]
    budget = model.file_bytes() // 8
    setting = size_budget.setting_within(model, budget)
    train_file = tmp_path / "train.txt"
    train_file.write_text("__label__x unused\n")
    dense = tmp_path / "dense.bin"
    write_model(model, dense)
    quantized = size_budget.quantize_within(dense, tmp_path / "q.bin", setting, budget, train_file, threads=1)
    assert quantized.stat().st_size <= budget
    lines = [clean_text(e.text) for e in debian_sample[1][:50]]
    exact = [dict(model.predict_prob(line, 5)) for line in lines]
    served = binary_answers(fasttext_binary, quantized, lines, 5)
    top_agrees = sum(max(a, key=a.get) == max(s, key=s.get) for a, s in zip(exact, served))
    assert top_agrees >= 0.8 * len(lines)


@pytest.mark.parametrize("qout", [False, True])
def test_rescaling_a_quantized_files_output_scales_every_score(qout, tmp_path, fasttext_binary):
    # 300 labels over a few words, so that -qout has the 256 rows its quantizer needs.
    rng = np.random.default_rng(0)
    vocab = Vocabulary([EOS] + [f"w{i}" for i in range(40)], bucket=512)
    model = FastTextModel(vocab, [f"t{i}" for i in range(300)], rng.normal(0, 1, (vocab.rows, 8)),
                          rng.normal(0, 1, (300, 8)))
    dense = tmp_path / "m.bin"
    write_model(model, dense)
    train = tmp_path / "train.txt"
    train.write_text("__label__x unused\n")
    options = {"cutoff": 300, "dsub": 2, "qnorm": True, "qout": qout}
    quantized = size_budget.quantize_within(dense, tmp_path / "q.bin", options, 10**7, train, threads=1)
    lines = ["w1 w2 w3", "w7 w7 w30"]
    before = binary_answers(fasttext_binary, quantized, lines, 300)
    calibration.rescale_output(quantized, 300, 8, 0.5)
    after = binary_answers(fasttext_binary, quantized, lines, 300)
    for b, a in zip(before, after):
        labels = [label for label, p in b.items() if 0.05 < p < 0.95]
        assert len(labels) > 20
        got = calibration.logits(np.array([a[label] for label in labels]))
        want = 0.5 * calibration.logits(np.array([b[label] for label in labels]))
        assert np.abs(got - want).max() < 0.07  # the sigmoid table's steps are 1/32 wide


def test_rescaling_refuses_a_file_whose_end_is_not_an_output_matrix(tmp_path, tiny_model):
    with pytest.raises(ValueError, match="neither dense nor"):
        calibration.rescale_output(tiny_model, 3, 10, 0.5)


def test_fasttext_hashes_as_its_dictionary_does():
    # FNV-1a over bytes, each sign-extended: values computed by hand from the definition.
    assert token_hash("") == 2166136261
    assert token_hash("a") == ((2166136261 ^ 0x61) * 16777619) & 0xFFFFFFFF
    assert token_hash("é") == ((((2166136261 ^ 0xFFFFFFC3) * 16777619) & 0xFFFFFFFF ^ 0xFFFFFFA9) * 16777619) & 0xFFFFFFFF


def test_line_ids_are_words_then_eos_then_pairs_and_unknown_words_only_pair():
    vocab = Vocabulary([EOS, "a", "b"], bucket=1000)
    ids = vocab.line_ids("a zz b")
    assert ids[:3] == [1, 2, 0]
    assert len(ids) == 3 + 3 and all(3 <= i < 1003 for i in ids[3:])
    assert vocab.line_ids("") == [0]


def test_sigmoid_table_and_printing_follow_fasttext():
    assert table_sigmoid(np.array([-9.0, 9.0, 8.0, 0.0])).tolist() == [0.0, 1.0, float(SIGMOID_TABLE[512]),
                                                                      float(SIGMOID_TABLE[256])]
    assert printed_probability(1.0) == 1.0 and printed_probability(0.0) == 0.0
    assert printed_probability(0.5) == 0.5


def test_a_model_whose_shapes_disagree_is_refused():
    vocab = Vocabulary([EOS, "a"], bucket=4)
    with pytest.raises(ValueError, match="rows"):
        FastTextModel(vocab, ["x"], np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="output"):
        FastTextModel(vocab, ["x"], np.zeros((6, 3)), np.zeros((2, 3)))


def test_reading_refuses_files_it_cannot_read(tmp_path, tiny_model, fasttext_binary):
    not_a_model = tmp_path / "x.bin"
    not_a_model.write_bytes(gzip.compress(b"hello"))
    with pytest.raises(ModelFileError, match="not a fastText"):
        read_model(not_a_model)
    train = tmp_path / "train.txt"
    train.write_text("__label__x a\n")
    prefix = tmp_path / "tiny"
    (tmp_path / "tiny.bin").write_bytes(tiny_model.read_bytes())
    subprocess.run([str(fasttext_binary), "quantize", "-input", str(train), "-output", str(prefix), "-dsub", "1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with pytest.raises(ModelFileError, match="quantized"):
        read_model(prefix.with_suffix(".ftz"))
