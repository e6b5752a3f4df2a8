"""The models a deployment serves: each one's fastText processes and state, the memory their
processes may use together, and what /health says of them.

A model is idle (no process), loading (its process started, the model not loaded yet), ok, or
failing: it failed to be fetched, loaded or to answer, and answers 503 at once until its back-off
ends; the request after that tries it again. Each model has up to three processes, each started
on the first need of it: one answering with DEFAULT_K labels (a plain request for at most that
many, most requests: fastText prints, and the pipe carries, no label it does not use), one with
MAX_K (more hashtags, exclude_used, explain), and one with every label (the rare answer those
fall short with).

Memory: the processes alive use at most half of the function's memory
(AWS_LAMBDA_FUNCTION_MEMORY_SIZE); the other half is the handler's (Python, boto3, the page
cache of the model files). Before a process starts, the least recently used processes of other
models are stopped until its estimated size fits, every-label processes before answering ones.
"""

import logging
import math
import os
import shutil
import time

from contract import DEFAULT_K, DEFAULT_MODEL, MAX_K, InvalidRequest, ModelUnavailable
from fasttext_process import (
    FASTTEXT_VERSION,
    Deadline,
    FastTextError,
    FastTextLoading,
    FastTextProcess,
    read_model_header,
)
from model_source import (
    BundledModel,
    ModelSourceError,
    S3Model,
    model_from_environment,
    named_models_from_environment,
)

log = logging.getLogger(__name__)
ALL_LABELS = -1  # fastText's k for every label of the model
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_LOAD_TIMEOUT_SECONDS = 30.0
DEFAULT_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 600.0
LOADING_RETRY_SECONDS = 1
MIB = 1 << 20
# A process's memory before it has loaded and been measured: its model file, the dictionary's
# hash table and strings beside it (about 160 bytes a word), and the static binary itself.
_BYTES_PER_WORD = 160
_BINARY_BYTES = 2 * MIB


def children_budget(memory_size_mb: str | None) -> int | None:
    """The bytes the fastText processes may use together: half the function's memory (None: no
    limit, outside Lambda)."""
    return int(memory_size_mb) * MIB // 2 if memory_size_mb else None


class ServedModel:
    """One model of the deployment: where it comes from, its processes, and its state."""

    def __init__(self, name: str, source: BundledModel | S3Model, binary_path: str, timeout: float,
                 load_timeout: float, retry_seconds: float):
        self.name = name
        self.source = source
        self.top = FastTextProcess(binary_path, source.path, DEFAULT_K, timeout, load_timeout)
        self.answering = FastTextProcess(binary_path, source.path, MAX_K, timeout, load_timeout)
        self.all_labels = FastTextProcess(binary_path, source.path, ALL_LABELS, timeout, load_timeout)
        self.retry_seconds = retry_seconds
        self.error: str | None = None  # the code of the last failure, until it answers again
        self.failures = 0
        self.retry_at = 0.0

    @property
    def processes(self) -> tuple[FastTextProcess, FastTextProcess, FastTextProcess]:
        return self.top, self.answering, self.all_labels

    def process(self, k: int) -> FastTextProcess:
        """The process answering with `k` labels: DEFAULT_K, MAX_K or ALL_LABELS."""
        return self.top if k == DEFAULT_K else self.all_labels if k == ALL_LABELS else self.answering

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failing"
        if any(process.ready for process in self.processes):
            return "ok"
        return "loading" if any(process.running for process in self.processes) else "idle"

    def check_backoff(self) -> None:
        """Raise ModelUnavailable while the model's back-off after a failure lasts."""
        if self.error is not None:
            wait = self.retry_at - time.monotonic()
            if wait > 0:
                raise ModelUnavailable(f"model {self.name!r} is failing ({self.error}); it is tried again "
                                       "after the Retry-After seconds", math.ceil(wait))

    def failed(self, code: str) -> int:
        """Record a failure; the seconds of back-off before the model is tried again."""
        self.error = code
        self.failures += 1
        backoff = min(self.retry_seconds * 2 ** (self.failures - 1), MAX_RETRY_SECONDS)
        self.retry_at = time.monotonic() + backoff
        for process in self.processes:
            process.close()
        return math.ceil(backoff)

    def summary(self) -> dict:
        """Name, status, where it comes from, and the sha256 and labels of the file its process
        loaded (null before one has); the failure's code when failing. Starts and fetches nothing."""
        loaded = next((process.loaded for process in self.processes if process.loaded), None)
        facts = {"name": self.name, "status": self.status, "source": self.source.kind,
                 "sha256": loaded.sha256 if loaded else None, "labels": loaded.header.labels if loaded else None}
        if self.error is not None:
            facts["error"] = self.error
        return facts

    def close(self) -> None:
        for process in self.processes:
            process.close()


class ServedModels:
    """Every model of the deployment by name, the default one first, and the memory budget their
    processes share."""

    def __init__(self, models: dict[str, ServedModel], budget_bytes: int | None = None):
        self.by_name = models
        self.default = models[DEFAULT_MODEL]
        self.budget_bytes = budget_bytes

    @classmethod
    def from_environment(cls, here: str) -> "ServedModels":
        """Build from the environment; nothing is started or downloaded.

        FASTTEXT_BINARY, PREDICT_TIMEOUT_SECONDS, MODEL_LOAD_TIMEOUT_SECONDS, MODEL_RETRY_SECONDS,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE, and MODEL_PATH or MODEL_S3_URI (+ MODEL_SHA256); by
        default the fasttext binary and model.bin bundled in `here`. Named models: every NAME.bin
        in MODELS_DIR (default models/), and MODELS_S3_PREFIX with MODELS_SHA256. Relative paths
        are taken relative to `here` (the package root in Lambda).
        """
        env = os.environ.get
        binary = os.path.join(here, env("FASTTEXT_BINARY") or "fasttext")
        settings = (float(env("PREDICT_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS),
                    float(env("MODEL_LOAD_TIMEOUT_SECONDS") or DEFAULT_LOAD_TIMEOUT_SECONDS),
                    float(env("MODEL_RETRY_SECONDS") or DEFAULT_RETRY_SECONDS))
        sources = {DEFAULT_MODEL: model_from_environment(os.path.join(here, "model.bin"))}
        named = named_models_from_environment(os.path.join(here, env("MODELS_DIR") or "models"))
        named.pop(DEFAULT_MODEL, None)  # "default" always names the default model
        sources.update(named)
        models = {name: ServedModel(name, source, binary, *settings) for name, source in sources.items()}
        return cls(models, children_budget(env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")))

    @property
    def timeout(self) -> float:
        return self.default.answering.timeout

    def get(self, name: str) -> ServedModel:
        """The model named `name`; InvalidRequest when the deployment has none."""
        served = self.by_name.get(name)
        if served is None:
            raise InvalidRequest("unknown_model", f"no model named {name!r}; this deployment has {', '.join(self.by_name)}")
        return served

    def answer_lines(self, served: ServedModel, lines: list[str], deadline: Deadline, k: int = MAX_K) -> list[str]:
        """The answer line of the model's process with `k` labels (DEFAULT_K, MAX_K or
        ALL_LABELS) for each line.

        Raises ModelUnavailable while the model loads, fails, or is in its back-off."""
        process = served.process(k)
        # A failing model's processes are stopped: a started one is past its back-off.
        if process.started:
            try:
                return process.answer_lines(lines, deadline)
            except FastTextError as e:
                raise self._unavailable(served, e) from None
        served.check_backoff()
        try:
            if not served.source.fetched:
                self._make_disk_room(served)
            served.source.local_path()
            self._make_room(served, self._estimate(process))
            answer = process.answer_lines(lines, deadline)
        except (FastTextError, ModelSourceError, OSError) as e:
            raise self._unavailable(served, e) from None
        served.error, served.failures = None, 0
        self._make_room(served, 0)  # now that it is measured
        return answer

    def ask_again_with_every_label(self, served: ServedModel, lines: list[str], answers: list, is_short,
                                   read, deadline: Deadline) -> None:
        """Replace each of `answers` that `is_short(i, answer)` says may lack a label below the
        process's MAX_K by `read(i, line)` of the answer with every label to `lines[i]`."""
        short = [i for i, answer in enumerate(answers) if is_short(i, answer)]
        if short:
            for i, line in zip(short, self.answer_lines(served, [lines[i] for i in short], deadline, ALL_LABELS)):
                answers[i] = read(i, line)

    def start_default(self, wait: bool) -> None:
        """At init: fetch and verify the default model and start the process plain requests ask,
        and with `wait`, wait for it to load (within its load limit). A failure is logged and
        recorded, not raised: requests say it."""
        served = self.default
        try:
            served.source.local_path()
            served.top.start()
            if wait:
                served.top.wait_until_ready(Deadline(served.top.load_timeout))
        except FastTextLoading:
            log.warning("the default model was still loading at the end of init")
        except (FastTextError, ModelSourceError, OSError) as e:
            self._unavailable(served, e)

    def health(self) -> dict:
        """Every model with its status, from what this container already has: no process is
        started, nothing downloaded. Raises ModelUnavailable when the binary is unusable or the
        default model is failing."""
        try:
            self.default.answering.check_binary()
        except FastTextError as e:
            log.error("fastText binary unusable: %s", e)
            raise ModelUnavailable(f"the fastText binary cannot run ({e.code})", math.ceil(self.default.retry_seconds)) from None
        self.default.check_backoff()
        return {"status": "ok", "models": [served.summary() for served in self.by_name.values()],
                "fasttext": {"version": FASTTEXT_VERSION}}

    def close(self) -> None:
        """Stop every model's processes (a new request starts them again)."""
        for served in self.by_name.values():
            served.close()

    def _unavailable(self, served: ServedModel, error: Exception) -> ModelUnavailable:
        """What to answer for a failure of the model: 503, and unless it is only loading, the
        model put in its back-off. The log keeps the reason (paths and URIs included)."""
        if isinstance(error, FastTextLoading):
            log.info("model %s is loading: %s", served.name, error)
            return ModelUnavailable(f"model {served.name!r} is loading; ask again shortly", LOADING_RETRY_SECONDS)
        code = getattr(error, "code", "io_error")
        retry_after = served.failed(code)
        log.error("model %s failed (%s): %s; tried again in %d s", served.name, code, error, retry_after)
        return ModelUnavailable(f"model {served.name!r} cannot answer ({code}); it is tried again after "
                                "the Retry-After seconds", retry_after)

    def _make_disk_room(self, served: ServedModel) -> None:
        """Before a model in S3 is fetched: delete other models' downloads that no process uses,
        least recently used first, until it fits in the free space of its directory (/tmp,
        ephemeralStorageSize); ModelSourceError no_space when it cannot."""
        if served.source.kind != "s3":
            return
        needed = served.source.size()
        directory = os.path.dirname(served.source.path)
        idle = sorted((m for m in self.by_name.values() if m is not served and m.source.kind == "s3"
                       and m.source.fetched and not any(p.running for p in m.processes)),
                      key=lambda m: max(p.last_used for p in m.processes))
        for other in idle:
            if shutil.disk_usage(directory).free >= needed:
                return
            other.source.forget()
        free = shutil.disk_usage(directory).free
        if free < needed:
            raise ModelSourceError(f"model {served.source.uri} needs {needed} bytes in {directory}, which has "
                                   f"{free} free beside the models in use", "no_space")

    def _estimate(self, process: FastTextProcess) -> int:
        """A process's memory once loaded, from its model file (0 for a file it will refuse)."""
        try:
            words = read_model_header(process.model_path).words
            return os.path.getsize(process.model_path) + _BYTES_PER_WORD * words + _BINARY_BYTES
        except (FastTextError, OSError):
            return 0

    def _make_room(self, served: ServedModel, needed: int) -> None:
        """Stop other models' processes, least recently used first (every-label ones before the
        others), until the processes alive and `needed` bytes fit the budget."""
        if self.budget_bytes is None:
            return
        alive = [p for m in self.by_name.values() for p in m.processes if p.running]
        used = sum(p.rss_bytes() for p in alive) + needed
        others = sorted((p for p in alive if p not in served.processes),
                        key=lambda p: (p.k != ALL_LABELS, p.last_used))
        for victim in others:
            if used <= self.budget_bytes:
                break
            used -= victim.rss_bytes()
            log.info("stopping fastText process %s of %s to stay within %d MiB", victim.pid, victim.model_path,
                     self.budget_bytes // MIB)
            victim.close()
        if used > self.budget_bytes:
            log.warning("model %s needs more than the %d MiB its processes may use", served.name, self.budget_bytes // MIB)
