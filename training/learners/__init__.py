"""Learners: each fits a dense supervised fastText model (training.model_file.FastTextModel) from
cleaned lines, so that every model, whichever learner made it, is served by the same binary.

A learner module offers `candidates(data, options)`, the configurations worth trying on this
data (each a Candidate), and `fit(candidate, lines, gold, labels, work, options)`. train.py
scores every candidate on the validation split, keeps the best and refits it on all rows.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DataShape:
    """What the learners size themselves from."""

    examples: int
    labels: int
    tokens: int
    words: int
    bigrams: int
    recurring: int  # the words and pairs found in at least two lines


@dataclass
class Candidate:
    learner: str
    name: str
    params: dict = field(default_factory=dict)
