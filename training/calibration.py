"""Calibrated probabilities a threshold can trust, held by the model file itself.

Two steps, both fitted on the calibration half of validation (texts not used to choose the
candidate), on each text's TOP_PAIRS best labels: the pairs an answer shows, which a fit over every
(text, label) pair, nearly all easy negatives, would barely look at (on 3,000 Debian texts it left
the top-5 ECE at 0.134; on the top pairs, 0.033):

1. An affine map a * score + b, fitted on the fitted model's scores, written into the model before
   it is quantized: the input matrix gains a dimension that is 1 in every row, so the line's average
   is 1 there too, and the output matrix gains the column b, next to its other columns times a.
2. A temperature t fitted on the exact scores of the file as it will be written (after quantization,
   which moves the scores a little): every score times t, held by the output matrix
   (FastTextModel.with_output_scale).
"""

import dataclasses
import math

import numpy as np

from training.model_file import FastTextModel, table_sigmoid

TOP_PAIRS = 10
_LOW, _HIGH = math.log(0.01), math.log(10.0)


def top_pairs(scores: np.ndarray, y: np.ndarray, k: int = TOP_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """Each text's k best scores and whether each is one of its tags."""
    k = min(k, scores.shape[1])
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, best, axis=1), np.take_along_axis(y, best, axis=1)


def fit_affine(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the log loss of sigmoid(a * score + b) on the top pairs, a in [0.01, 10]."""
    from scipy.optimize import minimize

    s, t = top_pairs(scores.astype(np.float64), y.astype(np.float64))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] * s + w[1]
        p = 1 / (1 + np.exp(-np.clip(z, -30, 30)))
        value = float(np.mean(np.logaddexp(0, z) - t * z))
        return value, np.array([np.mean((p - t) * s), np.mean(p - t)])

    fitted = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                      bounds=[(math.exp(_LOW), math.exp(_HIGH)), (-20, 20)])
    return float(fitted.x[0]), float(fitted.x[1])


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """The t minimising the log loss of fastText's table_sigmoid(t * score) on the top pairs, p
    floored at 1e-5 as fastText's log is; a golden-section search over log t in [0.01, 10]."""
    s, t_ = top_pairs(scores, y)

    def loss(log_t: float) -> float:
        p = table_sigmoid(s * np.float32(math.exp(log_t))).astype(np.float64)
        return -float(np.mean(t_ * np.log(p + 1e-5) + (1 - t_) * np.log(1 - p + 1e-5)))

    low, high = _LOW, _HIGH
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = high - golden * (high - low), low + golden * (high - low)
        if loss(a) < loss(b):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def with_affine(model: FastTextModel, a: float, b: float) -> FastTextModel:
    """The dense model answering a * score + b: a dimension that is 1 in every input row, b in every
    output row, the other output columns times a."""
    rows, labels = model.vocabulary.rows, len(model.labels)
    input_ = np.empty((rows, model.dim + 1), dtype=np.float32)
    input_[:, :-1] = model.input
    input_[:, -1] = 1
    output = np.empty((labels, model.dim + 1), dtype=np.float32)
    output[:, :-1] = model.output * np.float32(a)
    output[:, -1] = b
    return dataclasses.replace(model, input=input_, output=output, args=dataclasses.replace(model.args, dim=model.dim + 1))


def median_best_score(model: FastTextModel, lines: list[str]) -> float:
    """The median over the lines of each line's best score: how large a model's scores run."""
    return float(np.median(model.scores(lines).max(axis=1)))
