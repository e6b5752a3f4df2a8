"""The validation split as every candidate is scored on it: calibrated answers, P@k, R@k, the
calibration error, and the criterion that ranks candidates."""

from pathlib import Path

import numpy as np

from recommender import MAX_K
from text_cleaning import clean_text
from training import calibration
from training import fasttext_cli as ft
from training import metrics as mt
from training.dataset import Example
from training.model_file import FastTextModel, table_sigmoid

PREDICT_K = MAX_K  # the deepest answer callers can ask the endpoint for
# Texts whose answers the quantized model's temperature is fitted again on.
TEMPERATURE_TEXTS = 2_000


def criterion(scores: dict) -> float:
    """How candidates are ranked: the mean of validation P@1 and R@5, with calibrated probabilities."""
    return (scores["p_at_1"] + scores["r_at_5"]) / 2


class Validation:
    """The validation split as every candidate is scored on it."""

    def __init__(self, examples: list[Example], build: Path, binary: Path):
        self.examples = examples
        self.lines = [clean_text(e.text) for e in examples]
        self.gold = [e.labels for e in examples]
        self.binary = binary
        self.text_file, self.labelled_file = build / "valid.text.txt", build / "valid.txt"
        ft.write_text_file(examples, self.text_file)
        ft.write_training_file(examples, self.labelled_file)

    def truth(self, labels: list[str]) -> np.ndarray:
        index = {label: i for i, label in enumerate(labels)}
        y = np.zeros((len(self.gold), len(labels)), dtype=np.float32)
        for i, tags in enumerate(self.gold):
            y[i, [index[t] for t in tags if t in index]] = 1
        return y

    def calibrated(self, model: FastTextModel) -> tuple[float, dict, list]:
        """The temperature fitted here, and the scores and answers of the model scaled by it."""
        scores = model.scores(self.lines)
        temperature = calibration.fit_temperature(scores, self.truth(model.labels))
        predictions = self.top_answers(model.labels, table_sigmoid(scores * temperature))
        uncalibrated = mt.calibration(self.gold, self.top_answers(model.labels, table_sigmoid(scores)))["ece"]
        return temperature, {**self.scored(predictions), "ece_top5_uncalibrated": uncalibrated}, predictions

    @staticmethod
    def top_answers(labels: list[str], probabilities: np.ndarray) -> list:
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :PREDICT_K]
        return [[(labels[j], float(probabilities[i, j])) for j in row] for i, row in enumerate(top)]

    def scored(self, predictions: list) -> dict:
        return {**mt.headline(self.gold, predictions), "ece_top5": mt.calibration(self.gold, predictions)["ece"],
                "texts_tied_at_1": sum(1 for answer in predictions if len(answer) > 1 and answer[1][1] >= 1.0)}

    def answers(self, model_file: Path, k: int = PREDICT_K) -> list:
        return ft.predict_prob(self.binary, model_file, self.text_file, k)

    def file_temperature(self, model_file: Path) -> float:
        """The temperature of a model file's own top-PREDICT_K answers on the first TEMPERATURE_TEXTS
        validation texts, fitted as for the candidates on the scores behind the printed probabilities
        (only the top answers: below -8 fastText prints 0 for every label, which no scale moves)."""
        n = min(len(self.lines), TEMPERATURE_TEXTS)
        sample = self.text_file.with_name("temperature.text.txt")
        sample.write_text("".join(line + "\n" for line in self.lines[:n]), encoding="utf-8")
        answers = ft.predict_prob(self.binary, model_file, sample, PREDICT_K)
        k = min(len(answer) for answer in answers)
        p = np.array([[probability for _, probability in answer[:k]] for answer in answers])
        y = np.array([[label in set(gold) for label, _ in answer[:k]] for answer, gold in zip(answers, self.gold)],
                     dtype=np.float32)
        return calibration.fit_temperature(calibration.logits(p), y)
