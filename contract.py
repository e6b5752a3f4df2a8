"""The request contract, as openapi.yaml states it: the limits, the errors (each with its code and
HTTP status), and parse_request, which turns a decoded JSON body into a RecommendationRequest."""

from dataclasses import dataclass

from model_source import valid_model_name

MAX_K = 50
DEFAULT_K = 5
MAX_TEXTS = 100
MAX_TEXT_CHARS = 20_000
MAX_BODY_BYTES = 256 * 1024
DEFAULT_MODEL = "default"  # the name of model.bin (or MODEL_PATH, MODEL_S3_URI) in requests and answers
_OPTION_FIELDS = {"k", "threshold", "exclude_used", "explain", "model"}


class ServiceError(Exception):
    """A request answered with an error: its `code`, HTTP `status` and message for the caller (no
    file path, S3 URI or pid: the log has those), and `headers` for the answer."""

    def __init__(self, code: str, message: str, status: int, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}


class InvalidRequest(ServiceError):
    """The request cannot be answered as sent; `code` and the message tell the caller what to fix."""

    def __init__(self, code: str, message: str, status: int = 400, headers: dict | None = None):
        super().__init__(code, message, status, headers)


class ModelUnavailable(ServiceError):
    """The model cannot answer right now: it is loading, or failed to load or answer (and is
    left alone for `retry_after` seconds, which the answer's Retry-After header says)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__("model_unavailable", message, 503, {"Retry-After": str(retry_after)})


@dataclass(frozen=True)
class RecommendationRequest:
    texts: list[str]
    batch: bool
    k: int = DEFAULT_K
    threshold: float = 0.0
    exclude_used: bool = False
    explain: bool = False
    model: str = DEFAULT_MODEL


def parse_request(body: object) -> RecommendationRequest:
    """Validate a decoded JSON request body, raising InvalidRequest on the first problem."""
    if not isinstance(body, dict):
        raise InvalidRequest("invalid_body", 'the request body must be a JSON object such as {"text": "..."}')
    unknown = sorted(set(body) - _OPTION_FIELDS - {"text", "texts"})
    if unknown:
        raise InvalidRequest(
            "unknown_field",
            f"unknown field {unknown[0]!r}; allowed fields are text or texts, k, threshold, exclude_used, explain, model",
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
        explain=_valid_explain(body.get("explain", False)),
        model=_valid_model(body["model"]) if "model" in body else DEFAULT_MODEL,
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


def _valid_explain(explain: object) -> bool:
    if not isinstance(explain, bool):
        raise InvalidRequest("invalid_explain", "explain must be true or false")
    return explain


def _valid_model(name: object) -> str:
    if not isinstance(name, str) or not valid_model_name(name):
        raise InvalidRequest(
            "invalid_model", "model must be a model's name: 1 to 64 letters, digits, _ or - (see GET /health)"
        )
    return name
