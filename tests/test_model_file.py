"""Model files written by training/model_file.py (through fasttext_format) are served unchanged by the
bundled binary, which answers them exactly as the Python model does: dense, quantized, pruned, with a
quantized output, with a temperature; and fastText's own files are read and written back byte for byte."""

import gzip
import subprocess
from collections import Counter
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

import fasttext_format as ff
from fasttext_process import parse_answer
from support import fasttext_quantize, write_tiny_training_file
from text_cleaning import clean_text
from training.dataset import read_examples
from training.fasttext_features import EOS, Vocabulary, token_hash
from training.model_file import (
    SIGMOID_TABLE,
    FastTextModel,
    ModelFileError,
    QuantizedMatrix,
    largest_rows,
    printed_probability,
    quantize,
    quantize_matrix,
    quantized_bytes,
    read_model,
    table_sigmoid,
    write_model,
)

ROOT = Path(__file__).resolve().parent.parent
LABELS = 40


def binary_answers(binary: Path, model: Path, lines: list[str], k: int = -1) -> list[dict]:
    result = subprocess.run([str(binary), "predict-prob", str(model), "-", str(k)], check=True,
                            input="".join(line + "\n" for line in lines).encode(), stdout=subprocess.PIPE)
    return [dict(parse_answer(line)) for line in result.stdout.decode().splitlines()]


def worst_difference(binary: Path, path: Path, model: FastTextModel, lines: list[str]) -> float:
    """The largest difference between a probability the binary prints for the file and the model's,
    over every label of every line (each answer must name every label)."""
    answers = binary_answers(binary, path, lines)
    assert len(answers) == len(lines)
    worst = 0.0
    for line, answer in zip(lines, answers):
        ours = dict(model.predict_prob(line, -1))
        assert answer.keys() == ours.keys() == set(model.labels)
        worst = max(worst, max(abs(answer[label] - ours[label]) for label in answer))
    return worst


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
def debian():
    """400 real Debian descriptions to build models from, and 250 unseen ones plus the hard lines."""
    examples = list(islice(read_examples(ROOT / "data" / "valid.tsv.gz"), 650))
    fit, unseen = examples[:400], examples[400:]
    lines = [clean_text(e.text) for e in unseen] + hard_lines(unseen)
    assert len(lines) >= 200 and any(len(line) > 15_000 for line in lines) and "" in lines
    return fit, lines


@pytest.fixture(scope="module")
def linear_models(debian):
    """Linear-style models learned from the descriptions: each label's input column the centred
    indicator of its texts' ids (plus noise, so that every row counts), with an identity output
    (dim = labels), and its best rank-8 factorisation."""
    fit, _ = debian
    lines = [clean_text(e.text) for e in fit]
    vocab = Vocabulary.from_lines(lines, bucket=3000, min_lines=2)
    tags = [tag for tag, _ in Counter(t for e in fit for t in e.labels).most_common(LABELS)]
    y = np.array([[tag in e.labels for tag in tags] for e in fit], dtype=np.float64)
    features = vocab.features(lines)
    weights = np.asarray(features.T @ (y - y.mean(axis=0)))
    weights *= 3 / np.std(features @ weights)
    rng = np.random.default_rng(1)
    weights = (weights + rng.normal(0, 0.05 * np.abs(weights).max(), weights.shape)).astype(np.float32)
    full = FastTextModel(vocab, tags, weights, np.eye(LABELS, dtype=np.float32), [5] * LABELS)
    u, s, vt = np.linalg.svd(weights, full_matrices=False)
    low = FastTextModel(vocab, tags, u[:, :8] * s[:8], vt[:8].T)
    return {"linear full rank": full, "linear rank 8": low}


@pytest.fixture(scope="module")
def models(linear_models, tiny_model):
    return {**linear_models, "fastText-trained": read_model(tiny_model)}


VARIANTS = {
    "dense": lambda m: m,
    "dsub 1": lambda m: quantize(m, dsub=1),
    "dsub 2": lambda m: quantize(m, dsub=2),
    "dsub 3, no qnorm": lambda m: quantize(m, dsub=3, qnorm=False),
    "pruned": lambda m: quantize(m, keep=largest_rows(m, m.vocabulary.rows // 4), dsub=1),
    "pruned, qout": lambda m: quantize(m, keep=largest_rows(m, m.vocabulary.rows // 2), dsub=2, qout=True),
    "dense, temperature": lambda m: m.with_output_scale(1.7),
    "qout, temperature": lambda m: quantize(m, dsub=1, qout=True).with_output_scale(0.6),
    "qout without qnorm, temperature": lambda m: quantize(m, dsub=2, qnorm=False, qout=True).with_output_scale(0.6),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", ["linear full rank", "linear rank 8", "fastText-trained"])
def test_the_binary_answers_a_written_model_as_the_python_model(name, variant, models, debian, tmp_path,
                                                                 fasttext_binary):
    model = VARIANTS[variant](models[name])
    _, lines = debian
    path = tmp_path / "model.bin"
    write_model(model, path)
    assert path.stat().st_size == model.file_bytes()
    assert worst_difference(fasttext_binary, path, model, lines) <= 1e-4
    # The fast scores are the exact ones but for float32 rounding.
    exact, fast = model.scores(lines, exact=True), model.scores(lines)
    assert np.abs(exact - fast).max() <= 1e-4 * max(1.0, np.abs(exact).max())


@pytest.mark.parametrize("output", ["quantized", "dense"])
def test_the_order_of_float32_operations_is_fasttexts(output, tmp_path, fasttext_binary):
    """Scores that cancel: hidden components of ~1e5 whose products with each output row nearly
    cancel, so that float32 rounding in any other order than fastText's (products summed one by one,
    then times the norm, in ProductQuantizer::mulcode; summed one by one in DenseMatrix::dotRow)
    moves scores by tenths. The binary answers as model.scores(exact=True) computes, not as float64."""
    rng = np.random.default_rng(0)
    dim, labels = 8, 256
    hidden = (rng.choice([-1, 1], dim) * rng.uniform(1e5, 2e5, dim)).astype(np.float32)
    directions = rng.uniform(-1, 1, (labels, dim))
    directions[:, -1] = -(directions[:, :-1] @ hidden[:-1]) / hidden[-1]
    directions = directions.astype(np.float32)
    norms = rng.uniform(0.05, 3, labels).astype(np.float32)
    # The empty line averages `</s>` alone, so the hidden vector is its row (coded exactly: 2 rows).
    rows = quantize_matrix(np.stack([hidden, np.zeros(dim, np.float32)]), dsub=1, qnorm=False, rng=rng)
    weights = QuantizedMatrix(np.arange(labels, dtype=np.uint8)[:, None], directions, dsub=dim,
                              norm_codes=np.arange(labels, dtype=np.uint8), norm_centroids=norms)
    if output == "dense":
        weights = weights.decode()
    model = FastTextModel(Vocabulary([EOS], bucket=1), [f"t{i}" for i in range(labels)], rows, weights)
    path = tmp_path / "cancelling.bin"
    write_model(model, path)
    assert worst_difference(fasttext_binary, path, model, [""]) <= 1e-4
    served = binary_answers(fasttext_binary, path, [""])[0]
    in_float64 = table_sigmoid(hidden.astype(np.float64) @ model.output.decode().T.astype(np.float64)
                               if output == "quantized" else hidden.astype(np.float64) @ weights.T.astype(np.float64))
    assert max(abs(served[f"t{i}"] - float(in_float64[i])) for i in range(labels)) > 0.01


def test_the_written_file_is_what_the_model_says(models, tmp_path):
    model = quantize(models["linear rank 8"], keep=largest_rows(models["linear rank 8"], 500), dsub=2, qout=True)
    path = tmp_path / "q.bin"
    write_model(model, path)
    header = ff.read_header(path)
    assert (header.dim, header.words, header.labels) == (8, len(model.vocabulary.words), model.labels)
    assert header.quantized and header.pruned and header.args == model.args
    layout = ff.read_model_file(path)
    assert layout.input.pq.dsub == 2 and layout.input.qnorm and layout.output.pq.dsub == 2
    assert layout.dictionary.pruneidx == model.vocabulary.pruned and len(layout.dictionary.pruneidx) > 0


def test_a_pruned_file_is_answered_as_pruned_not_as_the_model_it_came_from(models, debian, tmp_path,
                                                                           fasttext_binary):
    model = models["linear full rank"]
    keep = largest_rows(model, model.vocabulary.rows // 4)
    pruned = quantize(model, keep=keep, dsub=1)
    _, lines = debian
    # Its stand-in: the same model unpruned, the rows not kept zeroed, every id still counted in n.
    zeroed = np.zeros_like(model.input)
    zeroed[keep] = model.input[keep]
    stand_in = FastTextModel(model.vocabulary, model.labels, zeroed, model.output)
    assert np.median(np.abs(pruned.scores(lines, exact=True) - stand_in.scores(lines, exact=True))) > 0.05
    path = tmp_path / "pruned.bin"
    write_model(pruned, path)
    assert worst_difference(fasttext_binary, path, pruned, lines) <= 1e-4
    assert worst_difference(fasttext_binary, path, stand_in, lines) > 0.05


def test_fasttext_files_read_and_written_back_are_byte_identical_and_answered_exactly(tiny_model, debian, tmp_path,
                                                                                     fasttext_binary):
    _, lines = debian
    files = {
        "dense": tiny_model,
        "quantized, pruned, qnorm": fasttext_quantize(fasttext_binary, tiny_model, tmp_path / "a", "-cutoff", "300",
                                                      "-dsub", "2", "-qnorm"),
        "quantized, dsub 1": fasttext_quantize(fasttext_binary, tiny_model, tmp_path / "b", "-dsub", "1"),
    }
    for name, path in files.items():
        model = read_model(path)
        copy = tmp_path / f"copy of {path.name}"
        write_model(model, copy)
        assert copy.read_bytes() == path.read_bytes(), name
        assert model.file_bytes() == path.stat().st_size, name
        assert worst_difference(fasttext_binary, path, model, lines) <= 1e-4, name
    assert read_model(files["quantized, pruned, qnorm"]).vocabulary.rows == 300


def test_our_quantized_files_read_back_are_the_same_model(models, tmp_path):
    model = quantize(models["linear full rank"], keep=largest_rows(models["linear full rank"], 900), dsub=2,
                     qout=True).with_output_scale(0.5)
    path, copy = tmp_path / "q.bin", tmp_path / "copy.bin"
    write_model(model, path)
    again = read_model(path)
    write_model(again, copy)
    assert copy.read_bytes() == path.read_bytes()
    assert again.vocabulary.pruned == model.vocabulary.pruned and again.args == model.args
    assert np.array_equal(again.input.codes, model.input.codes)


def test_word_ngrams_above_two_follow_fasttext(tmp_path, debian, fasttext_binary):
    train = tmp_path / "train.txt"
    write_tiny_training_file(train)
    subprocess.run([str(fasttext_binary), "supervised", "-input", str(train), "-output", str(tmp_path / "m"),
                    "-dim", "10", "-loss", "ova", "-wordNgrams", "3", "-bucket", "500", "-epoch", "5",
                    "-thread", "1", "-verbose", "0", "-seed", "1"], check=True)
    model = read_model(tmp_path / "m.bin")
    assert model.args.wordNgrams == 3 and model.vocabulary.word_ngrams == 3
    _, lines = debian
    assert worst_difference(fasttext_binary, tmp_path / "m.bin", model, lines[:60] + ["python pip module"]) <= 1e-4


def test_the_size_of_a_quantized_file_is_predicted_without_quantizing(models):
    for model in models.values():
        for rows, dsub, qnorm, qout in [(300, 1, True, False), (10**9, 2, True, True), (1000, 3, False, True)]:
            kept = largest_rows(model, rows) if rows < model.vocabulary.rows else None
            quantized = quantize(model, keep=kept, dsub=dsub, qnorm=qnorm, qout=qout)
            assert quantized_bytes(model, rows, dsub, qnorm, qout) == quantized.file_bytes()


@pytest.mark.parametrize("variant", ["dense", "dsub 2", "dsub 3, no qnorm", "qout, temperature",
                                     "qout without qnorm, temperature"])
def test_an_output_scale_multiplies_every_score(variant, models, debian):
    model = VARIANTS[variant](models["linear rank 8"])
    lines = debian[1][:50]
    scaled = model.with_output_scale(0.25)
    np.testing.assert_allclose(scaled.scores(lines, exact=True), 0.25 * model.scores(lines, exact=True),
                               rtol=1e-5, atol=1e-5)
    assert scaled.input is model.input


def test_files_fasttext_would_misread_are_refused(models, tmp_path):
    model = models["linear rank 8"]
    pruned = quantize(model, keep=largest_rows(model, 500))
    dense_pruned = FastTextModel(pruned.vocabulary, model.labels, pruned.input.decode(), model.output)
    with pytest.raises(ValueError, match="pruned dictionary needs a quantized input"):
        write_model(dense_pruned, tmp_path / "x.bin")
    qout_only = FastTextModel(model.vocabulary, model.labels, model.input, quantize(model, qout=True).output)
    with pytest.raises(ValueError, match="quantized output matrix needs a quantized input"):
        write_model(qout_only, tmp_path / "y.bin")


def test_reading_refuses_files_it_cannot_read(tmp_path, tiny_model):
    not_a_model = tmp_path / "x.bin"
    not_a_model.write_bytes(gzip.compress(b"hello"))
    with pytest.raises(ModelFileError, match="not a fastText"):
        read_model(not_a_model)
    data = tiny_model.read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[:-7])
    with pytest.raises(ModelFileError, match="past its end|ends too soon"):
        read_model(cut)
    subwords = tmp_path / "subwords.bin"
    maxn = 8 + 10 * 4  # magic, version, then the args' 11th int32
    subwords.write_bytes(data[:maxn] + (3).to_bytes(4, "little") + data[maxn + 4:])
    with pytest.raises(ModelFileError, match="without subwords"):
        read_model(subwords)
    with pytest.raises(ff.FormatError, match="bad header"):
        ff.read_header(not_a_model)


def test_a_model_whose_shapes_or_args_disagree_is_refused():
    vocab = Vocabulary([EOS, "a"], bucket=4)
    with pytest.raises(ValueError, match="rows"):
        FastTextModel(vocab, ["x"], np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="output"):
        FastTextModel(vocab, ["x"], np.zeros((6, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="do not describe"):
        FastTextModel(vocab, ["x"], np.zeros((6, 3)), np.zeros((1, 3)), args=ff.Args(dim=3, bucket=4, wordNgrams=3))
    with pytest.raises(ValueError, match="product quantizer"):
        QuantizedMatrix(np.zeros((6, 2), np.uint8), np.zeros(3 * 256), dsub=1)


def test_fasttext_hashes_as_its_dictionary_does():
    # FNV-1a over bytes, each sign-extended: values computed by hand from the definition.
    assert token_hash("") == 2166136261
    assert token_hash("a") == ((2166136261 ^ 0x61) * 16777619) & 0xFFFFFFFF
    assert token_hash("é") == ((((2166136261 ^ 0xFFFFFFC3) * 16777619) & 0xFFFFFFFF ^ 0xFFFFFFA9) * 16777619) & 0xFFFFFFFF


def test_line_ids_are_words_then_eos_then_ngrams_and_unknown_words_only_pair():
    vocab = Vocabulary([EOS, "a", "b"], bucket=1000)
    ids = vocab.line_ids("a zz b")
    assert ids[:3] == [1, 2, 0]
    assert len(ids) == 3 + 3 and all(3 <= i < 1003 for i in ids[3:])
    assert vocab.line_ids("") == [0]
    trigrams = Vocabulary([EOS, "a", "b"], bucket=1000, word_ngrams=3).line_ids("a zz b")
    # By first token, then by length: (a zz), (a zz b), (zz b), (zz b </s>), (b </s>).
    assert trigrams[3] == ids[3] and trigrams[5] == ids[4] and trigrams[7] == ids[5] and len(trigrams) == 8
    assert Vocabulary([EOS, "a"], bucket=1000, word_ngrams=1).line_ids("a b") == [1, 0]


def test_a_pruned_vocabulary_keeps_only_the_buckets_it_kept():
    full = Vocabulary([EOS, "a", "b"], bucket=1000)
    buckets = [i - 3 for i in full.line_ids("a zz b")[3:]]
    pruned = Vocabulary([EOS, "b"], bucket=1000, pruned={buckets[2]: 0, buckets[0]: 1})
    assert pruned.rows == 4
    assert pruned.line_ids("a zz b") == [1, 0, 2 + 1, 2 + 0]  # `a` is unknown now; the middle pair has no row
    assert Vocabulary([EOS], bucket=1000, pruned={}).line_ids("a zz b") == [0]


def test_sigmoid_table_and_printing_follow_fasttext():
    assert table_sigmoid(np.array([-9.0, 9.0, 8.0, 0.0])).tolist() == [0.0, 1.0, float(SIGMOID_TABLE[512]),
                                                                      float(SIGMOID_TABLE[256])]
    assert printed_probability(1.0) == 1.0 and printed_probability(0.0) == 0.0
    assert printed_probability(0.5) == 0.5


def test_probabilities_of_a_loss_that_is_not_a_sigmoid_are_refused(models):
    model = models["linear rank 8"]
    softmax = FastTextModel(model.vocabulary, model.labels, model.input, model.output,
                            args=ff.Args(dim=8, bucket=3000, loss=ff.LOSSES["softmax"]))
    assert softmax.scores(["a b"]).shape == (1, LABELS)
    with pytest.raises(ValueError, match="softmax"):
        softmax.probabilities(["a b"])
