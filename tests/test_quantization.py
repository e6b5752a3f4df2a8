"""The product quantization of training/model_file.py: which rows it keeps, its codebooks and norms,
and what it costs in answers (that the binary answers its files exactly is tests/test_model_file.py's)."""

import numpy as np
import pytest

from support import TINY_TOPICS, fasttext_quantize
from training.fasttext_features import EOS
from training.model_file import (
    KSUB,
    FastTextModel,
    kmeans_1d,
    largest_rows,
    quantize,
    quantize_matrix,
    read_model,
)


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return read_model(tiny_model)


@pytest.fixture(scope="module")
def tiny_lines():
    """1,000 texts of the tiny model's topics: two topics' words each, some words of a third."""
    rng = np.random.default_rng(5)
    topics = [words.split() for words in TINY_TOPICS.values()]
    lines = []
    for _ in range(1000):
        chosen = rng.choice(len(topics), 3, replace=False)
        words = topics[chosen[0]] + topics[chosen[1]] + list(rng.choice(topics[chosen[2]], 2))
        lines.append(" ".join(rng.permutation(words)[:rng.integers(2, 9)]))
    return lines


def top1_changed(model: FastTextModel, other: FastTextModel, lines: list[str]) -> float:
    return float(np.mean(model.scores(lines, exact=True).argmax(axis=1) != other.scores(lines, exact=True).argmax(axis=1)))


def test_the_rows_kept_are_those_fasttext_quantize_keeps(tiny, tiny_model, tmp_path, fasttext_binary):
    theirs = read_model(fasttext_quantize(fasttext_binary, tiny_model, tmp_path / "q", "-cutoff", "300", "-qnorm",
                                           "-dsub", "1"))
    keep = largest_rows(tiny, 300)
    assert keep[0] == tiny.vocabulary.index[EOS] and len(keep) == 300
    ours = quantize(tiny, keep=keep)
    assert ours.vocabulary.words == theirs.vocabulary.words
    assert set(ours.vocabulary.pruned) == set(theirs.vocabulary.pruned)
    assert ours.file_bytes() == theirs.file_bytes()  # the same layout, sizes and all


def test_one_dimension_a_code_is_exact_for_dimensions_of_few_values():
    rng = np.random.default_rng(0)
    levels = rng.normal(0, 1, (KSUB, 6)).astype(np.float32)
    matrix = levels[rng.integers(0, KSUB, (5000, 6)), np.arange(6)]
    quantized = quantize_matrix(matrix, dsub=1, qnorm=False, rng=rng)
    assert np.array_equal(quantized.decode(), matrix)


@pytest.mark.parametrize("dsub", [2, 3])
def test_sub_quantizers_of_few_distinct_sub_vectors_are_exact(dsub):
    """A full-rank linear model's calibrated output, a x identity and a column b, codes exactly at any dsub."""
    labels = 600
    output = np.hstack([np.eye(labels, dtype=np.float32) * np.float32(0.7), np.full((labels, 1), -1.5, np.float32)])
    quantized = quantize_matrix(output, dsub=dsub, qnorm=False, rng=np.random.default_rng(0))
    assert np.array_equal(quantized.decode(), output)


def test_kmeans_1d_keeps_few_values_and_fits_many():
    assert kmeans_1d(np.array([3.0, 1.0, 1.0, 2.0]), k=4).tolist() == [1.0, 2.0, 3.0, 3.0]
    values = np.random.default_rng(1).lognormal(0, 2, 100_000)
    centroids = kmeans_1d(values)
    assert len(centroids) == KSUB and np.all(np.diff(centroids) >= 0)

    # Lloyd's fixed point: each centroid is (within 1%) the mean of the values nearest to it.
    nearest = np.abs(values[:, None] - centroids.astype(np.float64)[None, :]).argmin(axis=1)
    means = np.bincount(nearest, weights=values, minlength=KSUB) / np.maximum(np.bincount(nearest, minlength=KSUB), 1)
    used = np.bincount(nearest, minlength=KSUB) > 0
    assert np.all(np.abs(means[used] - centroids[used]) <= 0.01 * np.abs(centroids[used]))


@pytest.mark.parametrize("dsub", [1, 2, 3])
def test_norms_apart_keep_each_row_close_and_zero_rows_zero(dsub):
    rng = np.random.default_rng(2)
    matrix = (rng.normal(0, 1, (3000, 10)) * rng.lognormal(0, 1.5, (3000, 1))).astype(np.float32)
    matrix[::100] = 0
    quantized = quantize_matrix(matrix, dsub=dsub, qnorm=True, rng=rng)
    decoded = quantized.decode()
    assert np.all(decoded[::100] == 0)
    norms = np.linalg.norm(matrix, axis=1)
    relative = np.linalg.norm(decoded - matrix, axis=1)[norms > 0] / norms[norms > 0]
    assert np.median(relative) < {1: 0.05, 2: 0.3, 3: 0.45}[dsub]
    # The norm levels are spread in log scale: the largest row keeps its length.
    assert np.linalg.norm(decoded[norms.argmax()]) == pytest.approx(norms.max(), rel=0.05)


@pytest.mark.parametrize("dsub, error", [(2, 0.012), (3, 0.04)])
def test_sub_quantizers_are_fitted_not_just_sampled(dsub, error):
    """Gaussian rows, 256 centroids a sub-quantizer: the k-means's mean squared error (measured 0.009
    at dsub 2, 0.033 at dsub 3) is well below its start's, 256 sampled rows (0.019, 0.053)."""
    matrix = np.random.default_rng(4).normal(0, 1, (20000, 8)).astype(np.float32)
    quantized = quantize_matrix(matrix, dsub, False, np.random.default_rng(0))
    assert np.mean((quantized.decode() - matrix) ** 2) < error


def test_fewer_rows_than_centroids_are_coded_exactly(tiny):
    output = quantize(tiny, dsub=1, qout=True, out_dsub=2).output
    assert output.rows == len(tiny.labels) < KSUB
    np.testing.assert_allclose(output.decode(), tiny.output, rtol=1e-5, atol=1e-7)


def test_quantization_is_seeded():
    matrix = np.random.default_rng(3).normal(0, 1, (2000, 8)).astype(np.float32)
    first, again = (quantize_matrix(matrix, 2, True, np.random.default_rng(7)) for _ in range(2))
    other = quantize_matrix(matrix, 2, True, np.random.default_rng(8))
    assert np.array_equal(first.codes, again.codes) and np.array_equal(first.centroids, again.centroids)
    assert not np.array_equal(first.centroids, other.centroids)


def test_quantization_changes_few_answers_and_no_more_than_fasttexts(tiny, tiny_model, tiny_lines, tmp_path,
                                                                    fasttext_binary):
    """On the tiny fastText model, each setting's share of texts whose best label changes (measured:
    dsub 1 0%, dsub 2 0.4%, pruned to 300 rows 0.9%; fastText's own quantize -dsub 1 -qnorm 0.6%)."""
    fasttexts = read_model(fasttext_quantize(fasttext_binary, tiny_model, tmp_path / "q", "-dsub", "1", "-qnorm"))
    assert top1_changed(tiny, quantize(tiny, dsub=1), tiny_lines) <= max(0.01, top1_changed(tiny, fasttexts, tiny_lines))
    assert top1_changed(tiny, quantize(tiny, dsub=2), tiny_lines) <= 0.02
    assert top1_changed(tiny, quantize(tiny, keep=largest_rows(tiny, 300)), tiny_lines) <= 0.03
