"""Learners: each fits a supervised fastText model (training.model_file.FastTextModel) from the cleaned
lines of a training part, so that every model, whichever learner made it, is served by the same binary.

As Annif's backends: a learner is a class with a `name`, built with the run's `Options`, offering
- `candidates(shape)`: the configurations worth trying on data of this shape (each a Candidate), and
  a note saying what was decided and why;
- `fit(candidate, part, work)`: the model, fitted on `part` (training.prepare.Part), with `work` a
  directory of its own for intermediate files.
LEARNERS registers them by name; training/train.py asks the ones `--learner` names and knows no more.
"""

from training.errors import TrainingError
from training.learners.base import Candidate, DataShape, Options
from training.learners.fasttext_supervised import FastTextLearner
from training.learners.linear import LinearLearner

LEARNERS = {learner.name: learner for learner in (FastTextLearner, LinearLearner)}

__all__ = ["LEARNERS", "Candidate", "DataShape", "Options", "learners"]


def learners(names: list[str], options: Options) -> list:
    """The learners of these names, built with the run's options."""
    unknown = [name for name in names if name not in LEARNERS]
    if unknown:
        raise TrainingError(f"unknown learner {unknown[0]!r}; choose one of: {', '.join(LEARNERS)}")
    return [LEARNERS[name](options) for name in names]
