"""The input rows fastText 0.9.3 averages for a line, computed the way its Dictionary does.

For a supervised model without subwords (minn = maxn = 0) a line's rows are: the id of each
known word, in order, then `</s>`, then for each token (`</s>` included) one row per word n-gram
it starts, of 2 to wordNgrams tokens, `nwords + hash(n-gram) % bucket`. A word the dictionary
does not know has no row of its own but still takes part in the n-grams. Hashes are 32-bit
FNV-1a over the UTF-8 bytes, each byte sign-extended as fastText's `int8_t(str[i])` does; an
n-gram's hash widens the words' hashes as fastText does, from int32 to uint64 (src/dictionary.cc,
`hash`, `addWordNgrams`, `pushHash`). In a pruned dictionary (`fasttext quantize -cutoff`, or
model_file.quantize with rows kept) only the kept buckets have a row, in the order the
dictionary's pruneidx gives them; an n-gram whose bucket was not kept has no row at all.
"""

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
from scipy import sparse

EOS = "</s>"
_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_PAIR_MULTIPLIER = np.uint64(116049371)
_MASK32 = 0xFFFFFFFF


def token_hash(token: str) -> int:
    """fastText's Dictionary::hash of a token, as an unsigned 32-bit integer."""
    h = _FNV_OFFSET
    for byte in token.encode("utf-8"):
        h = ((h ^ (byte | 0xFFFFFF00 if byte >= 0x80 else byte)) * _FNV_PRIME) & _MASK32
    return h


def _as_widened(h: int) -> int:
    """The uint64 that fastText's `uint64_t h = hashes[i]` makes of an int32 word hash."""
    return h | 0xFFFFFFFF00000000 if h & 0x80000000 else h


class Vocabulary:
    """The words of a model (`</s>` first, then by frequency), its number of n-gram buckets, the
    longest word n-gram (fastText's wordNgrams) and, when pruned, the kept buckets' rows."""

    def __init__(self, words: Sequence[str], bucket: int, counts: Sequence[int] | None = None,
                 pruned: dict[int, int] | None = None, word_ngrams: int = 2):
        if bucket < 1:
            raise ValueError("bucket must be at least 1")
        if word_ngrams < 1:
            raise ValueError("word_ngrams must be at least 1")
        self.words = list(words)
        self.counts = list(counts) if counts is not None else [1] * len(self.words)
        self.bucket = bucket
        self.pruned = pruned  # bucket -> row among the kept buckets; None: every bucket has its row
        self.word_ngrams = word_ngrams
        self.index = {word: i for i, word in enumerate(self.words)}
        self._hashes: dict[str, int] = {}
        if pruned is not None and sorted(pruned.values()) != list(range(len(pruned))):
            raise ValueError("the kept buckets' rows must be 0 .. (buckets kept - 1)")

    @classmethod
    def from_lines(cls, lines: Iterable[str], bucket: int, min_lines: int = 1) -> "Vocabulary":
        """The tokens of the cleaned lines found in at least `min_lines` of them, and `</s>`, most
        frequent first (fastText counts `</s>` once per line)."""
        counts, lines_with = Counter(), Counter()
        n = 0
        for line in lines:
            tokens = line.split()
            counts.update(tokens)
            lines_with.update(set(tokens))
            n += 1
        kept = {word: count for word, count in counts.items() if lines_with[word] >= min_lines and word != EOS}
        ranked = [(EOS, n)] + sorted(kept.items(), key=lambda item: (-item[1], item[0]))
        return cls([w for w, _ in ranked], bucket, [c for _, c in ranked])

    @property
    def rows(self) -> int:
        """The input matrix's rows: one per word, one per bucket (kept)."""
        return len(self.words) + (self.bucket if self.pruned is None else len(self.pruned))

    def _widened_hash(self, token: str) -> int:
        h = self._hashes.get(token)
        if h is None:
            h = self._hashes[token] = _as_widened(token_hash(token))
        return h

    def line_ids(self, line: str) -> list[int]:
        """The rows fastText averages for one cleaned line (a line of space-separated tokens)."""
        tokens = line.split() + [EOS]
        ids = [self.index[t] for t in tokens if t in self.index]
        buckets = self._ngram_buckets(np.array([self._widened_hash(t) for t in tokens], dtype=np.uint64))
        if self.pruned is None:
            ids.extend((len(self.words) + buckets).tolist())
        else:
            ids.extend(len(self.words) + self.pruned[b] for b in buckets.tolist() if b in self.pruned)
        return ids

    def _ngram_buckets(self, hashes: np.ndarray) -> np.ndarray:
        """The bucket of each word n-gram, in addWordNgrams' order: by first token, then by length."""
        n = len(hashes)
        grams = np.zeros((n, self.word_ngrams - 1), dtype=np.uint64)
        valid = np.zeros(grams.shape, dtype=bool)
        h = hashes
        with np.errstate(over="ignore"):
            for length in range(2, self.word_ngrams + 1):
                h = h[:-1] * _PAIR_MULTIPLIER + hashes[length - 1:]
                grams[: len(h), length - 2] = h
                valid[: len(h), length - 2] = True
        return (grams[valid] % np.uint64(self.bucket)).astype(np.int64)

    def features(self, lines: Sequence[str], weights: np.ndarray | None = None) -> sparse.csr_matrix:
        """One row per line: each id's share of the average fastText takes (occurrences / ids),
        times `weights[id]` when given. So `features(lines) @ input_matrix` is fastText's hidden vector."""
        indptr, indices, data = [0], [], []
        for line in lines:
            ids = self.line_ids(line)
            for row, occurrences in Counter(ids).items():
                indices.append(row)
                data.append(occurrences / len(ids))
            indptr.append(len(indices))
        matrix = sparse.csr_matrix((np.array(data, dtype=np.float64), np.array(indices, dtype=np.int64),
                                    np.array(indptr, dtype=np.int64)), shape=(len(lines), self.rows))
        matrix.sort_indices()
        if weights is not None:
            matrix = sparse.csr_matrix(matrix.multiply(weights.reshape(1, -1)))
        return matrix
