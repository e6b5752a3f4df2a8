"""What every learner shares: the data's shape, a candidate configuration, the run's options."""

import os
from collections.abc import Callable
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

@dataclass(frozen=True)
class Options:
    """What the command line asked of the learners."""

    threads: int = os.cpu_count() or 1
    size_budget: int = 10 * 2**20
    seed: int = 0
    forced: bool = False  # --learner names this learner alone: offer a candidate even past its time budget
    preset: str | None = None
    own_data: bool = True  # --train was given (the bundled Debian data otherwise)
    overrides: dict = field(default_factory=dict)  # fastText supervised options (--set)
    pretrain_overrides: dict = field(default_factory=dict)  # word-vector options (--pretrain-set)
    pretrain: bool = True
    pretrained_vectors: str | None = None
    log: Callable[[str], None] = print
