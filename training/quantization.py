"""Refit the norm codebook of a model that `fasttext quantize -qnorm` wrote, from the unquantized rows.

With -qnorm, fastText 0.9.3 stores each kept input row as a direction (product-quantized)
times a norm, and quantizes the norms with a 256-centroid k-means started from random
rows of a random sample. Row norms have a long tail: in the default model the end-of-line
token `</s>`, which every text uses, has norm ~29 against a median of ~0.9, and the k-means
gives the whole tail one centroid (11-16), so `</s>` and the most frequent words come back
15-60% too short. That costs about a point of P@1 (training/REPORT.md).

`refit_norms` keeps fastText's direction codes and replaces the norm codebook with 256
levels evenly spaced in log scale between the smallest and the largest norm, so every row's
norm is within half a step (0.8% in the default model) of the best scale for its quantized
direction. The file keeps its size
and format. The rows must be those fastText quantized: quantize without -retrain, which
changes them first.
"""

import math
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

REFIT_NORMS = "refit_norms"  # the preset's quantize key asking for refit_norms after fastText
_MAGIC = 793712314
_ARGS = struct.Struct("<12id")  # dim, ws, epoch, minCount, neg, wordNgrams, loss, model, bucket, minn, maxn, lrUpdateRate, t
_DICT_HEADER = struct.Struct("<iiiqq")  # size, nwords, nlabels, ntokens, pruneidx_size
_LEVELS = 256


def fasttext_options(qparams: dict | None) -> dict:
    """A preset's quantize parameters without `refit_norms` (not a fastText option), checked.

    refit_norms needs -qnorm (the norm codebook it refits) and no -retrain (which changes
    the rows after the unquantized model was saved).
    """
    qparams = dict(qparams or {})
    if qparams.pop(REFIT_NORMS, False) and (not qparams.get("qnorm") or qparams.get("retrain")):
        raise SystemExit(f"quantize option {REFIT_NORMS} needs qnorm and no retrain, not {qparams}")
    return qparams


class Dictionary(NamedTuple):
    words: list[str]  # the word entries (no labels), in row order
    pruned_buckets: list[int]  # kept n-gram buckets, in row order (empty when not pruned)
    end: int  # offset just past the dictionary
    bucket: int


def read_dictionary(data: bytes) -> Dictionary:
    """The words and kept n-gram buckets of a fastText model file's bytes."""
    magic, _version = struct.unpack_from("<ii", data, 0)
    if magic != _MAGIC:
        raise ValueError("not a fastText model")
    args = _ARGS.unpack_from(data, 8)
    offset = 8 + _ARGS.size
    size, nwords, _nlabels, _ntokens, prune_size = _DICT_HEADER.unpack_from(data, offset)
    offset += _DICT_HEADER.size
    words = []
    for i in range(size):
        end = data.index(b"\0", offset)
        if i < nwords:
            words.append(data[offset:end].decode("utf-8", "surrogateescape"))
        offset = end + 1 + 9  # the word, its NUL, int64 count, int8 type
    buckets = [0] * max(prune_size, 0)
    for _ in range(max(prune_size, 0)):
        bucket, row = struct.unpack_from("<ii", data, offset)
        buckets[row] = bucket
        offset += 8
    return Dictionary(words, buckets, offset, args[8])


def dense_input_rows(model: Path) -> tuple[Dictionary, np.ndarray]:
    """The dictionary and input matrix (memory-mapped) of an unquantized fastText .bin."""
    with open(model, "rb") as f:
        head = f.read(64 << 20)  # the dictionary of a 2M-bucket model is a few MB
    dictionary = read_dictionary(head)
    if dictionary.pruned_buckets or head[dictionary.end] != 0:
        raise ValueError(f"{model} is quantized or pruned: give the unquantized .bin")
    rows, dim = struct.unpack_from("<qq", head, dictionary.end + 1)
    matrix = np.memmap(model, dtype="<f4", mode="r", offset=dictionary.end + 17, shape=(rows, dim))
    return dictionary, matrix


class QuantizedInput(NamedTuple):
    rows: int
    dim: int
    codes: np.ndarray  # rows x nsubq
    centroids: np.ndarray  # flat, fastText's layout
    dsub: int
    lastdsub: int
    norm_codes_offset: int
    norm_centroids_offset: int


def quantized_input(data: bytes, dictionary: Dictionary) -> QuantizedInput:
    offset = dictionary.end
    if not data[offset]:
        raise ValueError("the model is not quantized")
    qnorm = data[offset + 1]
    rows, dim = struct.unpack_from("<qq", data, offset + 2)
    (codesize,) = struct.unpack_from("<i", data, offset + 18)
    offset += 22
    codes = np.frombuffer(data, np.uint8, codesize, offset)
    offset += codesize
    pq_dim, nsubq, dsub, lastdsub = struct.unpack_from("<iiii", data, offset)
    offset += 16
    centroids = np.frombuffer(data, "<f4", pq_dim * _LEVELS, offset)
    offset += 4 * pq_dim * _LEVELS
    if not qnorm:
        raise ValueError("the model was quantized without -qnorm: it has no norm codebook")
    norm_codes_offset = offset
    offset += rows + 16  # the norm codes, then the norm quantizer's dim, nsubq, dsub, lastdsub
    return QuantizedInput(rows, dim, codes.reshape(rows, nsubq), centroids, dsub, lastdsub,
                          norm_codes_offset, offset)


def decode_directions(q: QuantizedInput) -> np.ndarray:
    """The product-quantized unit directions of all rows (rows x dim)."""
    nsubq = q.codes.shape[1]
    out = np.empty((q.rows, q.dim), dtype=np.float32)
    for m in range(nsubq):
        width = q.lastdsub if m == nsubq - 1 else q.dsub
        table = q.centroids[m * _LEVELS * q.dsub: m * _LEVELS * q.dsub + _LEVELS * width].reshape(_LEVELS, width)
        out[:, m * q.dsub: m * q.dsub + width] = table[q.codes[:, m]]
    return out


def source_rows(quantized: Dictionary, dense: Dictionary) -> np.ndarray:
    """For each row of the quantized model, the row of the dense model it came from."""
    word_row = {word: i for i, word in enumerate(dense.words)}
    try:
        words = [word_row[word] for word in quantized.words]
    except KeyError as e:
        raise ValueError(f"the quantized model has the word {e.args[0]!r}, which the dense model has not") from None
    return np.array(words + [len(dense.words) + b for b in quantized.pruned_buckets], dtype=np.int64)


def log_levels(low: float, high: float) -> np.ndarray:
    return np.exp(np.linspace(math.log(low), math.log(high), _LEVELS)).astype(np.float32)


def refit_norms(dense_model: Path, quantized_model: Path) -> dict:
    """Rewrite the norm codes and codebook of `quantized_model` from `dense_model`'s rows; return a summary."""
    dense, matrix = dense_input_rows(dense_model)
    original = quantized_model.read_bytes()
    dictionary = read_dictionary(original)
    if dictionary.bucket != dense.bucket:
        raise ValueError("the two models have different -bucket values")
    q = quantized_input(original, dictionary)
    rows = np.asarray(matrix[source_rows(dictionary, dense)], dtype=np.float32)
    if rows.shape != (q.rows, q.dim):
        raise ValueError(f"the quantized model has {q.rows} x {q.dim} input rows, the dense model's give {rows.shape}")
    directions = decode_directions(q)
    # The scale that best fits each row to its quantized direction (its norm, when the direction is exact).
    scale = (rows * directions).sum(axis=1) / np.maximum((directions * directions).sum(axis=1), 1e-12)
    scale = np.maximum(scale, 1e-8)
    old_levels = np.frombuffer(original, "<f4", _LEVELS, q.norm_centroids_offset)
    old_scale = old_levels[np.frombuffer(original, np.uint8, q.rows, q.norm_codes_offset)]
    levels = log_levels(float(scale.min()), float(scale.max()))
    codes = np.abs(np.log(scale)[:, None] - np.log(levels)[None, :]).argmin(axis=1).astype(np.uint8)
    data = bytearray(original)
    data[q.norm_codes_offset: q.norm_codes_offset + q.rows] = codes.tobytes()
    data[q.norm_centroids_offset: q.norm_centroids_offset + 4 * _LEVELS] = levels.tobytes()
    quantized_model.write_bytes(bytes(data))
    return {
        "rows": q.rows,
        "largest_norm": float(scale.max()),
        "worst_relative_error_before": float(np.max(np.abs(old_scale - scale) / scale)),
        "worst_relative_error_after": float(np.max(np.abs(levels[codes] - scale) / scale)),
    }
