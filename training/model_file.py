"""Supervised fastText 0.9.3 models as numpy arrays: written, read (fasttext_format owns the layout),
quantized, and answered exactly as `fasttext predict-prob` answers them.

A model without subwords answers a line with, for each label, sigmoid(output[label] . hidden), the
hidden vector being the mean of the line's input rows (training/fasttext_features.py says which),
the sigmoid read from a table of 512 steps over [-8, 8]; predict-prob prints exp(log(p + 1e-5)) to
6 significant digits.

Quantized matrices are fastText's product quantization (src/productquantizer.cc, quantmatrix.cc):
each row cut into sub-vectors of `dsub` dimensions (the last may be shorter), each sub-vector
replaced by the nearest of 256 centroids of its sub-quantizer, and with qnorm each row stored as a
direction times a norm from a codebook of 256 norms. quantize() computes all this with numpy,
and prunes the dictionary to the rows kept as Dictionary::prune does.
"""

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import fasttext_format as ff
from training.fasttext_features import EOS, Vocabulary

MAX_SIGMOID = 8
SIGMOID_TABLE_SIZE = 512
_STEPS = np.arange(SIGMOID_TABLE_SIZE + 1)
# Loss::Loss: x = real(i * 2 * MAX_SIGMOID) / SIGMOID_TABLE_SIZE - MAX_SIGMOID, in float; exp of a float.
_TABLE_X = (_STEPS * 2 * MAX_SIGMOID).astype(np.float32) / np.float32(SIGMOID_TABLE_SIZE) - np.float32(MAX_SIGMOID)
SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-_TABLE_X).astype(np.float64))).astype(np.float32)

KSUB = ff.CENTROIDS
_SIGMOID_LOSSES = {ff.LOSSES["ova"], ff.LOSSES["ns"]}  # BinaryLogisticLoss::computeOutput: a sigmoid per label
_BATCH_VALUES = 1 << 22  # floats a batch of scores (or of rows decoded) may hold
_CHUNK_ROWS = 1 << 16  # rows handled at once when quantizing
# Rows the sub-quantizers' k-means learns from, 32 a centroid (fastText's max_points_ is 65,536), and
# 8 iterations to its 25: a linear model's 40,000 x 334 matrix at dsub 2 took 90 s with 32,768 rows
# and 10 iterations, and every candidate of a site's export is quantized (each scored as its file).
_SAMPLE = 1 << 13
_SAMPLE_1D = 1 << 19  # values a one-dimensional codebook learns from
_KMEANS_ITERATIONS = 8
_CACHE_VALUES = 1 << 18  # distances computed at once when coding
_KMEANS_1D_ITERATIONS = 100


class ModelFileError(ff.FormatError):
    """The file is not a supervised fastText model without subwords."""


@dataclass
class QuantizedMatrix:
    """A product-quantized matrix as fastText stores it (QuantMatrix, ProductQuantizer)."""

    codes: np.ndarray  # rows x nsubq, uint8
    centroids: np.ndarray  # dim x 256 float32, in ProductQuantizer's order (sub_centroids)
    dsub: int
    norm_codes: np.ndarray | None = None  # one uint8 per row, with qnorm
    norm_centroids: np.ndarray | None = None  # 256 float32, with qnorm

    def __post_init__(self):
        self.codes = np.ascontiguousarray(self.codes, dtype=np.uint8)
        self.centroids = np.ascontiguousarray(self.centroids, dtype=np.float32).reshape(-1)
        if self.centroids.size % KSUB or self.codes.ndim != 2 or self.codes.shape[1] != -(-self.dim // self.dsub):
            raise ValueError(f"codes {self.codes.shape} and {self.centroids.size} centroid values do not make a "
                             f"product quantizer with dsub {self.dsub}")
        if (self.norm_codes is None) != (self.norm_centroids is None):
            raise ValueError("norm codes and norm centroids go together")
        if self.qnorm:
            self.norm_codes = np.ascontiguousarray(self.norm_codes, dtype=np.uint8).reshape(-1)
            self.norm_centroids = np.ascontiguousarray(self.norm_centroids, dtype=np.float32).reshape(-1)
            if self.norm_codes.size != self.rows or self.norm_centroids.size != KSUB:
                raise ValueError(f"{self.norm_codes.size} norm codes for {self.rows} rows")

    @property
    def rows(self) -> int:
        return self.codes.shape[0]

    @property
    def dim(self) -> int:
        return self.centroids.size // KSUB

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.dim

    @property
    def qnorm(self) -> bool:
        return self.norm_codes is not None

    def sub_centroids(self, m: int) -> np.ndarray:
        """Sub-quantizer m's 256 centroids (ProductQuantizer::get_centroids)."""
        width = min(self.dsub, self.dim - m * self.dsub)
        return self.centroids[m * KSUB * self.dsub: m * KSUB * self.dsub + KSUB * width].reshape(KSUB, width)

    def norms(self, ids=slice(None)) -> np.ndarray:
        """The rows' norms (1 without qnorm), float32."""
        if not self.qnorm:
            return np.ones(len(self.codes[ids]), dtype=np.float32)
        return self.norm_centroids[self.norm_codes[ids]]

    def directions(self, ids=slice(None)) -> np.ndarray:
        """The rows' centroids put together, before the norm (rows x dim, float32)."""
        codes = self.codes[ids]
        out = np.empty((len(codes), self.dim), dtype=np.float32)
        for m in range(codes.shape[1]):
            out[:, m * self.dsub: (m + 1) * self.dsub] = self.sub_centroids(m)[codes[:, m]]
        return out

    def decode(self, ids=slice(None)) -> np.ndarray:
        """The rows as ProductQuantizer::addcode adds them: float32(norm * centroid)."""
        directions = self.directions(ids)
        return directions * self.norms(ids)[:, None] if self.qnorm else directions

    def file_bytes(self) -> int:
        return ff.quant_matrix_bytes(self.rows, self.dim, self.dsub, self.qnorm)

    def as_format(self) -> ff.QuantMatrix:
        norm_pq = ff.ProductQuantizer(1, 1, self.norm_centroids) if self.qnorm else None
        return ff.QuantMatrix(self.rows, self.dim, self.codes, ff.ProductQuantizer(self.dim, self.dsub, self.centroids),
                              self.norm_codes, norm_pq)


Matrix = np.ndarray | QuantizedMatrix


@dataclass
class FastTextModel:
    """A supervised fastText model: the vocabulary (with its pruned buckets, if any), the labels, the
    two matrices (each dense float32 or quantized) and the args the file holds. Without args, the
    args are fastText's defaults for a one-vs-all model of the vocabulary's bucket and wordNgrams."""

    vocabulary: Vocabulary
    labels: list[str]
    input: Matrix  # vocabulary.rows x dim
    output: Matrix  # labels x dim
    label_counts: list[int] | None = None
    args: ff.Args | None = None
    ntokens: int | None = None  # the dictionary's token count; the words' counts summed when None
    _largest_first: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.input = _as_matrix(self.input)
        self.output = _as_matrix(self.output)
        vocab = self.vocabulary
        if self.args is None:
            self.args = ff.Args(dim=self.input.shape[1], bucket=vocab.bucket, wordNgrams=vocab.word_ngrams)
        if self.input.shape[0] != vocab.rows:
            raise ValueError(f"input has {self.input.shape[0]} rows; the vocabulary needs {vocab.rows}")
        if self.output.shape != (len(self.labels), self.input.shape[1]):
            raise ValueError(f"output is {self.output.shape}; it must be {len(self.labels)} x {self.input.shape[1]}")
        if EOS not in vocab.index:
            raise ValueError(f"the vocabulary must hold {EOS}")
        args = self.args
        wanted = (self.input.shape[1], vocab.bucket, vocab.word_ngrams, ff.MODELS["supervised"], 0)
        if (args.dim, args.bucket, args.wordNgrams, args.model, args.maxn) != wanted:
            raise ValueError(f"args {args} do not describe this model (dim, bucket, wordNgrams, supervised, "
                             f"maxn must be {wanted})")

    @property
    def dim(self) -> int:
        return self.args.dim

    @property
    def quantized(self) -> bool:
        return isinstance(self.input, QuantizedMatrix)

    def file_bytes(self) -> int:
        """The size of the file `write_model` writes for this model."""
        return ff.file_bytes(_dictionary_bytes(self.vocabulary.words, self.labels, self.vocabulary.pruned),
                             _matrix_bytes(self.input), _matrix_bytes(self.output))

    def rows(self, ids) -> np.ndarray:
        """Input rows as the model adds them up (decoded when quantized), float32."""
        return self.input.decode(ids) if self.quantized else self.input[ids]

    def scores(self, lines: Sequence[str], exact: bool = False) -> np.ndarray:
        """Each line's score for each label before the sigmoid (lines x labels, float32): exactly the
        binary's float32 arithmetic when `exact`, else float64 matrix products (close, much faster)."""
        lines = list(lines)
        out = np.empty((len(lines), len(self.labels)), dtype=np.float32)
        batch = max(1, min(4096, _BATCH_VALUES // max(len(self.labels), self.dim)))
        score = self._exact_scores if exact else self._fast_scores
        for start in range(0, len(lines), batch):
            out[start:start + batch] = score(lines[start:start + batch])
        return out

    def _fast_scores(self, lines: list[str]) -> np.ndarray:
        features = self.vocabulary.features(lines)
        used = np.unique(features.indices)
        hidden = features[:, used] @ self.rows(used).astype(np.float64)
        output = self.output.decode() if isinstance(self.output, QuantizedMatrix) else self.output
        return hidden @ output.T.astype(np.float64)

    def _exact_scores(self, lines: list[str]) -> np.ndarray:
        hidden = np.stack([self.exact_hidden(line) for line in lines]) if lines else np.zeros((0, self.dim))
        if isinstance(self.output, QuantizedMatrix):
            # ProductQuantizer::mulcode: the centroids' dot product summed in order, then times the norm.
            return _sequential_dots(hidden, self.output.directions()) * self.output.norms()
        return _sequential_dots(hidden, self.output)

    def exact_hidden(self, line: str) -> np.ndarray:
        """averageRowsToVector: the line's rows summed in order in float32, times float32(1.0 / n)."""
        ids = self.vocabulary.line_ids(line)
        return np.cumsum(self.rows(ids), axis=0, dtype=np.float32)[-1] * np.float32(1.0 / len(ids))

    def probabilities(self, lines: Sequence[str], exact: bool = False) -> np.ndarray:
        """Each line's probability of each label, through fastText's sigmoid table (lines x labels)."""
        if self.args.loss not in _SIGMOID_LOSSES:
            raise ValueError(f"the probabilities of loss {self.args.loss_name} are not modelled (only ova and ns)")
        return table_sigmoid(self.scores(lines, exact))

    def predict_prob(self, line: str, k: int) -> list[tuple[str, float]]:
        """What `fasttext predict-prob MODEL - k` prints for the line (k < 0: every label), as
        fasttext_process.parse_answer reads it."""
        p = self.probabilities([line], exact=True)[0]
        order = np.argsort(-p, kind="stable")[:k if k >= 0 else None]
        return [(self.labels[i], printed_probability(p[i])) for i in order]

    def with_output_scale(self, t: float) -> "FastTextModel":
        """The same model with every score times t, held by the output matrix (its norm codebook, or
        its centroids, when quantized), so that the file carries a temperature exactly."""
        t = np.float32(t)
        output = self.output
        if not isinstance(output, QuantizedMatrix):
            return dataclasses.replace(self, output=output * t)
        if output.qnorm:
            return dataclasses.replace(self, output=dataclasses.replace(output, norm_centroids=output.norm_centroids * t))
        return dataclasses.replace(self, output=dataclasses.replace(output, centroids=output.centroids * t))

    def largest_first(self) -> np.ndarray:
        """Every input row id, `</s>` first, then by decreasing norm (FastText::selectEmbeddings)."""
        if self._largest_first is None:
            norms = np.concatenate([np.sqrt(np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64))
                                    for chunk in _row_chunks(self.rows, self.vocabulary.rows)]) \
                if self.vocabulary.rows else np.zeros(0)
            eos = self.vocabulary.index[EOS]
            norms[eos] = np.inf
            self._largest_first = np.argsort(-norms, kind="stable")
        return self._largest_first


def _as_matrix(matrix) -> Matrix:
    return matrix if isinstance(matrix, QuantizedMatrix) else np.ascontiguousarray(matrix, dtype=np.float32)


def _matrix_bytes(matrix: Matrix) -> int:
    return matrix.file_bytes() if isinstance(matrix, QuantizedMatrix) else ff.dense_matrix_bytes(*matrix.shape)


def _dictionary_bytes(words: Sequence[str], labels: Sequence[str], pruned: dict | None) -> int:
    entries = sum(map(ff.entry_bytes, words)) + sum(ff.entry_bytes(ff.LABEL_PREFIX + label) for label in labels)
    return ff.dictionary_bytes(entries, None if pruned is None else len(pruned))


def _sequential_dots(hidden: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """hidden . row for every (hidden, row), summed dimension by dimension in float32 (DenseMatrix::dotRow)."""
    out = np.zeros((hidden.shape[0], rows.shape[0]), dtype=np.float32)
    for j in range(rows.shape[1]):
        out += hidden[:, j, None] * rows[None, :, j]
    return out


def _row_chunks(rows: Callable[[slice], np.ndarray], n: int):
    for start in range(0, n, _CHUNK_ROWS):
        yield np.asarray(rows(slice(start, min(n, start + _CHUNK_ROWS))), dtype=np.float32)


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


# --- files ------------------------------------------------------------------------------------------

def write_model(model: FastTextModel, path: Path) -> None:
    """Write the model as fastText's saveModel would (a pruned model needs a quantized input: ValueError)."""
    vocab = model.vocabulary
    dictionary = ff.Dictionary(
        vocab.words, vocab.counts, [ff.LABEL_PREFIX + label for label in model.labels],
        model.label_counts or [1] * len(model.labels),
        sum(vocab.counts) if model.ntokens is None else model.ntokens, vocab.pruned)
    ff.write_model_file(path, ff.ModelFile(model.args, dictionary, _format_matrix(model.input),
                                           _format_matrix(model.output)))


def _format_matrix(matrix: Matrix) -> ff.Matrix:
    if isinstance(matrix, QuantizedMatrix):
        return matrix.as_format()
    return ff.DenseMatrix(matrix.shape[0], matrix.shape[1], matrix)


def read_model(path: Path) -> FastTextModel:
    """A supervised model without subwords, dense or quantized (as fastText's quantize or write_model
    writes it), its large arrays memory-mapped from the file."""
    try:
        layout = ff.read_model_file(path)
    except ff.FormatError as e:
        raise ModelFileError(str(e)) from None
    args, d = layout.args, layout.dictionary
    if args.model != ff.MODELS["supervised"] or args.maxn > 0:
        raise ModelFileError(f"{path} is not a supervised model without subwords")
    if not all(label.startswith(ff.LABEL_PREFIX) for label in d.labels):
        raise ModelFileError(f"{path} has labels without the prefix {ff.LABEL_PREFIX}")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    vocabulary = Vocabulary(d.words, args.bucket, d.word_counts, d.pruneidx, args.wordNgrams)
    labels = [label[len(ff.LABEL_PREFIX):] for label in d.labels]
    return FastTextModel(vocabulary, labels, _mapped_matrix(data, layout.input), _mapped_matrix(data, layout.output),
                         d.label_counts, args, d.ntokens)


def _mapped_matrix(data: np.ndarray, matrix: ff.Matrix) -> Matrix:
    def array(span: ff.Span, dtype: str) -> np.ndarray:
        return data[span.offset: span.offset + span.length].view(dtype)

    if isinstance(matrix, ff.DenseMatrix):
        return array(matrix.data, "<f4").reshape(matrix.rows, matrix.cols)
    norms = (array(matrix.norm_codes, "u1"), array(matrix.norm_pq.centroids, "<f4")) if matrix.qnorm else (None, None)
    return QuantizedMatrix(array(matrix.codes, "u1").reshape(matrix.rows, matrix.pq.nsubq),
                           array(matrix.pq.centroids, "<f4"), matrix.pq.dsub, *norms)


# --- quantization -----------------------------------------------------------------------------------

def largest_rows(model: FastTextModel, n: int) -> np.ndarray:
    """The n input rows fastText's `quantize -cutoff n` keeps: `</s>`, then the largest norms."""
    return model.largest_first()[:n]


def quantized_bytes(model: FastTextModel, rows: int, dsub: int, qnorm: bool = True, qout: bool = False,
                    out_dsub: int = 2) -> int:
    """The size of quantize(model, largest_rows(model, rows), ...)'s file, without quantizing."""
    words, pruned = model.vocabulary.words, None
    if rows < model.vocabulary.rows:
        kept = np.sort(largest_rows(model, rows))
        nwords = len(model.vocabulary.words)
        words = [words[i] for i in kept[kept < nwords]]
        pruned = range(int(np.count_nonzero(kept >= nwords)))
    else:
        rows = model.vocabulary.rows
    output = ff.quant_matrix_bytes(len(model.labels), model.dim, out_dsub, qnorm) if qout \
        else _matrix_bytes(model.output)
    return ff.file_bytes(_dictionary_bytes(words, model.labels, pruned),
                         ff.quant_matrix_bytes(rows, model.dim, dsub, qnorm), output)


def quantize(model: FastTextModel, keep=None, dsub: int = 1, qnorm: bool = True, qout: bool = False,
             out_dsub: int = 2, seed: int = 0) -> FastTextModel:
    """The model product-quantized as fastText's `quantize` does, computed here: the input rows
    `keep` (every row when None; `</s>` is always kept) with `dsub` dimensions a code, the norms
    apart when `qnorm`; with `qout` the output too, `out_dsub` dimensions a code. A quantized output
    stays as it is when not `qout`."""
    rng = np.random.default_rng(seed)
    if keep is None:
        vocabulary, source = model.vocabulary, slice(None)
    else:
        vocabulary, source = pruned_vocabulary(model.vocabulary, keep)
    rows = model.input if not model.quantized and keep is None else model.rows(source)
    output = model.output
    if qout:
        output = output.decode() if isinstance(output, QuantizedMatrix) else output
        output = quantize_matrix(output, out_dsub, qnorm, rng)
    return FastTextModel(vocabulary, model.labels, quantize_matrix(rows, dsub, qnorm, rng), output,
                         model.label_counts, model.args, model.ntokens)


def pruned_vocabulary(vocab: Vocabulary, keep) -> tuple[Vocabulary, np.ndarray]:
    """The vocabulary of the rows kept (Dictionary::prune: words in order, then the kept buckets) and
    the rows it keeps, in its order."""
    keep = np.unique(np.append(np.asarray(keep, dtype=np.int64), vocab.index[EOS]))
    if keep[0] < 0 or keep[-1] >= vocab.rows:
        raise ValueError(f"rows to keep must be in 0 .. {vocab.rows - 1}")
    nwords = len(vocab.words)
    words, buckets = keep[keep < nwords], keep[keep >= nwords] - nwords
    if vocab.pruned is not None:
        bucket_of_row = {row: bucket for bucket, row in vocab.pruned.items()}
        buckets = np.array([bucket_of_row[row] for row in buckets.tolist()], dtype=np.int64)
    pruned = {bucket: row for row, bucket in enumerate(buckets.tolist())}
    pruned_vocab = Vocabulary([vocab.words[i] for i in words], vocab.bucket, [vocab.counts[i] for i in words],
                              pruned, vocab.word_ngrams)
    return pruned_vocab, keep


def quantize_matrix(matrix: np.ndarray, dsub: int, qnorm: bool, rng: np.random.Generator) -> QuantizedMatrix:
    """Product quantization of the rows of a float32 matrix (QuantMatrix::quantize), memory bounded:
    the codebooks learn from a sample, the rows are coded in chunks. With qnorm each row's norm is
    the scale that best fits it to its coded direction, coded with 256 levels in log scale."""
    n, dim = matrix.shape
    if not 1 <= dsub <= dim:
        raise ValueError(f"dsub must be in 1 .. {dim}, not {dsub}")
    if n == 0:
        raise ValueError("there is no row to quantize")
    norms = _row_norms(matrix) if qnorm else None
    sample = np.sort(rng.choice(n, min(n, _SAMPLE_1D if dsub == 1 else _SAMPLE), replace=False))
    centroids = _train_codebooks(_directions(matrix, sample, norms), dsub, rng)
    quantized = QuantizedMatrix(np.empty((n, -(-dim // dsub)), dtype=np.uint8), _fasttext_order(centroids, dim),
                                dsub)
    for start in range(0, n, _CHUNK_ROWS):
        chunk = slice(start, min(n, start + _CHUNK_ROWS))
        quantized.codes[chunk] = _assign(_directions(matrix, chunk, norms), centroids)
    if qnorm:
        quantized.norm_codes, quantized.norm_centroids = _quantize_norms(_fitted_scales(matrix, quantized), rng)
    return quantized


def _row_norms(matrix: np.ndarray) -> np.ndarray:
    return np.concatenate([np.sqrt(np.einsum("ij,ij->i", chunk, chunk, dtype=np.float64))
                           for chunk in _row_chunks(matrix.__getitem__, len(matrix))])


def _directions(matrix: np.ndarray, ids, norms: np.ndarray | None) -> np.ndarray:
    """The rows (divided by their norms, when quantized apart) as float32."""
    rows = np.asarray(matrix[ids], dtype=np.float32)
    if norms is None:
        return rows
    scale = norms[ids]
    return (rows / np.where(scale > 0, scale, 1.0)[:, None]).astype(np.float32)


def _sub_vectors(rows: np.ndarray, dsub: int) -> np.ndarray:
    """nsubq x rows x dsub, the last sub-vector padded with zeros (which leave its distances as they are)."""
    n, dim = rows.shape
    nsubq = -(-dim // dsub)
    padded = np.zeros((n, nsubq * dsub), dtype=np.float32)
    padded[:, :dim] = rows
    return padded.reshape(n, nsubq, dsub).transpose(1, 0, 2)


def _train_codebooks(sample: np.ndarray, dsub: int, rng: np.random.Generator) -> np.ndarray:
    """nsubq x 256 x dsub centroids (zero-padded like _sub_vectors): one-dimensional k-means per
    dimension when dsub is 1, else k-means on each sub-quantizer's sub-vectors."""
    if dsub == 1:
        return np.stack([kmeans_1d(sample[:, j]) for j in range(sample.shape[1])])[:, :, None]
    return _kmeans(_sub_vectors(sample, dsub), rng)


def kmeans_1d(values: np.ndarray, k: int = KSUB) -> np.ndarray:
    """k centroids of one-dimensional values, ascending (float32): the distinct values when there are
    at most k of them, else Lloyd's k-means on the sorted values, started from k/2 quantiles and k/2
    points evenly spaced from the smallest value to the largest (so that the tails, where the
    largest norms are, have centroids of their own from the start)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    distinct = np.unique(values)
    if len(distinct) <= k:
        return np.pad(distinct, (0, k - len(distinct)), mode="edge").astype(np.float32)
    quantiles = values[((np.arange(k // 2) + 0.5) / (k // 2) * len(values)).astype(np.int64)]
    start = np.unique(np.concatenate([quantiles, np.linspace(values[0], values[-1], k - k // 2)]))
    spare = np.setdiff1d(distinct[np.linspace(0, len(distinct) - 1, k).astype(np.int64)], start)
    centroids = np.sort(np.concatenate([start, spare[:k - len(start)]]))
    prefix = np.concatenate([[0.0], np.cumsum(values)])
    for _ in range(_KMEANS_1D_ITERATIONS):
        edges = np.concatenate([[0], np.searchsorted(values, (centroids[1:] + centroids[:-1]) / 2), [len(values)]])
        counts = np.diff(edges)
        moved = np.where(counts > 0, (prefix[edges[1:]] - prefix[edges[:-1]]) / np.maximum(counts, 1), centroids)
        if np.array_equal(moved, centroids):
            break
        centroids = moved
    return centroids.astype(np.float32)


def _kmeans(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """k-means of each sub-quantizer's points (nsubq x n x dsub), all sub-quantizers at once: 256
    random points to start, empty clusters restarted at random points."""
    nsubq, n, dsub = x.shape
    if n <= KSUB:
        return np.concatenate([x, np.repeat(x[:, -1:], KSUB - n, axis=1)], axis=1)
    exact = _few_distinct(x)
    if len(exact) == nsubq:
        return np.stack(list(exact.values()))
    centroids = x[:, rng.choice(n, KSUB, replace=False)]
    flat_offsets = (np.arange(nsubq) * KSUB)[:, None]
    for _ in range(_KMEANS_ITERATIONS):
        flat = (_assign_sub(x, centroids) + flat_offsets).ravel()
        counts = np.bincount(flat, minlength=nsubq * KSUB).reshape(nsubq, KSUB)
        sums = np.stack([np.bincount(flat, weights=x[:, :, j].ravel(), minlength=nsubq * KSUB)
                         for j in range(dsub)], axis=1).reshape(nsubq, KSUB, dsub)
        empty = counts == 0
        centroids = (sums / np.maximum(counts, 1)[:, :, None]).astype(np.float32)
        if empty.any():
            subq, which = np.nonzero(empty)
            centroids[subq, which] = x[subq, rng.integers(0, n, len(subq))]
    for m, points in exact.items():
        centroids[m] = points
    return centroids


def _few_distinct(x: np.ndarray) -> dict[int, np.ndarray]:
    """The sub-quantizers with at most 256 distinct sub-vectors (a full-rank linear model's output, the
    identity times a, has a handful), and those sub-vectors padded to 256: codes exact, no k-means."""
    found = {}
    for m in range(x.shape[0]):
        distinct = np.unique(x[m], axis=0)
        if len(distinct) <= KSUB:
            found[m] = np.concatenate([distinct, np.repeat(distinct[-1:], KSUB - len(distinct), axis=0)])
    return found


def _assign_sub(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The nearest centroid of each sub-vector (nsubq x n): |c|^2 - 2 x.c summed dimension by dimension
    (faster than a matrix product as thin as dsub), in chunks that stay in the cache."""
    nsubq, n, dsub = x.shape
    codes = np.empty((nsubq, n), dtype=np.uint8)
    squared = np.einsum("mkd,mkd->mk", centroids, centroids)[:, None, :]
    twice = -2 * centroids
    step = max(1, _CACHE_VALUES // (KSUB * nsubq))
    for start in range(0, n, step):
        part = x[:, start:start + step]
        distances = squared + part[:, :, 0, None] * twice[:, None, :, 0]
        for j in range(1, dsub):
            distances += part[:, :, j, None] * twice[:, None, :, j]
        codes[:, start:start + step] = distances.argmin(axis=2)
    return codes


def _assign(rows: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each row's code (rows x nsubq)."""
    if centroids.shape[2] == 1:
        # One dimension a code: the nearest of the ascending centroids lies between two midpoints.
        mids = (centroids[:, 1:, 0].astype(np.float64) + centroids[:, :-1, 0]) / 2
        return np.stack([np.searchsorted(mids[j], rows[:, j]) for j in range(rows.shape[1])], axis=1).astype(np.uint8)
    return _assign_sub(_sub_vectors(rows, centroids.shape[2]), centroids).T


def _fasttext_order(centroids: np.ndarray, dim: int) -> np.ndarray:
    """The flat centroid array of ProductQuantizer: each sub-quantizer's 256 centroids, the last
    one's only lastdsub wide."""
    dsub = centroids.shape[2]
    return np.concatenate([centroids[m, :, :min(dsub, dim - m * dsub)].ravel()
                           for m in range(centroids.shape[0])]).astype(np.float32)


def _fitted_scales(matrix: np.ndarray, quantized: QuantizedMatrix) -> np.ndarray:
    """Each row's least-squares scale along its coded direction (its norm when the code is exact)."""
    scales = []
    for start in range(0, quantized.rows, _CHUNK_ROWS):
        chunk = slice(start, min(quantized.rows, start + _CHUNK_ROWS))
        rows = np.asarray(matrix[chunk], dtype=np.float64)
        directions = quantized.directions(chunk).astype(np.float64)
        length = np.einsum("ij,ij->i", directions, directions)
        scales.append(np.einsum("ij,ij->i", rows, directions) / np.where(length > 0, length, 1.0))
    return np.concatenate(scales)


def _quantize_norms(scales: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Norm codes and 256 norm levels: k-means of the positive scales' logarithms (a level 0 for rows
    whose best scale is 0 or below)."""
    positive = scales > 0
    levels = np.zeros(0, dtype=np.float32)
    if positive.any():
        logs = np.log(scales[positive])
        sample = logs if len(logs) <= _SAMPLE_1D else rng.choice(logs, _SAMPLE_1D, replace=False)
        levels = np.unique(np.exp(kmeans_1d(sample, KSUB - (not positive.all())).astype(np.float64)))
    if not positive.all():
        levels = np.concatenate([[0.0], levels])
    levels = np.pad(levels, (0, KSUB - len(levels)), mode="edge").astype(np.float32)
    # The nearest level in log scale: between consecutive levels, their geometric mean divides.
    with np.errstate(divide="ignore"):
        bounds = np.sqrt(levels[1:].astype(np.float64) * levels[:-1])
    codes = np.searchsorted(bounds, np.maximum(scales, 0), side="left")
    return np.minimum(codes, KSUB - 1).astype(np.uint8), levels
