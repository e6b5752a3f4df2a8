"""Thin wrappers around the bundled fastText CLI: training files, train, quantize, predict.

Training text goes through `text_cleaning.clean_text`, the very function the endpoint
uses, so the model sees at training time exactly the lines it is asked at serving time.
"""

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from fasttext_process import LABEL_PREFIX, parse_answer
from text_cleaning import clean_text
from training.dataset import Example

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BINARY = ROOT / "fasttext"
DEFAULT_TRAIN = ROOT / "data" / "train.tsv.gz"
DEFAULT_VALID = ROOT / "data" / "valid.tsv.gz"


def fasttext_binary() -> Path:
    """The fastText binary: $FASTTEXT_BINARY, else ./fasttext at the repository root."""
    path = Path(os.environ.get("FASTTEXT_BINARY") or DEFAULT_BINARY)
    if not path.is_file():
        raise SystemExit(f"fastText binary {path} is missing: run `make fasttext`")
    return path


def training_line(example: Example) -> str:
    """One fastText training line: `__label__a __label__b <clean_text(text)>`."""
    labels = " ".join(LABEL_PREFIX + label for label in example.labels)
    return f"{labels} {clean_text(example.text)}"


def write_training_file(examples: Iterable[Example], path: Path) -> int:
    """Write examples in fastText's supervised format; return how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for example in examples:
            f.write(training_line(example) + "\n")
            n += 1
    return n


def write_text_file(examples: Iterable[Example], path: Path) -> int:
    """Write only the cleaned texts, one a line, as the endpoint sends them to predict-prob."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for example in examples:
            f.write(clean_text(example.text) + "\n")
            n += 1
    return n


def params_to_args(params: dict) -> list[str]:
    """{"lr": 0.5, "loss": "ova"} -> ["-lr", "0.5", "-loss", "ova"] (None values dropped)."""
    args = []
    for name, value in params.items():
        if value is None:
            continue
        args += [f"-{name}", str(value)]
    return args


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
        raise RuntimeError(f"fastText failed with status {result.returncode}: {' '.join(map(str, cmd))}\n{output}")
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
    if model not in ("skipgram", "cbow"):
        raise SystemExit(f"pretrain model must be skipgram or cbow, not {model!r}")
    cmd = [binary, model, "-input", text_file, "-output", output_prefix,
           *params_to_args(pparams), "-thread", str(threads), "-verbose", str(verbose)]
    return run(cmd, quiet=quiet)


def quantize(binary: Path, train_file: Path, output_prefix: Path, qparams: dict, threads: int = 2,
             verbose: int = 2, quiet: bool = False) -> float:
    """`fasttext quantize` of OUTPUT_PREFIX.bin into OUTPUT_PREFIX.ftz; returns seconds taken.

    qparams: cutoff (int), retrain/qnorm/qout (bools), dsub (int), and for -retrain the
    training parameters (lr, epoch) it re-reads from the command line.
    """
    cmd = [binary, "quantize", "-input", train_file, "-output", output_prefix]
    for name, value in qparams.items():
        if isinstance(value, bool):
            if value:
                cmd.append(f"-{name}")
        elif value is not None:
            cmd += [f"-{name}", str(value)]
    cmd += ["-thread", str(threads), "-verbose", str(verbose)]
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


def fasttext_test(binary: Path, model: Path, labelled_file: Path, k: int) -> dict:
    """`fasttext test MODEL FILE K`: fastText's own N, P@k, R@k (used as a cross-check)."""
    result = subprocess.run(
        [str(binary), "test", str(model), str(labelled_file), str(k)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True,
    )
    out = {}
    for line in result.stdout.decode().splitlines():
        key, _, value = line.partition("\t")
        if key == "N":
            out["n"] = int(value)
        elif key.startswith("P@"):
            out["precision"] = float(value)
        elif key.startswith("R@"):
            out["recall"] = float(value)
    return out
