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
import struct
import subprocess
import threading
import time
from dataclasses import dataclass

FASTTEXT_VERSION = "0.9.3"
LABEL_PREFIX = "__label__"
_PREFIX_LENGTH = len(LABEL_PREFIX)

_MODEL_MAGIC = 793712314
_MODEL_MAX_FORMAT_VERSION = 12
# magic, version, 12 int32 args, one double (Args::save), then size, nwords, nlabels (Dictionary::save)
_MODEL_HEADER = struct.Struct("<ii12id3i")
_READ_CHUNK = 1 << 16

log = logging.getLogger(__name__)


class FastTextError(Exception):
    """fastText could not answer; the message says why, for the caller."""


class FastTextUnavailable(FastTextError):
    """The binary or the model is missing or unusable, or the process died."""


class FastTextTimeout(FastTextError):
    """The process did not answer in time; it has been killed."""


@dataclass(frozen=True)
class ModelHeader:
    dim: int
    words: int
    labels: int


def read_model_header(model_path: str) -> ModelHeader:
    """Read the dimensions of a fastText .bin model, raising FastTextUnavailable if it is not one."""
    try:
        with open(model_path, "rb") as f:
            raw = f.read(_MODEL_HEADER.size)
    except OSError as e:
        raise FastTextUnavailable(f"model file {model_path} cannot be read: {e.strerror}") from None
    if len(raw) < _MODEL_HEADER.size:
        raise FastTextUnavailable(f"model file {model_path} is not a fastText model (too short)")
    fields = _MODEL_HEADER.unpack(raw)
    magic, version, dim = fields[0], fields[1], fields[2]
    if magic != _MODEL_MAGIC or not 0 < version <= _MODEL_MAX_FORMAT_VERSION:
        raise FastTextUnavailable(f"model file {model_path} is not a fastText model (bad header)")
    words, labels = fields[-2], fields[-1]
    return ModelHeader(dim=dim, words=words, labels=labels)


def parse_answer(line: str, limit: int | None = None) -> list[tuple[str, float]]:
    """Turn one `__label__a 0.9 __label__b 0.1` answer line into (label, probability) pairs,
    only the first `limit` of them when given (the line holds the process's k, often 50)."""
    fields = line.split() if limit is None else line.split(None, 2 * limit)[: 2 * limit]
    labels, printed = fields[::2], fields[1::2]
    if len(labels) != len(printed) or not all(label.startswith(LABEL_PREFIX) for label in labels):
        raise FastTextError("fastText gave an answer that could not be parsed")
    return [(label[_PREFIX_LENGTH:], _probability(p)) for label, p in zip(labels, printed)]


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
    """A `fasttext predict-prob MODEL - K` child process, restarted when it dies or hangs."""

    def __init__(self, binary_path: str, model_path: str, k: int, timeout: float):
        self.binary_path = binary_path
        self.model_path = model_path
        self.k = k
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._selector: selectors.BaseSelector | None = None
        self._has_answered = False
        self._lock = threading.Lock()
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """Whether the child is started and alive (one that died is restarted by the next request)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    def check_binary(self) -> None:
        """Raise FastTextUnavailable when the binary could not be started; starts nothing."""
        if not os.path.isfile(self.binary_path):
            raise FastTextUnavailable(f"fastText binary {self.binary_path} is missing")
        if not os.access(self.binary_path, os.X_OK):
            raise FastTextUnavailable(f"fastText binary {self.binary_path} is not executable")

    def predict(self, lines: list[str], limit: int | None = None) -> list[list[tuple[str, float]]]:
        """Answer each line (one cleaned text, no newline) with its top-k (label, probability) pairs.

        A process found dead mid-request (killed, crashed) is restarted and the whole
        batch asked again once; a second death, or a timeout, raises FastTextError.
        """
        return [parse_answer(line, limit) for line in self.answer_lines(lines)]

    def answer_lines(self, lines: list[str]) -> list[str]:
        """fastText's answer line for each line, unparsed (probabilities_of reads a few labels of
        one); restarted once and timed out as predict is."""
        payload = "".join(line + "\n" for line in lines).encode("utf-8", "replace")
        with self._lock:
            try:
                return self._round_trip(payload, len(lines))
            except _ProcessDied:
                log.warning("fastText process died mid-request; restarting it once")
            try:
                return self._round_trip(payload, len(lines))
            except _ProcessDied as e:
                raise FastTextUnavailable(str(e)) from None

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _round_trip(self, payload: bytes, expected_lines: int) -> list[str]:
        proc = self._running_process()
        try:
            raw_lines = self._exchange(proc, payload, expected_lines)
        except (FastTextTimeout, _ProcessDied):
            self._kill()
            raise
        return [line.decode("utf-8", "replace") for line in raw_lines]

    def _running_process(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is not None:
            log.warning("fastText process exited with status %s; restarting it", self._proc.returncode)
            self._kill()
        if self._proc is None:
            self._proc = self._start()
        return self._proc

    def _start(self) -> subprocess.Popen:
        self.check_binary()
        read_model_header(self.model_path)
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
        self._has_answered = False
        self.starts += 1
        log.info("started fastText process pid %d", proc.pid)
        return proc

    def _exchange(self, proc: subprocess.Popen, payload: bytes, expected_lines: int) -> list[bytes]:
        """Write the payload and read `expected_lines` answer lines, both at once.

        Writing everything before reading could deadlock: a big batch fills the stdin
        pipe while fastText blocks on a full stdout pipe. So one loop does both.
        """
        deadline = time.monotonic() + self.timeout
        out = bytearray()
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
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise FastTextTimeout(self._timeout_reason())
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
                    out = bytearray(rest)
        finally:
            if watching_stdin:
                sel.unregister(proc.stdin)
        if out or len(lines) != expected_lines:
            raise _ProcessDied("fastText answered more lines than it was asked")
        self._has_answered = True
        return lines

    def _timeout_reason(self) -> str:
        reason = f"fastText did not answer within {self.timeout:g} s"
        if not self._has_answered:
            # A truncated model makes fastText 0.9.3 spin forever while loading it.
            reason += f"; it never finished loading model {self.model_path}, which may be truncated or corrupt"
        return reason

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
            return f"fastText exited with status {status}; model {self.model_path} could not be loaded"
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


class _ProcessDied(Exception):
    pass


def _read_available(stream) -> bytes:
    try:
        return os.read(stream.fileno(), _READ_CHUNK) or b""
    except (BlockingIOError, OSError, ValueError):
        return b""
