"""One long-lived `fasttext predict-prob` child process, fed over stdin/stdout.

Loading a model costs far more than predicting with it, so the process is started
once per Lambda container (lazily, on first use) and kept alive between requests.
Each text goes in as one line; fastText answers each line with one line and
flushes it. A lock serialises callers so that no caller can read another's answers.
"""

import logging
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

import fasttext_format
from fasttext_format import LABEL_PREFIX
from model_source import file_sha256

FASTTEXT_VERSION = "0.9.3"
_PREFIX_LENGTH = len(LABEL_PREFIX)
_READ_CHUNK = 1 << 16
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

log = logging.getLogger(__name__)


class FastTextError(Exception):
    """fastText could not answer; the message says why (for the log: it may name files), `code`
    says it in one word for the caller."""

    code = "fasttext_failed"


class FastTextUnavailable(FastTextError):
    """The binary or the model is missing or unusable, or the process died."""

    code = "process_died"


class FastTextBinaryMissing(FastTextUnavailable):
    code = "binary_unusable"


class FastTextModelInvalid(FastTextUnavailable):
    """The model file cannot be read, is no fastText model, or is cut short."""

    code = "model_invalid"


class FastTextLoadFailed(FastTextUnavailable):
    """The process exited while loading its model."""

    code = "load_failed"


class FastTextTimeout(FastTextError):
    """The process did not answer in time; it has been killed."""

    code = "answer_timeout"


class FastTextLoadTimeout(FastTextTimeout):
    """The process did not finish loading its model within its load limit; it has been killed."""

    code = "load_timeout"


class FastTextLoading(FastTextError):
    """The request's deadline came while the process was still loading its model; it is left
    loading, for a later request to find ready."""

    code = "loading"


class Deadline:
    """A point in time (time.monotonic) that every exchange of one request shares."""

    __slots__ = ("at",)

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True)
class ModelHeader:
    dim: int
    words: int
    labels: int


@dataclass(frozen=True)
class ModelFile:
    """What a process loaded: its model file's header and sha256."""

    header: ModelHeader
    sha256: str


def read_model_header(model_path: str) -> ModelHeader:
    """Read the dimensions of a fastText .bin model, raising FastTextModelInvalid if it is not one."""
    return _header(model_path, whole=False)


def inspect_model_file(model_path: str) -> ModelFile:
    """The model file's header and sha256, once its layout is checked whole: fastText 0.9.3 spins
    forever on a file cut short, so one is refused before starting."""
    header = _header(model_path, whole=True)
    try:
        return ModelFile(header=header, sha256=file_sha256(model_path))
    except OSError as e:
        raise FastTextModelInvalid(f"model file {model_path} cannot be read: {e.strerror}") from None


def _header(model_path: str, whole: bool) -> ModelHeader:
    try:
        header = fasttext_format.read_header(model_path, whole=whole)
    except OSError as e:
        raise FastTextModelInvalid(f"model file {model_path} cannot be read: {e.strerror}") from None
    except fasttext_format.FormatError as e:
        raise FastTextModelInvalid(f"model file {model_path} is not a whole fastText model ({e})") from None
    return ModelHeader(dim=header.dim, words=header.words, labels=len(header.labels))


def parse_answer(line: str, limit: int | None = None) -> list[tuple[str, float]]:
    """Turn one `__label__a 0.9 __label__b 0.1` answer line into (label, probability) pairs,
    only the first `limit` of them when given (the line holds the process's k, often 50)."""
    fields = line.split() if limit is None else line.split(None, 2 * limit)[: 2 * limit]
    labels, printed = fields[::2], fields[1::2]
    if len(labels) != len(printed) or not all(label.startswith(LABEL_PREFIX) for label in labels):
        raise FastTextError("fastText gave an answer that could not be parsed")
    pairs = []
    # _probability written out: a call per pair is what a plain request would pay for explain's sake.
    for label, p in zip(labels, printed):
        probability = round(float(p) - 1e-5, 6)
        pairs.append((label[_PREFIX_LENGTH:], 1.0 if probability > 1 else probability if probability > 0 else 0.0))
    return pairs


def probabilities_of(line: str, labels: list[str]) -> tuple[dict[str, float], int]:
    """The probabilities one answer line gives those of `labels` it holds, and how many labels it
    holds: a look-up per label, for the caller who needs only a few of a long line's labels."""
    spaced = f" {line} "
    found = {}
    for label in labels:
        start = spaced.find(f" {LABEL_PREFIX}{label} ")
        if start >= 0:
            start += _PREFIX_LENGTH + len(label) + 2
            try:
                found[label] = _probability(spaced[start:spaced.index(" ", start)])
            except ValueError:
                raise FastTextError("fastText gave an answer that could not be parsed") from None
    return found, spaced.count(" " + LABEL_PREFIX)


def _probability(printed: str) -> float:
    # predict-prob prints exp(log(p + 1e-5)): undo the offset, so 1.00001 is 1 and 1e-05 is 0.
    probability = round(float(printed) - 1e-5, 6)
    return 1.0 if probability > 1 else probability if probability > 0 else 0.0


class FastTextProcess:
    """A `fasttext predict-prob MODEL - K` child process. Started, it loads its model; it is ready
    once it has answered an empty line sent at its start. Restarted when it dies, killed when it
    hangs or does not load within `load_timeout` seconds of waiting for it."""

    def __init__(self, binary_path: str, model_path: str, k: int, timeout: float, load_timeout: float | None = None):
        self.binary_path = binary_path
        self.model_path = model_path
        self.k = k
        self.timeout = timeout
        self.load_timeout = timeout if load_timeout is None else load_timeout
        self.loaded: ModelFile | None = None  # the file the current (or last) child loaded
        self.last_used = 0.0  # time.monotonic() of its last answer, for eviction
        self.starts = 0
        self._proc: subprocess.Popen | None = None
        self._selector: selectors.BaseSelector | None = None
        self._buffer = bytearray()
        self._ready = False
        self._load_waited = 0.0
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """Whether the child is started and alive (one that died is restarted by the next request)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def started(self) -> bool:
        """Whether a child was started and not stopped since (it may have died: the next
        exchange finds out and starts another), without asking the system."""
        return self._proc is not None

    @property
    def ready(self) -> bool:
        """Whether the child is alive and has loaded its model."""
        return self._ready and self.running

    def check_binary(self) -> None:
        """Raise FastTextBinaryMissing when the binary could not be started; starts nothing."""
        if not os.path.isfile(self.binary_path):
            raise FastTextBinaryMissing(f"fastText binary {self.binary_path} is missing")
        if not os.access(self.binary_path, os.X_OK):
            raise FastTextBinaryMissing(f"fastText binary {self.binary_path} is not executable")

    def predict(self, lines: list[str], limit: int | None = None, deadline: Deadline | None = None) -> list[list[tuple[str, float]]]:
        """Answer each line (one cleaned text, no newline) with its top-k (label, probability) pairs.

        A process found dead mid-request (killed, crashed) is restarted and the whole
        batch asked again once; a second death, or the deadline, raises FastTextError.
        """
        return [parse_answer(line, limit) for line in self.answer_lines(lines, deadline)]

    def answer_lines(self, lines: list[str], deadline: Deadline | None = None) -> list[str]:
        """fastText's answer line for each line, unparsed (probabilities_of reads a few labels of
        one), by `deadline` (else within `timeout`); restarted once as predict is."""
        payload = "".join(line + "\n" for line in lines).encode("utf-8", "replace")
        deadline = deadline or Deadline(self.timeout)
        with self._lock:
            try:
                return self._round_trip(payload, len(lines), deadline)
            except _ProcessDied:
                log.warning("fastText process died mid-request; restarting it once")
            try:
                return self._round_trip(payload, len(lines), deadline)
            except _ProcessDied as e:
                raise FastTextUnavailable(str(e)) from None

    def start(self) -> None:
        """Start the child when it is not running, and return while it loads its model."""
        with self._lock:
            self._running_process()

    def wait_until_ready(self, deadline: Deadline) -> None:
        """Start the child when it is not running, and wait by `deadline` for it to load."""
        with self._lock:
            self._ready_process(deadline)

    def rss_bytes(self) -> int:
        """The child's resident memory (0 when it is not running)."""
        pid = self.pid
        try:
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * _PAGE_SIZE
        except (OSError, TypeError, ValueError, IndexError):
            return 0

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _round_trip(self, payload: bytes, expected_lines: int, deadline: Deadline) -> list[str]:
        proc = self._ready_process(deadline)
        try:
            raw_lines = self._exchange(proc, payload, expected_lines, deadline)
        except (FastTextTimeout, _ProcessDied):
            self._kill()
            raise
        self.last_used = time.monotonic()
        return [line.decode("utf-8", "replace") for line in raw_lines]

    def _ready_process(self, deadline: Deadline) -> subprocess.Popen:
        proc = self._running_process()
        if self._ready:
            return proc
        began = time.monotonic()
        # The load limit counts only time spent waiting for it: a frozen Lambda container waits for nothing.
        load_left = self.load_timeout - self._load_waited
        request_left = deadline.remaining()
        try:
            self._exchange(proc, b"", 1, Deadline(min(load_left, request_left)))
        except FastTextTimeout:
            self._load_waited += time.monotonic() - began
            if request_left < load_left:
                raise FastTextLoading(f"fastText is still loading model {self.model_path}") from None
            self._kill()
            # A truncated model can also make fastText 0.9.3 spin forever while loading it.
            raise FastTextLoadTimeout(
                f"fastText did not load model {self.model_path} within {self.load_timeout:g} s; it may be corrupt"
            ) from None
        except _ProcessDied as e:
            self._kill()
            raise FastTextLoadFailed(f"{e}; model {self.model_path} could not be loaded") from None
        self._ready = True
        self.last_used = time.monotonic()
        return proc

    def _running_process(self) -> subprocess.Popen:
        # A loaded child that died is found out by the exchange (a broken pipe, or no answer),
        # which starts another: the warm path asks the system nothing more.
        if self._proc is not None and not self._ready and self._proc.poll() is not None:
            log.warning("fastText process exited with status %s while loading", self._proc.returncode)
            self._kill()
        if self._proc is None:
            self._proc = self._start()
        return self._proc

    def _start(self) -> subprocess.Popen:
        self.check_binary()
        self.loaded = inspect_model_file(self.model_path)
        proc = subprocess.Popen(
            [self.binary_path, "predict-prob", self.model_path, "-", str(self.k)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
        )
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(proc.stdout, selectors.EVENT_READ)
        self._ready, self._load_waited = False, 0.0
        # The empty line fastText answers once it has loaded the model: readiness, without a thread.
        self._write_some(proc, memoryview(b"\n"))
        self.starts += 1
        log.info("started fastText process pid %d for model %s", proc.pid, self.model_path)
        return proc

    def _exchange(self, proc: subprocess.Popen, payload: bytes, expected_lines: int, deadline: Deadline) -> list[bytes]:
        """Write the payload and read `expected_lines` answer lines, both at once, by `deadline`.

        Writing everything before reading could deadlock: a big batch fills the stdin
        pipe while fastText blocks on a full stdout pipe. So one loop does both.
        """
        out = self._buffer
        lines: list[bytes] = []
        pending = memoryview(payload)
        # Most requests fit in the (empty) stdin pipe: write them at once, then only wait for
        # answers, with the selector made once per process; stdin is watched only if some is left.
        if pending:
            pending = pending[self._write_some(proc, pending):]
        sel = self._selector
        watching_stdin = bool(pending)
        if watching_stdin:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        try:
            while len(lines) < expected_lines:
                # On one CPU fastText has mostly answered by the time the write returns (it runs
                # as soon as its input arrives): read first, and wait only if nothing is there.
                chunk = b"" if watching_stdin else self._read_now(proc)
                if not chunk:
                    remaining = deadline.remaining()
                    if remaining <= 0:
                        raise FastTextTimeout("fastText did not answer by the request's deadline")
                    for key, _ in sel.select(remaining):
                        if key.fileobj is proc.stdin:
                            pending = pending[self._write_some(proc, pending):]
                            if not pending:
                                sel.unregister(proc.stdin)
                                watching_stdin = False
                        else:
                            chunk = self._read_some(proc)
                if chunk:
                    out += chunk
                    *complete, rest = out.split(b"\n")
                    lines.extend(complete)
                    out[:] = rest
        finally:
            if watching_stdin:
                sel.unregister(proc.stdin)
        if out or len(lines) != expected_lines:
            raise _ProcessDied("fastText answered more lines than it was asked")
        return lines

    def _write_some(self, proc: subprocess.Popen, pending: memoryview) -> int:
        try:
            return os.write(proc.stdin.fileno(), pending)
        except BlockingIOError:
            return 0
        except BrokenPipeError:
            raise _ProcessDied(self._death_reason(proc)) from None

    def _read_now(self, proc: subprocess.Popen) -> bytes:
        """What fastText has written so far; b"" when nothing yet (the pipe does not block)."""
        try:
            return self._read_some(proc)
        except BlockingIOError:
            return b""

    def _read_some(self, proc: subprocess.Popen) -> bytes:
        chunk = os.read(proc.stdout.fileno(), _READ_CHUNK)
        if not chunk:
            raise _ProcessDied(self._death_reason(proc))
        return chunk

    def _death_reason(self, proc: subprocess.Popen) -> str:
        try:
            status = proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            status = None
        stderr = _read_available(proc.stderr)
        if stderr:
            log.error("fastText stderr: %s", stderr.decode("utf-8", "replace").strip()[-2000:])
        if status is not None and status < 0:
            return f"fastText process was killed by signal {signal.Signals(-status).name}"
        if status:
            return f"fastText exited with status {status}"
        return "fastText process closed its output unexpectedly"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()
        self._buffer.clear()
        self._ready = False


class _ProcessDied(Exception):
    pass


def _read_available(stream) -> bytes:
    try:
        return os.read(stream.fileno(), _READ_CHUNK) or b""
    except (BlockingIOError, OSError, ValueError):
        return b""
