"""fastText 0.9.3 model files (.bin, dense matrices): written, read, and answered exactly as
`fasttext predict-prob` answers them.

The layout (src/fasttext.cc saveModel, args.cc, dictionary.cc, densematrix.cc): magic and
version (int32); the args (12 int32 and the double `t`); the dictionary (size, nwords,
nlabels as int32, ntokens and pruneidx_size as int64, then each entry as its NUL-terminated
bytes, an int64 count and an int8 type, words before labels); a bool `quant`; the input
matrix (int64 rows, int64 cols, float32 row-major); a bool `qout`; the output matrix.

A supervised one-vs-all model (`-loss ova`) answers a line with, for each label,
sigmoid(output[label] . mean of the line's input rows), the sigmoid read from a table of 512
steps over [-8, 8], and prints exp(log(p + 1e-5)) to 6 significant digits.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fasttext_process import LABEL_PREFIX
from training.fasttext_features import EOS, Vocabulary

MAGIC = 793712314
VERSION = 12
LOSS_OVA = 4
MODEL_SUPERVISED = 3
_ARGS = struct.Struct("<12id")
_DICT_HEADER = struct.Struct("<3i2q")
_MATRIX_HEADER = struct.Struct("<2q")
_ENTRY_TAIL = struct.Struct("<qb")
_WORD, _LABEL = 0, 1

MAX_SIGMOID = 8
SIGMOID_TABLE_SIZE = 512
_STEPS = np.arange(SIGMOID_TABLE_SIZE + 1)
# Loss::Loss: x = real(i * 2 * MAX_SIGMOID) / SIGMOID_TABLE_SIZE - MAX_SIGMOID, in float; exp of a float.
_TABLE_X = (_STEPS * 2 * MAX_SIGMOID).astype(np.float32) / np.float32(SIGMOID_TABLE_SIZE) - np.float32(MAX_SIGMOID)
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_TABLE_X).astype(np.float64))).astype(np.float32)


class ModelFileError(Exception):
    """The file is not a dense supervised fastText model this module can read."""


@dataclass
class FastTextModel:
    """A supervised fastText model as arrays: the vocabulary, the labels and the two matrices."""

    vocabulary: Vocabulary
    labels: list[str]
    input: np.ndarray   # (words + bucket) x dim, float32
    output: np.ndarray  # labels x dim, float32
    label_counts: list[int] | None = None

    def __post_init__(self):
        self.input = np.ascontiguousarray(self.input, dtype=np.float32)
        self.output = np.ascontiguousarray(self.output, dtype=np.float32)
        if self.input.shape[0] != self.vocabulary.rows:
            raise ValueError(f"input has {self.input.shape[0]} rows; the vocabulary needs {self.vocabulary.rows}")
        if self.output.shape != (len(self.labels), self.input.shape[1]):
            raise ValueError(f"output is {self.output.shape}; it must be {len(self.labels)} x {self.input.shape[1]}")
        if EOS not in self.vocabulary.index:
            raise ValueError(f"the vocabulary must hold {EOS}")

    @property
    def dim(self) -> int:
        return self.input.shape[1]

    def file_bytes(self) -> int:
        """The size of the file `write_model` writes for this model."""
        entries = sum(len(w.encode()) for w in self.vocabulary.words) + sum(
            len((LABEL_PREFIX + label).encode()) for label in self.labels)
        n = len(self.vocabulary.words) + len(self.labels)
        return (8 + _ARGS.size + _DICT_HEADER.size + entries + n * (1 + _ENTRY_TAIL.size)
                + 2 + 2 * _MATRIX_HEADER.size + 4 * (self.input.size + self.output.size))

    def scores(self, lines: list[str]) -> np.ndarray:
        """Each line's output . hidden, before the sigmoid (float64 arithmetic: close, not exact)."""
        hidden = self.vocabulary.features(lines) @ self.input.astype(np.float64)
        return hidden @ self.output.T.astype(np.float64)

    def probabilities(self, line: str) -> np.ndarray:
        """The probability of each label for one line, in float32 as the binary computes it:
        rows summed in order, times float(1/n), dot products summed in order, the sigmoid table."""
        ids = self.vocabulary.line_ids(line)
        hidden = np.cumsum(self.input[ids], axis=0, dtype=np.float32)[-1] * np.float32(1.0 / len(ids))
        logits = np.cumsum(self.output * hidden, axis=1, dtype=np.float32)[:, -1]
        return table_sigmoid(logits)

    def predict_prob(self, line: str, k: int) -> list[tuple[str, float]]:
        """What `fasttext predict-prob` prints for the line, as fasttext_process.parse_answer reads it."""
        p = self.probabilities(line)
        order = np.argsort(-p, kind="stable")[:k]
        return [(self.labels[i], printed_probability(p[i])) for i in order]


def table_sigmoid(x: np.ndarray) -> np.ndarray:
    """fastText's Loss::sigmoid: 0 below -8, 1 above 8, else the table entry x falls in (float32)."""
    x = np.asarray(x, dtype=np.float32)
    index = ((x + np.float32(MAX_SIGMOID)) * np.float32(SIGMOID_TABLE_SIZE) / np.float32(MAX_SIGMOID)
             / np.float32(2))
    inside = SIGMOID_TABLE[np.clip(np.nan_to_num(index), 0, SIGMOID_TABLE_SIZE).astype(np.int64)]
    return np.where(x < -MAX_SIGMOID, np.float32(0), np.where(x > MAX_SIGMOID, np.float32(1), inside))


def printed_probability(p: float) -> float:
    """The probability as the endpoint reads fastText's printed exp(log(p + 1e-5)) back."""
    logged = np.float32(np.log(np.float64(np.float32(p)) + 1e-5))
    printed = float(f"{float(np.exp(logged)):.6g}")
    probability = round(printed - 1e-5, 6)
    return 1.0 if probability > 1 else probability if probability > 0 else 0.0


def write_model(model: FastTextModel, path: Path, word_ngrams: int = 2) -> None:
    """Write `model` as a dense supervised one-vs-all fastText model file."""
    vocab = model.vocabulary
    args = (model.dim, 5, 1, 1, 5, word_ngrams, LOSS_OVA, MODEL_SUPERVISED, vocab.bucket, 0, 0, 100, 1e-4)
    label_counts = model.label_counts or [1] * len(model.labels)
    with open(path, "wb") as f:
        f.write(struct.pack("<2i", MAGIC, VERSION))
        f.write(_ARGS.pack(*args))
        size = len(vocab.words) + len(model.labels)
        f.write(_DICT_HEADER.pack(size, len(vocab.words), len(model.labels), sum(vocab.counts), -1))
        for word, count in zip(vocab.words, vocab.counts):
            f.write(word.encode("utf-8") + b"\0" + _ENTRY_TAIL.pack(count, _WORD))
        for label, count in zip(model.labels, label_counts):
            f.write((LABEL_PREFIX + label).encode("utf-8") + b"\0" + _ENTRY_TAIL.pack(count, _LABEL))
        for matrix in (model.input, model.output):
            f.write(b"\0")  # quant, then qout: dense
            f.write(_MATRIX_HEADER.pack(*matrix.shape))
            f.write(matrix.astype("<f4", copy=False).tobytes())


def read_model(path: Path) -> FastTextModel:
    """Read a dense supervised model without subwords (what `fasttext supervised` or write_model writes)."""
    with open(path, "rb") as f:
        raw = f.read()
    magic, version = struct.unpack_from("<2i", raw, 0)
    if magic != MAGIC or version != VERSION:
        raise ModelFileError(f"{path} is not a fastText {VERSION} model file")
    args = _ARGS.unpack_from(raw, 8)
    dim, bucket, maxn, model_kind = args[0], args[8], args[10], args[7]
    if model_kind != MODEL_SUPERVISED or maxn > 0:
        raise ModelFileError(f"{path} is not a supervised model without subwords")
    offset = 8 + _ARGS.size
    size, nwords, nlabels, _, pruned = _DICT_HEADER.unpack_from(raw, offset)
    offset += _DICT_HEADER.size
    words, counts, labels, label_counts = [], [], [], []
    for _ in range(size):
        end = raw.index(b"\0", offset)
        entry = raw[offset:end].decode("utf-8")
        count, kind = _ENTRY_TAIL.unpack_from(raw, end + 1)
        offset = end + 1 + _ENTRY_TAIL.size
        if kind == _WORD:
            words.append(entry)
            counts.append(count)
        else:
            labels.append(entry[len(LABEL_PREFIX):])
            label_counts.append(count)
    if pruned > 0 or raw[offset] != 0:
        raise ModelFileError(f"{path} is quantized: only dense models can be read")
    offset += 1
    matrices = []
    for _ in range(2):
        rows, cols = _MATRIX_HEADER.unpack_from(raw, offset)
        offset += _MATRIX_HEADER.size
        matrices.append(np.frombuffer(raw, dtype="<f4", count=rows * cols, offset=offset).reshape(rows, cols))
        offset += 4 * rows * cols
        if len(matrices) == 1:
            if raw[offset] != 0:
                raise ModelFileError(f"{path} has a quantized output matrix")
            offset += 1
    if matrices[0].shape[1] != dim:
        raise ModelFileError(f"{path}: the input matrix does not have the model's dimension {dim}")
    return FastTextModel(Vocabulary(words, bucket, counts), labels, matrices[0], matrices[1], label_counts)
