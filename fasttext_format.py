"""fastText 0.9.3's model file (.bin, .ftz), read and written: the one place that knows its layout.

Standard library only: the runtime reads a model's header and labels with it.

The layout (src/fasttext.cc saveModel, args.cc, dictionary.cc, densematrix.cc, quantmatrix.cc,
productquantizer.cc), little-endian:
  magic, version                          int32 x 2
  args                                    12 int32 (dim ... lrUpdateRate), double t
  dictionary: size, nwords, nlabels       int32 x 3
              ntokens, pruneidx_size      int64 x 2 (pruneidx_size -1: not pruned)
              entries                     NUL-terminated bytes, int64 count, int8 type (0 word, 1 label)
              pruneidx                    pruneidx_size x (int32 bucket, int32 row among the buckets kept)
  quant                                   bool (1 byte)
  input matrix                            dense or, when quant, quantized
  qout                                    bool (read as such only when quant)
  output matrix                           dense or, when quant and qout, quantized
Dense matrix: int64 rows, int64 cols, float32 rows x cols.
Quantized matrix: bool qnorm, int64 rows, int64 cols, int32 codesize, uint8 codes (rows x nsubq),
the product quantizer (int32 dim, nsubq, dsub, lastdsub, float32 dim x 256 centroids), then when
qnorm: uint8 norm codes (rows) and the norm quantizer (a product quantizer of dim 1).

On reading, the arrays are given as Spans (offset, length in bytes) into the file, so that large
matrices can be memory-mapped; on writing, they are any objects of the buffer protocol.
"""

import mmap
import re
import struct
import sys
from dataclasses import dataclass, fields
from typing import Any

MAGIC = 793712314
VERSION = 12
LABEL_PREFIX = "__label__"  # fastText's default -label, with which every label of the house is written
CENTROIDS = 256  # ProductQuantizer::ksub_
LOSSES = {"hs": 1, "ns": 2, "softmax": 3, "ova": 4}
MODELS = {"cbow": 1, "sg": 2, "supervised": 3}
WORD, LABEL = 0, 1

_HEAD = struct.Struct("<2i")
_ARGS = struct.Struct("<12id")
_DICT_HEADER = struct.Struct("<3i2q")
_ENTRY_TAIL = struct.Struct("<qb")
_PRUNE_PAIR = struct.Struct("<2i")
_ENTRY = re.compile(rb"([^\x00]*)\x00([\s\S]{8})([\s\S])")
_DENSE_HEADER = struct.Struct("<2q")
_QUANT_HEADER = struct.Struct("<?2qi")
_PQ_HEADER = struct.Struct("<4i")
_FLAG = struct.Struct("<?")


class FormatError(ValueError):
    """The file is not a fastText model this module can read, or the model cannot be written as one."""


@dataclass(frozen=True)
class Args:
    """Args::save's fields, by fastText's names (loss and model as their enum values)."""

    dim: int
    ws: int = 5
    epoch: int = 5
    minCount: int = 1
    neg: int = 5
    wordNgrams: int = 2
    loss: int = LOSSES["ova"]
    model: int = MODELS["supervised"]
    bucket: int = 2_000_000
    minn: int = 0
    maxn: int = 0
    lrUpdateRate: int = 100
    t: float = 1e-4

    def values(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def loss_name(self) -> str:
        return next((name for name, value in LOSSES.items() if value == self.loss), str(self.loss))


@dataclass(frozen=True)
class Span:
    """Where an array lies in the file read: `length` bytes from `offset`."""

    offset: int
    length: int


Array = Any  # a Span on reading; on writing, any buffer-protocol object (bytes, numpy arrays)


@dataclass
class Dictionary:
    """The dictionary's entries, as stored: labels with their prefix; `pruneidx` None when not pruned,
    else bucket -> row among the kept buckets, in the file's order."""

    words: list[str]
    word_counts: list[int]
    labels: list[str]
    label_counts: list[int]
    ntokens: int
    pruneidx: dict[int, int] | None = None


@dataclass
class DenseMatrix:
    rows: int
    cols: int
    data: Array  # float32, rows x cols


@dataclass
class ProductQuantizer:
    dim: int
    dsub: int
    centroids: Array  # float32, dim x 256, in ProductQuantizer's order (see get_centroids)

    @property
    def nsubq(self) -> int:
        return -(-self.dim // self.dsub)

    @property
    def lastdsub(self) -> int:
        return self.dim % self.dsub or self.dsub


@dataclass
class QuantMatrix:
    rows: int
    cols: int
    codes: Array  # uint8, rows x nsubq
    pq: ProductQuantizer
    norm_codes: Array | None = None  # uint8, one per row, when the norms are quantized apart (qnorm)
    norm_pq: ProductQuantizer | None = None  # dim 1

    @property
    def qnorm(self) -> bool:
        return self.norm_codes is not None


Matrix = DenseMatrix | QuantMatrix


@dataclass
class ModelFile:
    args: Args
    dictionary: Dictionary
    input: Matrix
    output: Matrix
    version: int = VERSION


@dataclass(frozen=True)
class Header:
    """What the runtime needs to know of a model before serving it."""

    args: Args
    words: int
    labels: list[str]  # as predict-prob prints them, without the label prefix
    quantized: bool
    pruned: bool

    @property
    def dim(self) -> int:
        return self.args.dim


# --- sizes ------------------------------------------------------------------------------------------

def entry_bytes(entry: str) -> int:
    return len(entry.encode("utf-8", "surrogateescape")) + 1 + _ENTRY_TAIL.size


def dictionary_bytes(entries_bytes: int, pruned_buckets: int | None) -> int:
    """The dictionary's size: `entries_bytes` is the sum of entry_bytes over words and stored labels."""
    return _DICT_HEADER.size + entries_bytes + _PRUNE_PAIR.size * (pruned_buckets or 0)


def dense_matrix_bytes(rows: int, cols: int) -> int:
    return _DENSE_HEADER.size + 4 * rows * cols


def quant_matrix_bytes(rows: int, cols: int, dsub: int, qnorm: bool) -> int:
    nsubq = -(-cols // dsub)
    norms = rows + _PQ_HEADER.size + 4 * CENTROIDS if qnorm else 0
    return _QUANT_HEADER.size + rows * nsubq + _PQ_HEADER.size + 4 * CENTROIDS * cols + norms


def file_bytes(dictionary_size: int, input_size: int, output_size: int) -> int:
    """The whole file: header, args, dictionary, the two flags and the two matrices."""
    return _HEAD.size + _ARGS.size + dictionary_size + 2 * _FLAG.size + input_size + output_size


# --- reading ----------------------------------------------------------------------------------------

class _Reader:
    """A cursor over the file's bytes (a memory map: nothing is read until it is looked at)."""

    def __init__(self, data, name: str):
        self.data = data
        self.name = name
        self.offset = 0

    def unpack(self, layout: struct.Struct) -> tuple:
        if self.offset + layout.size > len(self.data):
            raise FormatError(f"{self.name} is not a fastText model (it ends too soon)")
        values = layout.unpack_from(self.data, self.offset)
        self.offset += layout.size
        return values

    def entry(self) -> str:
        end = self.data.find(b"\0", self.offset)
        if end < 0:
            raise FormatError(f"{self.name} is not a fastText model (an unterminated dictionary entry)")
        entry = bytes(self.data[self.offset:end]).decode("utf-8", "surrogateescape")
        self.offset = end + 1
        return entry

    def span(self, length: int) -> Span:
        if length < 0 or self.offset + length > len(self.data):
            raise FormatError(f"{self.name} is not a fastText model (an array runs past its end)")
        span = Span(self.offset, length)
        self.offset += length
        return span


def _read_start(reader: _Reader) -> tuple[int, Args]:
    magic, version = reader.unpack(_HEAD)
    if magic != MAGIC or not 0 < version <= VERSION:
        raise FormatError(f"{reader.name} is not a fastText model (bad header)")
    return version, Args(*reader.unpack(_ARGS))


def _read_dictionary(reader: _Reader) -> Dictionary:
    size, nwords, nlabels, ntokens, prune_size = reader.unpack(_DICT_HEADER)
    if size != nwords + nlabels or min(nwords, nlabels) < 0:
        raise FormatError(f"{reader.name} is not a fastText model (its dictionary counts disagree)")
    start = reader.offset
    d = Dictionary([], [], [], [], ntokens, None if prune_size < 0 else {})
    for name, count, kind in _ENTRY.findall(reader.data, start, _entries_end(reader, size)):
        entry = name.decode("utf-8", "surrogateescape")
        if kind[0] == WORD and not d.labels:
            d.words.append(entry)
            d.word_counts.append(int.from_bytes(count, "little", signed=True))
        elif kind[0] == LABEL:
            d.labels.append(entry)
            d.label_counts.append(int.from_bytes(count, "little", signed=True))
        else:
            raise FormatError(f"{reader.name}: dictionary entry {entry!r} is neither a word before the labels "
                              "nor a label")
    if len(d.words) != nwords:
        raise FormatError(f"{reader.name}: the dictionary says {nwords} words and holds {len(d.words)}")
    if prune_size > 0:
        pairs = reader.span(_PRUNE_PAIR.size * prune_size)
        d.pruneidx.update(_PRUNE_PAIR.iter_unpack(reader.data[pairs.offset:pairs.offset + pairs.length]))
    return d


def _read_pq(reader: _Reader, dim: int) -> ProductQuantizer:
    pq_dim, nsubq, dsub, lastdsub = reader.unpack(_PQ_HEADER)
    pq = ProductQuantizer(pq_dim, max(dsub, 1), None)
    if pq_dim != dim or dsub < 1 or (nsubq, lastdsub) != (pq.nsubq, pq.lastdsub):
        raise FormatError(f"{reader.name}: a product quantizer's shape ({pq_dim}, {nsubq}, {dsub}, {lastdsub}) "
                          f"is not one fastText makes for dimension {dim}")
    pq.centroids = reader.span(4 * dim * CENTROIDS)
    return pq


def _read_matrix(reader: _Reader, quantized: bool) -> Matrix:
    if not quantized:
        rows, cols = reader.unpack(_DENSE_HEADER)
        return DenseMatrix(rows, cols, reader.span(4 * rows * cols))
    qnorm, rows, cols, codesize = reader.unpack(_QUANT_HEADER)
    codes = reader.span(codesize)
    pq = _read_pq(reader, cols)
    if codesize != rows * pq.nsubq:
        raise FormatError(f"{reader.name}: {codesize} codes for {rows} rows of {pq.nsubq} sub-quantizers")
    matrix = QuantMatrix(rows, cols, codes, pq)
    if qnorm:
        matrix.norm_codes = reader.span(rows)
        matrix.norm_pq = _read_pq(reader, 1)
    return matrix


def _flag(reader: _Reader) -> bool:
    return reader.unpack(_FLAG)[0]


def read_model_file(path) -> ModelFile:
    """The model's args, dictionary and matrices; the matrices' arrays as Spans into the file."""
    with open(path, "rb") as f, _mapped(f, path) as data:
        reader = _Reader(data, str(path))
        version, args = _read_start(reader)
        dictionary = _read_dictionary(reader)
        quant = _flag(reader)
        matrix_in = _read_matrix(reader, quant)
        if dictionary.pruneidx is not None and not quant:
            raise FormatError(f"{path}: a pruned dictionary with a dense input matrix (fastText refuses it)")
        qout = _flag(reader)
        matrix_out = _read_matrix(reader, quant and qout)
        if reader.offset != len(data):
            raise FormatError(f"{path}: {len(data) - reader.offset} bytes after the output matrix")
    return ModelFile(args, dictionary, matrix_in, matrix_out, version)


def read_header(path, whole: bool = False) -> Header:
    """The args, words, labels and whether the model is quantized, for the runtime: the words are only
    counted and the matrices not read (model.bin's in 20 ms; its whole dictionary takes 130). With
    `whole`, FormatError unless the matrices the header announces are all there (fastText 0.9.3 spins
    forever on a file cut short)."""
    with open(path, "rb") as f, _mapped(f, path) as data:
        reader = _Reader(data, str(path))
        _, args = _read_start(reader)
        size, nwords, nlabels, _, prune_size = reader.unpack(_DICT_HEADER)
        if size != nwords + nlabels or min(nwords, nlabels) < 0:
            raise FormatError(f"{reader.name} is not a fastText model (its dictionary counts disagree)")
        words = _entries_end(reader, nwords)
        labels = [name.decode("utf-8", "surrogateescape").removeprefix(LABEL_PREFIX)
                  for name, _, _ in _ENTRY.findall(data, words, _entries_end(reader, nlabels, words))]
        reader.offset += 8 * max(prune_size, 0)
        quantized = _flag(reader)
        if whole:
            _read_matrix(reader, quantized)
            qout = _flag(reader)
            _read_matrix(reader, quantized and qout)
            if reader.offset != len(data):
                raise FormatError(f"{path}: {len(data) - reader.offset} bytes after the output matrix")
    return Header(args, nwords, labels, quantized, prune_size >= 0)


def _entries_end(reader: _Reader, count: int, start: int | None = None) -> int:
    """Where `count` dictionary entries from `start` (else the reader's offset) end; the reader moves there."""
    # Each entry is its bytes up to a NUL, an int64 count and an int8 type: one regex, in C.
    block = re.compile(rb"(?:[^\x00]*\x00[\s\S]{9}){%d}" % count).match(reader.data, reader.offset
                                                                          if start is None else start)
    if block is None:
        raise FormatError(f"{reader.name} is not a fastText model (its dictionary runs past its end)")
    reader.offset = block.end()
    return block.end()


class _mapped:
    """The file's bytes as a read-only memory map (b"" for an empty file, which mmap refuses)."""

    def __init__(self, f, path):
        self.f, self.path, self.map = f, path, None

    def __enter__(self):
        try:
            self.map = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            return b""
        return self.map

    def __exit__(self, *exc):
        if self.map is not None:
            self.map.close()


# --- writing ----------------------------------------------------------------------------------------

def _bytes_of(array: Array, length: int, item_format: str, what: str) -> memoryview:
    view = memoryview(array)
    if not view.c_contiguous:
        raise FormatError(f"{what} must be C-contiguous")
    if view.format.lstrip("<=") != item_format:
        raise FormatError(f"{what} must hold {'float32' if item_format == 'f' else 'uint8'} values, "
                          f"not {view.format!r}")
    if view.nbytes != length:
        raise FormatError(f"{what} holds {view.nbytes} bytes; the layout needs {length}")
    return view.cast("B")


def _int32(value: int, what: str) -> int:
    if not 0 <= value < 2**31:
        raise FormatError(f"{what} ({value}) does not fit fastText's int32")
    return value


def _write_dictionary(f, d: Dictionary) -> None:
    f.write(_DICT_HEADER.pack(_int32(len(d.words) + len(d.labels), "the dictionary's size"), len(d.words),
                              len(d.labels), d.ntokens, -1 if d.pruneidx is None else len(d.pruneidx)))
    for kind, entries, counts in ((WORD, d.words, d.word_counts), (LABEL, d.labels, d.label_counts)):
        for entry, count in zip(entries, counts, strict=True):
            f.write(entry.encode("utf-8", "surrogateescape") + b"\0" + _ENTRY_TAIL.pack(count, kind))
    f.write(b"".join(_PRUNE_PAIR.pack(bucket, row) for bucket, row in (d.pruneidx or {}).items()))


def _write_pq(f, pq: ProductQuantizer, what: str) -> None:
    f.write(_PQ_HEADER.pack(pq.dim, pq.nsubq, pq.dsub, pq.lastdsub))
    f.write(_bytes_of(pq.centroids, 4 * pq.dim * CENTROIDS, "f", f"{what}'s centroids"))


def _write_matrix(f, matrix: Matrix, what: str) -> None:
    if isinstance(matrix, DenseMatrix):
        f.write(_DENSE_HEADER.pack(matrix.rows, matrix.cols))
        f.write(_bytes_of(matrix.data, 4 * matrix.rows * matrix.cols, "f", what))
        return
    if matrix.pq.dim != matrix.cols:
        raise FormatError(f"{what}'s product quantizer has dimension {matrix.pq.dim}, not {matrix.cols}")
    codesize = _int32(matrix.rows * matrix.pq.nsubq, f"{what}'s code size")
    f.write(_QUANT_HEADER.pack(matrix.qnorm, matrix.rows, matrix.cols, codesize))
    f.write(_bytes_of(matrix.codes, codesize, "B", f"{what}'s codes"))
    _write_pq(f, matrix.pq, what)
    if matrix.qnorm:
        if matrix.norm_pq is None or (matrix.norm_pq.dim, matrix.norm_pq.dsub) != (1, 1):
            raise FormatError(f"{what}'s norms need a product quantizer of dimension 1")
        f.write(_bytes_of(matrix.norm_codes, matrix.rows, "B", f"{what}'s norm codes"))
        _write_pq(f, matrix.norm_pq, f"{what}'s norm")


def check_loadable(model: ModelFile) -> None:
    """Refuse what fastText's loadModel would read otherwise than written, or refuse."""
    quant = isinstance(model.input, QuantMatrix)
    if model.dictionary.pruneidx is not None and not quant:
        raise FormatError("a pruned dictionary needs a quantized input matrix (fastText refuses a pruned dense one)")
    if isinstance(model.output, QuantMatrix) and not quant:
        raise FormatError("a quantized output matrix needs a quantized input matrix (fastText reads it as dense)")
    if model.input.cols != model.args.dim or model.output.cols != model.args.dim:
        raise FormatError(f"the matrices have {model.input.cols} and {model.output.cols} columns; dim is "
                          f"{model.args.dim}")
    if model.output.rows != len(model.dictionary.labels):
        raise FormatError(f"the output matrix has {model.output.rows} rows for {len(model.dictionary.labels)} labels")


def write_model_file(path, model: ModelFile) -> None:
    """Write `model` as fastText's saveModel does (large arrays written from their buffers, not copied)."""
    if sys.byteorder != "little":
        raise FormatError("fastText's files are little-endian; this machine is not")
    check_loadable(model)
    with open(path, "wb") as f:
        f.write(_HEAD.pack(MAGIC, model.version))
        f.write(_ARGS.pack(*model.args.values()))
        _write_dictionary(f, model.dictionary)
        f.write(_FLAG.pack(isinstance(model.input, QuantMatrix)))
        _write_matrix(f, model.input, "the input matrix")
        f.write(_FLAG.pack(isinstance(model.output, QuantMatrix)))
        _write_matrix(f, model.output, "the output matrix")
