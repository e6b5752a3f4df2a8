"""The validation part as every candidate is scored on it: P@k, R@k, the calibration error, the
criterion that ranks candidates, and the two seeded halves that keep choosing apart from calibrating.

Scores are the Python scores of the model as it will be written (training/model_file.py), which
`fasttext predict-prob` gives too: no dense stand-in, no binary run per candidate. Half of the texts
(`select`) ranks candidates and quantization settings; the other half (`calibrate`) fits the
temperature, so the calibration error reported for a candidate is measured on texts it was not
fitted on.
"""

import numpy as np

from contract import MAX_K
from training import metrics as mt
from training.model_file import FastTextModel, table_sigmoid
from training.prepare import Part

PREDICT_K = MAX_K  # the deepest answer callers can ask the endpoint for


def criterion(scores: dict) -> float:
    """How candidates are ranked: the mean of validation P@1 and R@5."""
    return (scores["p_at_1"] + scores["r_at_5"]) / 2


class Validation:
    """The validation part, its halves, and its scores of a model."""

    def __init__(self, part: Part, seed: int = 0):
        self.part = part
        self.gold = part.gold
        order = np.random.default_rng(seed).permutation(len(part))
        half = len(part) // 2 if len(part) > 1 else 1
        self.select, self.calibrate = np.sort(order[:half]), np.sort(order[half:] if len(part) > 1 else order)
        self._truth: tuple[tuple, np.ndarray] | None = None

    def truth(self, labels: list[str]) -> np.ndarray:
        """(texts x labels) 1 where the label is one of the text's tags."""
        if self._truth is None or self._truth[0] != tuple(labels):
            index = {label: i for i, label in enumerate(labels)}
            y = np.zeros((len(self.gold), len(labels)), dtype=np.float32)
            for i, tags in enumerate(self.gold):
                y[i, [index[t] for t in tags if t in index]] = 1
            self._truth = (tuple(labels), y)
        return self._truth[1]

    def scores(self, model: FastTextModel) -> np.ndarray:
        """The model's scores of every validation text, before the sigmoid."""
        return model.scores(self.part.lines)

    def fit(self, fitter, labels: list[str], scores: np.ndarray):
        """`fitter(scores, truth)` on the calibration half (training.calibration's fits)."""
        return fitter(scores[self.calibrate], self.truth(labels)[self.calibrate])

    def scored(self, labels: list[str], scores: np.ndarray, rows: np.ndarray | None = None) -> tuple[dict, list]:
        """P@1, R@5, top-5 ECE ... of the answers the scores give (on `rows`, or every text), and the answers."""
        rows = np.arange(len(self.gold)) if rows is None else rows
        predictions = top_answers(labels, table_sigmoid(scores[rows]))
        return self.scored_answers(predictions, rows), predictions

    def scored_answers(self, predictions: list, rows: np.ndarray) -> dict:
        """P@1, R@5, top-5 ECE ... of answers (any model's, the baseline's too) to the texts `rows`."""
        gold = [self.gold[i] for i in rows]
        return {**mt.headline(gold, predictions), "ece_top5": mt.calibration(gold, predictions)["ece"],
                "texts_tied_at_1": sum(1 for answer in predictions if len(answer) > 1 and answer[1][1] >= 1.0),
                "texts": len(rows)}


def top_answers(labels: list[str], probabilities: np.ndarray, k: int = PREDICT_K) -> list:
    """Each text's k best (label, probability), best first, as predict-prob orders them."""
    k = min(k, probabilities.shape[1])
    top = np.argpartition(-probabilities, k - 1, axis=1)[:, :k]
    ordered = np.take_along_axis(top, np.argsort(-np.take_along_axis(probabilities, top, axis=1), axis=1,
                                                 kind="stable"), axis=1)
    return [[(labels[j], float(probabilities[i, j])) for j in row] for i, row in enumerate(ordered)]
