"""A linear learner on fastText's own ids: one-vs-rest logistic regression written as a fastText model.

fastText answers sigmoid(output . mean of the line's input rows). A linear model over the
same ids is such a model: with each occurrence of id j weighted idf_j / n (n ids in the
line), the score of label l is the mean over the line's ids of idf_j * beta_jl, so input row j
is idf_j * beta_j and the output matrix is the identity (dim = labels), or, at a lower rank,
a factorisation of that matrix (input U S, output V). The temperature that calibrates the
probabilities scales the output matrix, so the file holds it exactly.

The coefficients come from liblinear (scikit-learn, a training-only dependency), one binary
problem per label, without an intercept (fastText has none), on the ids seen in at least
`min_df` training lines.
"""

import time
from pathlib import Path

import numpy as np
from scipy import sparse

from text_cleaning import clean_text
from training.dataset import Example
from training.fasttext_features import EOS, Vocabulary
from training.learners import Candidate, DataShape
from training.model_file import FastTextModel

NAME = "linear"
C_VALUES = (100.0, 300.0)  # C=30 never won on Debian subsets of 1,000 and 3,000 texts (training/REPORT.md)
MIN_LINES = 2  # ids in fewer training lines get no row: measured better than 1 on 3,000 Debian texts
RANKS = (100, 200, 400, 800)
BUDGET_BYTES = 10 * 2**20
# fastText's quantize trains 256 centroids on at most 65,536 rows: its time grows with rows x rank.
MAX_QUANTIZE_WORK = 4e6
# The most (training lines x labels) auto fits, one liblinear problem per label: measured at 13
# million (23,351 Debian texts x 566 tags) one C took 5 minutes on 2 shared cores, and at 40
# million (40,000 PyPI summaries x 1,000 tags) over 4 s a label (training/REPORT.md, "Scale").
MAX_WORK = 1e7


class LinearLearner:
    """Logistic regressions on fastText's ids; the coefficients of one C are fitted once and
    shared by the candidates that differ only in rank."""

    name = NAME

    def __init__(self, threads: int, log):
        self.threads = threads
        self.log = log
        self._fits: dict[tuple, tuple] = {}
        self._svd: tuple | None = None  # (key, u * s, v) at the highest rank asked, for the current fit
        self._top_rank = RANKS[0]

    def candidates(self, shape: DataShape, forced: bool = False) -> tuple[list[Candidate], str]:
        """The candidates worth fitting on data of this shape, and why (or why none, unless forced)."""
        work = shape.examples * shape.labels
        if work > MAX_WORK and not forced:
            return [], (f"linear learner not tried: {shape.examples:,} training lines x {shape.labels:,} labels "
                        f"= {work:.2g}, over its time budget of {MAX_WORK:.0e} (--learner linear forces it)")
        ranks = [None] * self._fits_at(shape.labels, shape) + [
            r for r in RANKS if r < shape.labels // 2 and (r == RANKS[0] or self._fits_at(r, shape))]
        self._top_rank = max([r for r in ranks if r is not None], default=RANKS[0])
        found = [Candidate(NAME, _describe(c, rank), {"c": c, "min_lines": MIN_LINES, "rank": rank})
                 for c in C_VALUES for rank in ranks]
        shown = ", ".join("full" if r is None else str(r) for r in ranks)
        return found, (f"linear learner: C {', '.join(f'{c:g}' for c in C_VALUES)}; rank {shown} (full rank and "
                       f"ranks past these do not keep the {shape.recurring:,} recurring ids within the size budget)")

    @staticmethod
    def _fits_at(dim: int, shape: DataShape) -> bool:
        """Whether a model of this dimension keeps every recurring id within the size budget at two
        dimensions a byte, and fastText quantizes it in reasonable time."""
        return shape.recurring * dim / 2 <= 0.8 * BUDGET_BYTES and min(shape.recurring, 65536) * dim <= MAX_QUANTIZE_WORK

    def fit(self, candidate: Candidate, examples: list[Example], work: Path | None = None) -> FastTextModel:
        p = candidate.params
        key = (id(examples), p["c"], p["min_lines"])
        if key not in self._fits:
            self._fits = {key: self._coefficients(examples, p["c"], p["min_lines"])}
        vocabulary, used, weights, labels, label_counts = self._fits[key]
        input_rows, output = self._factorise(key, weights, p["rank"], len(labels))
        full = np.zeros((vocabulary.rows, input_rows.shape[1]), dtype=np.float32)
        full[used] = input_rows
        return FastTextModel(vocabulary, labels, full, output, label_counts)

    def _factorise(self, key: tuple, weights: np.ndarray, rank: int | None, n_labels: int):
        """(input rows, output matrix) whose product is `weights` (full rank) or its best rank-r
        approximation, sliced from one truncated SVD at the highest rank the candidates ask for."""
        if rank is None or rank >= n_labels:
            return weights, np.eye(n_labels, dtype=np.float32)
        if self._svd is None or self._svd[0] != key or self._svd[1].shape[1] < rank:
            from sklearn.utils.extmath import randomized_svd

            u, s, vt = randomized_svd(weights, n_components=max(rank, self._top_rank), n_iter=4, random_state=0)
            self._svd = (key, (u * s).astype(np.float32), vt.T.astype(np.float32))
        _, us, v = self._svd
        return np.ascontiguousarray(us[:, :rank]), np.ascontiguousarray(v[:, :rank])

    def _coefficients(self, examples: list[Example], c: float, min_lines: int) -> tuple:
        started = time.monotonic()
        lines = [clean_text(e.text) for e in examples]
        labels = sorted({label for e in examples for label in e.labels})
        vocabulary = Vocabulary.from_lines(lines, bucket_for(lines), min_lines=min_lines)
        counts = vocabulary.features(lines)
        idf = idf_weights(counts, min_lines)
        used = np.flatnonzero(idf)
        x = sparse.csr_matrix(counts[:, used].multiply(idf[used].reshape(1, -1)))
        index = {label: i for i, label in enumerate(labels)}
        y = np.zeros((len(lines), len(labels)), dtype=np.int8)
        for i, e in enumerate(examples):
            y[i, [index[t] for t in e.labels]] = 1
        beta = fit_coefficients(x, y, c, self.threads)
        self.log(f"  liblinear C={c:g}: {len(lines):,} lines, {len(used):,} ids with a row "
                 f"(of {vocabulary.rows:,}), {len(labels):,} labels, in {time.monotonic() - started:.1f} s")
        weights = beta * idf[used].reshape(-1, 1).astype(np.float32)
        return vocabulary, used, weights, labels, y.sum(axis=0).tolist()


def _describe(c: float, rank: int | None) -> str:
    return f"linear C={c:g} " + ("full rank" if rank is None else f"rank {rank}")


def bucket_for(lines: list[str]) -> int:
    """A power of two at least twice the distinct neighbouring pairs, so that few pairs share a row."""
    pairs = set()
    for line in lines:
        tokens = line.split() + [EOS]
        pairs.update(zip(tokens, tokens[1:]))
    return 1 << max(10, (2 * len(pairs)).bit_length())


def idf_weights(counts: sparse.csr_matrix, min_lines: int) -> np.ndarray:
    """Smoothed idf of each id (as scikit-learn's TfidfVectorizer), 0 for ids in fewer than min_lines lines."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    n = counts.shape[0]
    idf = np.log((1 + n) / (1 + df)) + 1
    idf[df < min_lines] = 0.0
    return idf


def fit_coefficients(x: sparse.csr_matrix, y: np.ndarray, c: float, jobs: int) -> np.ndarray:
    """(features x labels) liblinear coefficients, one independent problem per label."""
    from joblib import Parallel, delayed

    columns = Parallel(n_jobs=jobs, prefer="threads")(delayed(_fit_one)(x, y[:, j], c) for j in range(y.shape[1]))
    return np.stack(columns, axis=1).astype(np.float32)


def _fit_one(x: sparse.csr_matrix, y: np.ndarray, c: float) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():  # a label on every line (or none): a constant the model cannot hold
        return np.zeros(x.shape[1])
    # The dual solver: far faster here, where ids outnumber lines (60x on 2,400 Debian texts).
    model = LogisticRegression(C=c, solver="liblinear", dual=True, fit_intercept=False, max_iter=1000)
    return model.fit(x, y).coef_[0]
