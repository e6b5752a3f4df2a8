"""Calibrated probabilities: one temperature on the output matrix, fitted on validation texts not used
to choose the candidate, on the exact scores of the file as it will be written.

Scaling the output matrix by t turns every score s into t * s (training/model_file.py
`with_output_scale`), so the file holds the calibration exactly and the binary serves it unchanged.
t is fitted to the binary log loss of every (text, label) pair under fastText's own table sigmoid,
whose clipping at |s| > 8 is what makes an over-confident model tie its best hashtags at 1.0.
"""

import math

import numpy as np

from training.model_file import MAX_SIGMOID, table_sigmoid

_LOW, _HIGH = math.log(0.01), math.log(10.0)
_MAX_PAIRS = 20_000_000  # (text, label) pairs the fit looks at; more are sampled down


def fit_temperature(scores: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """The t minimising the log loss of table_sigmoid(t * scores) against y (0/1), p floored at 1e-5
    as fastText's log is; a golden-section search over log t in [0.01, at most 10], capped so that
    the second-best hashtag of the median text stays below the table's clipping at 8 (past it
    hashtags tie at 1.0 and a threshold cannot tell them apart)."""
    high = min(_HIGH, math.log(saturation_cap(scores)))
    if scores.size > _MAX_PAIRS:
        rows = np.random.default_rng(seed).choice(scores.shape[0], _MAX_PAIRS // scores.shape[1], replace=False)
        scores, y = scores[rows], y[rows]

    def loss(log_t: float) -> float:
        p = table_sigmoid(scores * np.float32(math.exp(log_t))).astype(np.float64)
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


def scale_ratio(before: np.ndarray, after: np.ndarray) -> float:
    """How much smaller `after`'s scores run than `before`'s on the same texts: the ratio of the
    medians of each text's best score. A refit's temperature is the fitted one times this, found
    without labels (both models were trained on the texts compared)."""
    top_before, top_after = float(np.median(before.max(axis=1))), float(np.median(after.max(axis=1)))
    return top_before / top_after if top_before > 0 and top_after > 0 else 1.0
