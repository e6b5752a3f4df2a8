"""Calibrated probabilities: one temperature on the output matrix, fitted on validation (and once
more on the quantized model, whose rounding moves the scores).

Scaling the output matrix by t turns every score s into t * s, so the file holds the
calibration exactly and the binary serves it unchanged. t is fitted to the binary log loss
of every (text, label) pair under fastText's own table sigmoid, whose clipping at |s| > 8 is
what makes an over-confident model tie its best hashtags at 1.0.
"""

import math
import struct
from pathlib import Path

import numpy as np

from training.model_file import MAX_SIGMOID, FastTextModel, table_sigmoid

_LOW, _HIGH = math.log(0.01), math.log(10.0)
_MAX_PAIRS = 20_000_000  # (text, label) pairs the fit looks at; more are sampled down


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The t minimising the log loss of table_sigmoid(t * scores) against y (0/1), p floored at 1e-5
    as fastText's log is; a golden-section search over log t in [0.01, at most 10], capped so that
    the second-best hashtag of the median text stays below the table's clipping at 8 (past it
    hashtags tie at 1.0 and a threshold cannot tell them apart)."""
    high = min(_HIGH, math.log(saturation_cap(scores)))
    if scores.size > _MAX_PAIRS:
        rows = np.random.default_rng(0).choice(scores.shape[0], _MAX_PAIRS // scores.shape[1], replace=False)
        scores, y = scores[rows], y[rows]

    def loss(log_t: float) -> float:
        p = table_sigmoid(scores * math.exp(log_t)).astype(np.float64)
        return -float(np.mean(y * np.log(p + 1e-5) + (1 - y) * np.log(1 - p + 1e-5)))

    low = min(_LOW, high)
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = high - golden * (high - low), low + golden * (high - low)
        if loss(a) < loss(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def saturation_cap(scores: np.ndarray) -> float:
    """The largest t for which t x the median text's second-best score is at most 8. (Capping at
    99% of the texts instead shrank the Debian model's scores to a sixth, which lifted every
    unrelated hashtag to 0.1-0.2 and made low thresholds useless.)"""
    if scores.shape[1] < 2:
        return math.exp(_HIGH)
    second = np.partition(scores, -2, axis=1)[:, -2]
    top = float(np.median(second))
    return MAX_SIGMOID / top if top > 0 else math.exp(_HIGH)


def with_temperature(model: FastTextModel, t: float) -> FastTextModel:
    """The same model with its output matrix scaled by t."""
    return FastTextModel(model.vocabulary, model.labels, model.input, model.output * np.float32(t), model.label_counts)


_NORM_CODEBOOK = struct.Struct("<4i")  # dim, nsubq, dsub, lastdsub of a 1-dimension quantizer
_DENSE_HEADER = struct.Struct("<2q")


def rescale_output(path: Path, labels: int, dim: int, factor: float) -> None:
    """Scale the output matrix of a model file in place by `factor`: every score times `factor`.

    The output matrix is the end of the file: dense (qout false, rows, cols, then the floats), or,
    quantized with -qnorm, product-quantized directions times norms whose 256-entry codebook ends
    the file. Either way the floats scaled are the last ones, checked against what precedes them."""
    with open(path, "r+b") as f:
        size = f.seek(0, 2)
        dense = labels * dim * 4
        f.seek(size - dense - _DENSE_HEADER.size - 1)
        head = f.read(1 + _DENSE_HEADER.size)
        if head[0] == 0 and _DENSE_HEADER.unpack(head[1:]) == (labels, dim):
            count = labels * dim
        else:
            f.seek(size - 256 * 4 - _NORM_CODEBOOK.size)
            if _NORM_CODEBOOK.unpack(f.read(_NORM_CODEBOOK.size)) != (1, 1, 1, 1):
                raise ValueError(f"{path}: the output matrix is neither dense nor quantized with its norms apart")
            count = 256
        f.seek(size - 4 * count)
        floats = np.frombuffer(f.read(4 * count), dtype="<f4") * np.float32(factor)
        f.seek(size - 4 * count)
        f.write(floats.astype("<f4").tobytes())


def logits(probabilities: np.ndarray) -> np.ndarray:
    """The scores behind printed probabilities (fastText prints 6 digits; 0 and 1 are clipped)."""
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))
