"""AWS Lambda adapter for the hashtag recommender: event in, response out.

Accepts API Gateway REST (v1) and HTTP API (v2) proxy events, and direct
invocation where the event is the request object itself.
"""

import base64
import binascii
import json
import logging
import os
import sys
import time
import uuid

from fasttext_process import FastTextError
from model_source import ModelSourceError
from recommender import InvalidRequest, Recommender, parse_request

MAX_BODY_BYTES = 256 * 1024
LOG_REQUEST_TEXT = os.environ.get("LOG_REQUEST_TEXT", "").lower() in {"1", "true", "yes"}
_HEADERS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*"}


class _JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"level": record.levelname, "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _json_log_line(entry)


# ASCII (json's default): a lone surrogate in a text cannot break the line.
_json_log_line = json.JSONEncoder(default=str).encode


class _StdoutHandler(logging.StreamHandler):
    """Writes to sys.stdout as it is at each record (Lambda sends stdout to CloudWatch)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _configure_logging() -> logging.Logger:
    stdout = _StdoutHandler()
    stdout.setFormatter(_JsonLogFormatter())
    root = logging.getLogger()
    root.handlers = [stdout]
    root.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
    return logging.getLogger("tagRecommendations")


log = _configure_logging()
recommender = Recommender.from_environment()


def tagRecommendations(event, context):
    started = time.perf_counter()
    request_id = _request_id(event, context)
    route, texts = "unknown", []
    try:
        route = _route(event)
        if route == "health":
            status, body = 200, recommender.health()
        else:
            request = parse_request(_request_body(event) if route == "recommendations" else event)
            texts = request.texts
            results = recommender.recommend(request)
            status, body = 200, ({"results": results} if request.batch else results[0])
    except InvalidRequest as e:
        status, body = e.status, _error(e.code, e.message, request_id)
    except (FastTextError, ModelSourceError) as e:
        log.error("fastText unavailable", extra={"fields": {"request_id": request_id, "reason": str(e)}})
        status, body = 503, _error("model_unavailable", f"the model cannot answer right now: {e}", request_id)
    except Exception:
        log.exception("unexpected error", extra={"fields": {"request_id": request_id}})
        status, body = 500, _error("internal_error", "unexpected error; quote the request_id when reporting it", request_id)
    _log_request(request_id, route, status, started, texts)
    return {"statusCode": status, "headers": _HEADERS, "body": json.dumps(body)}


def _route(event) -> str:
    """Which endpoint the event asks for: recommendations, health or direct (a bare request object)."""
    if not isinstance(event, dict):
        return "direct"
    if "httpMethod" in event:
        method, path = event.get("httpMethod"), event.get("resource") or event.get("path") or ""
    elif isinstance(event.get("requestContext"), dict) and isinstance(event["requestContext"].get("http"), dict):
        method, path = event["requestContext"]["http"].get("method"), event.get("rawPath") or ""
    else:
        return "direct"
    if method == "GET" and str(path).endswith("/health"):
        return "health"
    if method == "POST":
        return "recommendations"
    raise InvalidRequest("method_not_allowed", "use POST /recommendations or GET /health", status=405)


def _request_body(event: dict) -> object:
    """Decode the JSON body of a proxy event, whatever its Content-Type, base64 included."""
    body = event.get("body")
    if body is None:
        raise InvalidRequest("missing_body", 'the request has no body; send JSON such as {"text": "..."}')
    if not isinstance(body, str):
        raise InvalidRequest("invalid_body", "the request body must be a JSON text")
    raw = body.encode("utf-8", "surrogatepass")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("invalid_base64", "the body is flagged base64-encoded but is not valid base64") from None
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest(
            "body_too_large", f"the body has {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", status=413
        )
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise InvalidRequest("invalid_json", f"the body is not valid JSON: {_json_problem(e)}") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_problem(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return str(error)


def _request_id(event, context) -> str:
    request_id = getattr(context, "aws_request_id", None)
    if not request_id and isinstance(event, dict) and isinstance(event.get("requestContext"), dict):
        request_id = event["requestContext"].get("requestId")
    return str(request_id or uuid.uuid4())


def _error(code: str, message: str, request_id: str) -> dict:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def _log_request(request_id: str, route: str, status: int, started: float, texts: list[str]) -> None:
    fields = {
        "request_id": request_id,
        "route": route,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        "texts": len(texts),
    }
    if LOG_REQUEST_TEXT:
        fields["request_texts"] = texts
    # The line _JsonLogFormatter would write for log.info("request", extra={"fields": fields}),
    # written without a LogRecord, whose making is most of the cost of a line logged per request.
    if log.isEnabledFor(logging.INFO):
        sys.stdout.write(_json_log_line({"level": "INFO", "logger": log.name, "message": "request", **fields}) + "\n")
        sys.stdout.flush()
