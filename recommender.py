"""Hashtag recommendations: request validation, cleaning, and fastText's answers shaped for callers."""

import functools
import os
from dataclasses import dataclass

from fasttext_process import FASTTEXT_VERSION, FastTextProcess, read_model_header
from model_source import BundledModel, S3Model, file_sha256, model_from_environment
from text_cleaning import clean_text, extract_hashtags, normalize_tag

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_K = 50
DEFAULT_K = 5
MAX_TEXTS = 100
MAX_TEXT_CHARS = 20_000
DEFAULT_TIMEOUT_SECONDS = 5.0
ALL_LABELS = -1  # fastText's k for every label of the model
_OPTION_FIELDS = {"k", "threshold", "exclude_used"}


class InvalidRequest(Exception):
    """The request cannot be answered as sent; `code` and the message tell the caller what to fix."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class RecommendationRequest:
    texts: list[str]
    batch: bool
    k: int = DEFAULT_K
    threshold: float = 0.0
    exclude_used: bool = False


def parse_request(body: object) -> RecommendationRequest:
    """Validate a decoded JSON request body, raising InvalidRequest on the first problem."""
    if not isinstance(body, dict):
        raise InvalidRequest("invalid_body", 'the request body must be a JSON object such as {"text": "..."}')
    unknown = sorted(set(body) - _OPTION_FIELDS - {"text", "texts"})
    if unknown:
        raise InvalidRequest(
            "unknown_field",
            f"unknown field {unknown[0]!r}; allowed fields are text or texts, k, threshold, exclude_used",
        )
    if ("text" in body) == ("texts" in body):
        raise InvalidRequest("missing_text", 'send exactly one of "text" (a string) or "texts" (a list of strings)')
    if "text" in body:
        texts, batch = [_valid_text(body["text"], "text")], False
    else:
        texts, batch = _valid_texts(body["texts"]), True
    return RecommendationRequest(
        texts=texts,
        batch=batch,
        k=_valid_k(body.get("k", DEFAULT_K)),
        threshold=_valid_threshold(body.get("threshold", 0.0)),
        exclude_used=_valid_exclude_used(body.get("exclude_used", False)),
    )


def _valid_text(text: object, field: str) -> str:
    if not isinstance(text, str):
        raise InvalidRequest("invalid_text", f"{field} must be a string")
    if not text.strip():
        raise InvalidRequest("empty_text", f"{field} must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidRequest(
            "text_too_long", f"{field} has {len(text)} characters; the limit is {MAX_TEXT_CHARS}", status=413
        )
    return text


def _valid_texts(texts: object) -> list[str]:
    if not isinstance(texts, list):
        raise InvalidRequest("invalid_texts", "texts must be a list of strings")
    if not 1 <= len(texts) <= MAX_TEXTS:
        raise InvalidRequest("invalid_texts", f"texts must hold 1 to {MAX_TEXTS} strings, not {len(texts)}")
    return [_valid_text(text, f"texts[{i}]") for i, text in enumerate(texts)]


def _valid_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidRequest("invalid_k", f"k must be an integer from 1 to {MAX_K}")
    return k


def _valid_threshold(threshold: object) -> float:
    # The comparison also turns away NaN, infinities and integers too big for a float.
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise InvalidRequest("invalid_threshold", "threshold must be a number from 0 to 1")
    return float(threshold)


def _valid_exclude_used(exclude_used: object) -> bool:
    if not isinstance(exclude_used, bool):
        raise InvalidRequest("invalid_exclude_used", "exclude_used must be true or false")
    return exclude_used


class Recommender:
    """Recommends hashtags for texts with one long-lived fastText process (and a second one, which
    answers with every label, for the rare exclude_used request that needs more than MAX_K)."""

    def __init__(self, process: FastTextProcess, model: BundledModel | S3Model | None = None):
        self.process = process
        self.model = model or BundledModel(process.model_path)
        self._digest_cache: tuple[tuple, str] | None = None
        self._all_labels: FastTextProcess | None = None

    @classmethod
    def from_environment(cls) -> "Recommender":
        """Build from the environment; nothing is started or downloaded until the first request.

        FASTTEXT_BINARY, PREDICT_TIMEOUT_SECONDS, and MODEL_PATH or MODEL_S3_URI (+ MODEL_SHA256);
        by default the fasttext binary and model.bin bundled next to this file. Relative
        paths are taken relative to this file's directory (the package root in Lambda).
        """
        model = model_from_environment(os.path.join(HERE, "model.bin"))
        process = FastTextProcess(
            binary_path=os.path.join(HERE, os.environ.get("FASTTEXT_BINARY") or "fasttext"),
            model_path=model.path,
            k=MAX_K,
            timeout=float(os.environ.get("PREDICT_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS),
        )
        return cls(process, model)

    def recommend(self, request: RecommendationRequest) -> list[dict]:
        """Return one result per text, in order, asking fastText once for the whole batch."""
        cleaned = [clean_text(text) for text in request.texts]
        # Most texts have no "#" and so no hashtags: skip the regex for them.
        used = [extract_hashtags(text) if "#" in text else [] for text in request.texts]
        answers = self._answers(cleaned, used, request)
        return [self._result(tags, answer, request) for tags, answer in zip(used, answers)]

    def _answers(self, cleaned: list[str], used: list[list[str]], request: RecommendationRequest) -> list[list]:
        """fastText's (label, probability) pairs for each cleaned text: as many as the result can use."""
        # An empty line still gets an answer from fastText (for the end-of-sentence token
        # alone); a text with no words gets no recommendations instead.
        asked = [line for line in cleaned if line]
        if not asked:
            return [[] for _ in cleaned]
        self.model.local_path()
        # k labels, or all the process gives when used hashtags are left out.
        limit = None if request.exclude_used else request.k
        found = iter(self.process.predict(asked, limit))
        answers = [next(found) if line else [] for line in cleaned]
        if request.exclude_used:
            self._ask_for_all_labels_where_short(answers, cleaned, used, request)
        return answers

    def _ask_for_all_labels_where_short(self, answers, cleaned, used, request) -> None:
        """Replace each answer that may leave fewer than k once used hashtags are left out by one
        with every label. The process answers with its MAX_K labels, which is all a request needs
        unless the text carries many of its top hashtags; that rare request asks a second process,
        started on first need, that answers with all of them."""
        short = [i for i, answer in enumerate(answers) if self._may_fall_short(answer, used[i], request)]
        if short:
            for i, answer in zip(short, self._all_labels_process().predict([cleaned[i] for i in short])):
                answers[i] = answer

    def _may_fall_short(self, answer: list, used: list[str], request: RecommendationRequest) -> bool:
        """Whether a full answer (more labels may follow, still usable) has fewer than k unused labels."""
        if len(answer) < self.process.k or not _usable(answer[-1][1], request):
            return False
        skip = set(used)
        return sum(_hashtag(label) not in skip for label, _ in answer) < request.k

    def _all_labels_process(self) -> FastTextProcess:
        if self._all_labels is None:
            p = self.process
            self._all_labels = FastTextProcess(p.binary_path, p.model_path, k=ALL_LABELS, timeout=p.timeout)
        return self._all_labels

    def close(self) -> None:
        """Stop the fastText processes (a new request starts them again)."""
        self.process.close()
        if self._all_labels is not None:
            self._all_labels.close()

    @staticmethod
    def _result(used: list[str], answer: list[tuple[str, float]], request: RecommendationRequest) -> dict:
        skip = set(used) if request.exclude_used else set()
        recommended = []
        for label, probability in answer:
            if not _usable(probability, request) or len(recommended) == request.k:
                break
            hashtag = _hashtag(label)
            if hashtag not in skip:
                recommended.append({"hashtag": hashtag, "probability": probability})
        return {"hashtags_already_used": used, "hashtags_recommended": recommended}

    def health(self) -> dict:
        """Describe the deployed model and binary, and prove the process answers."""
        self.model.local_path()
        model_path = self.process.model_path
        header = read_model_header(model_path)
        self.process.predict(["health check"])
        return {
            "status": "ok",
            "model": {
                **self.model.describe(),
                "path": model_path,
                "sha256": self._model_digest(),
                "bytes": os.path.getsize(model_path),
                "labels": header.labels,
                "words": header.words,
                "dim": header.dim,
            },
            "fasttext": {"version": FASTTEXT_VERSION, "pid": self.process.pid, "starts": self.process.starts},
        }

    def _model_digest(self) -> str:
        """sha256 of the model file, recomputed only when the file changes."""
        stat = os.stat(self.process.model_path)
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._digest_cache is None or self._digest_cache[0] != key:
            self._digest_cache = (key, file_sha256(self.process.model_path))
        return self._digest_cache[1]


@functools.cache  # one entry per label of the model: each request looks up k or more of them
def _hashtag(label: str) -> str:
    """The hashtag a model label reads as."""
    return "#" + normalize_tag(label)


def _usable(probability: float, request: RecommendationRequest) -> bool:
    """Whether a probability may be recommended: at least the threshold, and above 0 (at six
    decimals), since a hashtag the model gives no chance is noise even at threshold 0."""
    return probability >= request.threshold and probability > 0.0
