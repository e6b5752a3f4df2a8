"""A linear learner on fastText's own ids: one-vs-rest logistic regression written as a fastText model.

fastText answers sigmoid(output . mean of the line's input rows), the mean over the ids that have a
row in the file. A linear model over the same ids is such a model: with each occurrence of id j
weighted idf_j / n (n: the line's ids that have a row), the score of label l is the mean over the
line's ids of idf_j * beta_jl, so input row j is idf_j * beta_j and the output matrix is the identity
(dim = labels), or, at a lower rank, a factorisation of that matrix (input U S, output V).

The ids that get a row are chosen before the fit (every id of the training lines, or those in at
least two of them), and the fit sees the average the served file computes: only ids that keep a row
count in n. The file is then pruned to those ids (fastText's pruned dictionary), so what is fitted is
what is served. The coefficients come from liblinear (scikit-learn, a training-only dependency), one
binary problem per label, without an intercept (fastText has none), seeded.
"""

import time
from pathlib import Path

import numpy as np
from scipy import sparse

from training import size_budget
from training.fasttext_features import Vocabulary
from training.learners.base import Candidate, DataShape, Options
from training.model_file import FastTextModel, pruned_vocabulary
from training.prepare import Part
from training.progress import PROGRESS_SECONDS

NAME = "linear"
C_VALUES = (100.0, 300.0)  # C=30 never won on Debian subsets of 1,000 and 3,000 texts (training/REPORT.md)
MIN_LINES = (1, 2)  # ids in fewer training lines get no row: every id, or the recurring ones
RANKS = (1024, 512, 256, 128)
# Full rank at two values a byte is tried beside a lower rank at one only below this rank: its k-means
# is the slowest step of a small export, and on Debian 3,000 it scored as rank 256 did (REPORT).
FULL_RANK_WORTH_IT = 256
BUCKET = 1 << 22  # pairs hashed into 4M buckets: few collisions, and only buckets in use get a row
# The most (training lines x labels) it fits unless asked to, one liblinear problem per label: at 13
# million (23,351 Debian texts x 566 tags) one C took 5 minutes on 2 cores (training/REPORT.md).
MAX_WORK = 1e7


class LinearLearner:
    """Logistic regressions on fastText's ids; the coefficients of one (C, ids) are fitted once and
    shared by the candidates that differ only in rank."""

    name = NAME

    def __init__(self, options: Options):
        self.options = options
        self.log = options.log
        self._fit: tuple | None = None  # (key, vocabulary, weights, labels, label counts) of the last fit
        self._svd: tuple | None = None  # (key, u * s, v) at the highest rank asked, for the last fit

    def candidates(self, shape: DataShape) -> tuple[list[Candidate], str]:
        """For each C and each choice of ids: full rank when it fits the size budget, and the largest
        rank that fits with one byte a value when full rank needs fewer."""
        work = shape.examples * shape.labels
        if work > MAX_WORK and not self.options.forced:
            return [], (f"linear learner not tried: {shape.examples:,} training lines x {shape.labels:,} labels "
                        f"= {work:.2g}, over its time budget of {MAX_WORK:.0e} (--learner linear forces it)")
        found, shown = [], []
        for min_lines in MIN_LINES:
            rows = shape.recurring if min_lines > 1 else shape.words + shape.bigrams
            ranks = self._ranks(rows, shape.labels)
            shown.append(f"ids in {min_lines}+ lines (~{rows:,}): rank "
                         + ", ".join("full" if r is None else str(r) for r in ranks))
            found += [Candidate(NAME, _describe(c, min_lines, rank), {"c": c, "min_lines": min_lines, "rank": rank})
                      for c in C_VALUES for rank in ranks]
        budget = self.options.size_budget / size_budget.MIB
        return found, (f"linear learner: C {', '.join(f'{c:g}' for c in C_VALUES)}; " + "; ".join(shown)
                       + f" (the ranks that keep every id within {budget:g} MiB, else the smallest)")

    def _ranks(self, rows: int, labels: int) -> list[int | None]:
        """Full rank when every id fits at one byte a value; else the largest rank that fits at one, and
        full rank at two values a byte when that fits and the lower rank is under FULL_RANK_WORTH_IT;
        when none does, the smallest rank, whose file the size budget then brings within it by dropping
        the rows of smallest norm."""
        budget = self.options.size_budget
        if size_budget.fits(rows, labels, labels, budget, dsub=1):
            return [None]
        lower = [r for r in RANKS if r < labels and size_budget.fits(rows, r, labels, budget, dsub=1)][:1]
        full = [None] if size_budget.fits(rows, labels, labels, budget, dsub=2) and (
            not lower or lower[0] < FULL_RANK_WORTH_IT) else []
        return full + lower or [RANKS[-1] if RANKS[-1] < labels else None]

    def fit(self, candidate: Candidate, part: Part, work: Path | None = None) -> FastTextModel:
        p = candidate.params
        key = (id(part), p["c"], p["min_lines"])
        if self._fit is None or self._fit[0] != key:
            self._fit = self._svd = None
            self._fit = (key, *self._coefficients(part, p["c"], p["min_lines"]))
        _, vocabulary, weights, labels, label_counts = self._fit
        input_rows, output = self._factorise(key, weights, p["rank"], len(labels))
        return FastTextModel(vocabulary, labels, input_rows, output, label_counts)

    def _factorise(self, key: tuple, weights: np.ndarray, rank: int | None, n_labels: int):
        """(input rows, output matrix) whose product is `weights` (full rank) or its best rank-r
        approximation, sliced from one truncated SVD at the highest rank the candidates ask for."""
        if rank is None or rank >= n_labels:
            return weights, np.eye(n_labels, dtype=np.float32)
        if self._svd is None or self._svd[0] != key or self._svd[1].shape[1] < rank:
            from sklearn.utils.extmath import randomized_svd

            u, s, vt = randomized_svd(weights, n_components=rank, n_iter=4, random_state=self.options.seed)
            self._svd = (key, (u * s).astype(np.float32), vt.T.astype(np.float32))
        _, us, v = self._svd
        return np.ascontiguousarray(us[:, :rank]), np.ascontiguousarray(v[:, :rank])

    def _coefficients(self, part: Part, c: float, min_lines: int) -> tuple:
        started = time.monotonic()
        labels = sorted(part.label_counts())
        vocabulary = kept_vocabulary(part.lines, min_lines)
        x = vocabulary.features(part.lines)
        idf = idf_weights(x)
        x = sparse.csr_matrix(x.multiply(idf.reshape(1, -1)))
        y = label_matrix(part, labels)
        beta = self._fit_labels(x, y, c)
        self.log(f"  liblinear C={c:g}: {len(part):,} lines, {vocabulary.rows:,} ids with a row (in {min_lines}+ "
                 f"lines), {len(labels):,} labels, in {time.monotonic() - started:.1f} s")
        beta *= idf.reshape(-1, 1).astype(np.float32)
        return vocabulary, beta, labels, y.sum(axis=0).tolist()

    def _fit_labels(self, x: sparse.csr_matrix, y: np.ndarray, c: float) -> np.ndarray:
        """(ids x labels) liblinear coefficients, one independent problem per label, in blocks so that
        progress (labels done, an ETA) is logged every PROGRESS_SECONDS."""
        from joblib import Parallel, delayed

        started = last = time.monotonic()
        columns, n = [], y.shape[1]
        block = max(1, 8 * self.options.threads)
        with Parallel(n_jobs=self.options.threads, prefer="threads") as parallel:
            for start in range(0, n, block):
                columns += parallel(delayed(_fit_one)(x, y[:, j], c, self.options.seed)
                                    for j in range(start, min(n, start + block)))
                now = time.monotonic()
                if now - last >= PROGRESS_SECONDS and len(columns) < n:
                    last = now
                    eta = (now - started) / len(columns) * (n - len(columns))
                    self.log(f"    {len(columns):,} of {n:,} labels fitted, ETA {eta:.0f} s")
        return np.stack(columns, axis=1).astype(np.float32)


def _describe(c: float, min_lines: int, rank: int | None) -> str:
    ids = "every id" if min_lines == 1 else f"ids in {min_lines}+ lines"
    return f"linear C={c:g}, {ids}, " + ("full rank" if rank is None else f"rank {rank}")


def kept_vocabulary(lines: list[str], min_lines: int) -> Vocabulary:
    """The pruned vocabulary of the ids found in at least `min_lines` lines (and `</s>`, always kept):
    words and hashed pairs, as fastText's pruned dictionary serves them."""
    full = Vocabulary.from_lines(lines, BUCKET)
    df = np.bincount(full.features(lines).indices, minlength=full.rows)
    keep = np.flatnonzero(df >= min_lines)
    return pruned_vocabulary(full, keep)[0]


def idf_weights(x: sparse.csr_matrix) -> np.ndarray:
    """Smoothed idf of each id (as scikit-learn's TfidfVectorizer)."""
    df = np.bincount(x.indices, minlength=x.shape[1])
    return np.log((1 + x.shape[0]) / (1 + df)) + 1


def label_matrix(part: Part, labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    y = np.zeros((len(part), len(labels)), dtype=np.int8)
    for i, example in enumerate(part.examples):
        y[i, [index[t] for t in example.labels]] = 1
    return y


def _fit_one(x: sparse.csr_matrix, y: np.ndarray, c: float, seed: int) -> np.ndarray:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():  # a label on every line (or none): a constant the model cannot hold
        return np.zeros(x.shape[1])
    # The dual solver where ids outnumber lines (60x faster on 2,400 Debian texts), the primal one
    # where lines outnumber ids (the dual took 130 s for 1,600 labels on 1,438 lines and 648 ids).
    model = LogisticRegression(C=c, solver="liblinear", dual=x.shape[1] > x.shape[0], fit_intercept=False,
                               max_iter=1000, random_state=seed)
    with warnings.catch_warnings():
        # A label the solver has not settled in 1,000 iterations is still as good as the others on
        # validation; the candidate is scored as a whole.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y).coef_[0]
