"""Thin wrappers around the bundled fastText CLI: training files, train, quantize, predict.

The lines are cleaned once, by training.prepare with `text_cleaning.clean_text`, the very function
the endpoint uses, so the model sees at training time exactly the lines it is asked at serving time.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from fasttext_format import LABEL_PREFIX
from fasttext_process import parse_answer
from text_cleaning import clean_text
from training.dataset import read_examples
from training.errors import TrainingError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = ROOT / "fasttext"
DEFAULT_TRAIN = ROOT / "data" / "train.tsv.gz"
DEFAULT_VALID = ROOT / "data" / "valid.tsv.gz"


def fasttext_binary() -> Path:
    """The fastText binary: $FASTTEXT_BINARY, else ./fasttext at the repository root."""
    path = Path(os.environ.get("FASTTEXT_BINARY") or DEFAULT_BINARY)
    if not path.is_file():
        raise TrainingError(f"fastText binary {path} is missing: run `make fasttext`")
    return path


def write_training_file(gold: Sequence[Sequence[str]], lines: Sequence[str], path: Path) -> None:
    """Cleaned lines and their labels in fastText's supervised format, `__label__a __label__b line`."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for labels, line in zip(gold, lines):
            f.write(" ".join(LABEL_PREFIX + label for label in labels) + " " + line + "\n")


def write_lines(lines: Iterable[str], path: Path) -> None:
    """Cleaned lines, one a line, as the endpoint sends them to predict-prob."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def corpus_lines(corpus: str) -> list[str]:
    """The cleaned texts of a further corpus for word vectors (a dataset file, relative to the repository)."""
    return [clean_text(e.text) for e in read_examples(ROOT / corpus)]


def params_to_args(params: dict) -> list[str]:
    """{"lr": 0.5, "loss": "ova"} -> ["-lr", "0.5", "-loss", "ova"] (None values dropped)."""
    args = []
    for name, value in params.items():
        if value is None:
            continue
        args += [f"-{name}", str(value)]
    return args


class FastTextFailed(TrainingError):
    """A fastText command ended with a failure status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status

    @property
    def aborted(self) -> bool:
        """fastText aborts (SIGABRT) on an uncaught exception, in training on a loss gone to NaN."""
        return self.status == -signal.SIGABRT


def run(cmd: Sequence[str], quiet: bool = False) -> float:
    """Run a fastText command, streaming its progress to stderr unless quiet; return seconds taken."""
    started = time.monotonic()
    result = subprocess.run(
        [str(c) for c in cmd],
        stdout=subprocess.PIPE if quiet else sys.stderr,
        stderr=subprocess.STDOUT if quiet else sys.stderr,
    )
    if result.returncode:
        output = result.stdout.decode("utf-8", "replace")[-4000:] if quiet and result.stdout else ""
        raise FastTextFailed(f"fastText failed with status {result.returncode}: {' '.join(map(str, cmd))}\n{output}",
                             result.returncode)
    return time.monotonic() - started


def train(binary: Path, train_file: Path, output_prefix: Path, params: dict, threads: int = 2,
          verbose: int = 2, quiet: bool = False) -> float:
    """`fasttext supervised`; writes OUTPUT_PREFIX.bin; returns seconds taken."""
    cmd = [binary, "supervised", "-input", train_file, "-output", output_prefix,
           *params_to_args(params), "-thread", str(threads), "-verbose", str(verbose)]
    return run(cmd, quiet=quiet)


def pretrain(binary: Path, text_file: Path, output_prefix: Path, pparams: dict, threads: int = 2,
             verbose: int = 2, quiet: bool = False) -> float:
    """`fasttext skipgram|cbow` word vectors on unlabelled text; writes OUTPUT_PREFIX.vec (and .bin).

    pparams: "model" ("skipgram" or "cbow") and the other options (dim, epoch, minCount, ...).
    Returns seconds taken.
    """
    pparams = dict(pparams)
    model = pparams.pop("model", "skipgram")
    cmd = [binary, model, "-input", text_file, "-output", output_prefix,
           *params_to_args(pparams), "-thread", str(threads), "-verbose", str(verbose)]
    return run(cmd, quiet=quiet)


def predict_prob(binary: Path, model: Path, text_file: Path, k: int) -> list[list[tuple[str, float]]]:
    """Top-k (label, probability) pairs for every line of `text_file`, in order."""
    result = subprocess.run(
        [str(binary), "predict-prob", str(model), str(text_file), str(k)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
    )
    if result.returncode:
        raise RuntimeError(f"fastText predict-prob failed: {result.stderr.decode('utf-8', 'replace')[-2000:]}")
    lines = result.stdout.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [parse_answer(line) for line in lines]
