"""AWS Lambda adapter for the hashtag recommender: event in, response out.

Accepts API Gateway REST (v1) and HTTP API (v2) proxy events, Lambda function URL events (payload
2.0, like HTTP API's), and direct invocation where the event is the request object itself.
"""

import base64
import binascii
import functools
import hashlib
import json
import logging
import os
import re
import sys
import time
import uuid

from contract import MAX_BODY_BYTES, InvalidRequest, ServiceError, parse_request
from recommender import Recommender

LOG_REQUEST_TEXT = os.environ.get("LOG_REQUEST_TEXT", "").lower() in {"1", "true", "yes"}
_HEADERS = {"Content-Type": "application/json", "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"}
# What a browser may send in a CORS request (the page sends x-api-key when given one).
_PREFLIGHT_HEADERS = {"Access-Control-Allow-Headers": "Content-Type, X-Api-Key", "Access-Control-Max-Age": "600"}


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
# In Lambda (which always sets the initialization type), the default model is fetched, checked and
# started during init; with provisioned concurrency init also waits until it has loaded, so that
# the first request finds it ready.
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):
    recommender.models.start_default(wait=os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency")

# Each path of the API and the methods the function answers there. API Gateway routes every
# method of these paths to the function (ANY), except OPTIONS: the CORS preflight, which it
# answers itself (an OPTIONS that reaches the function, through a function URL or serverless
# offline, is answered as a preflight too). HEAD is GET without the body, which API Gateway leaves out.
ROUTES = {
    "/recommendations": ("POST",),
    "/health": ("GET", "HEAD"),
    "/openapi.json": ("GET", "HEAD"),
    "/": ("GET", "HEAD"),
}
STATIC_FILES = {"/openapi.json": ("openapi.json", "application/json"), "/": ("try_it.html", "text/html; charset=utf-8")}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")


def tagRecommendations(event, context):
    started = time.perf_counter()
    ids = _request_ids(event, context)
    route, texts, headers, page = "unknown", [], _HEADERS, None
    try:
        route, method = _route(event)
        if method == "OPTIONS":
            status, headers, page = 204, _preflight_headers(route), ""
        elif route in STATIC_FILES:
            status, headers, page = 200, _static_headers(route), _static_file(STATIC_FILES[route][0])
        elif route == "/health":
            status, body = 200, recommender.health()
        else:
            request = parse_request(_request_body(event) if route == "/recommendations" else event)
            texts = request.texts
            results = recommender.recommend(request, recommender.deadline(_time_left(context)))
            status, body = 200, ({"results": results} if request.batch else results[0])
    except ServiceError as e:
        status, headers, body = e.status, {**_HEADERS, **e.headers}, _error(e.code, e.message, ids["request_id"])
    except Exception:
        log.exception("unexpected error", extra={"fields": ids})
        status, body = 500, _error("internal_error", "unexpected error; quote the request_id when reporting it", ids["request_id"])
    _log_request(ids, route, status, started, texts)
    return {"statusCode": status, "headers": headers, "body": json.dumps(body) if page is None else page}


def _time_left(context) -> float | None:
    """The seconds Lambda leaves this invocation, when the context says."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else None


def _preflight_headers(route: str) -> dict:
    methods = ROUTES.get(route, ("POST",))
    return {**_HEADERS, **_PREFLIGHT_HEADERS, "Access-Control-Allow-Methods": ", ".join((*methods, "OPTIONS"))}


@functools.cache
def _static_headers(route: str) -> dict:
    name, content_type = STATIC_FILES[route]
    headers = {**_HEADERS, "Content-Type": content_type}
    if content_type.startswith("text/html"):
        headers["Content-Security-Policy"] = _page_policy(_static_file(name))
    return headers


def _page_policy(page: str) -> str:
    """The page's Content-Security-Policy: nothing but its own inline script and style (by their
    sha256) and requests to this API."""
    def hashes(tag: str) -> str:
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies)

    return (f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


def _route(event) -> tuple[str, str | None]:
    """The path of ROUTES the event asks for and its method, or "direct" for a bare request object.

    Raises InvalidRequest for a path the API does not have, or a method the path does not answer.
    """
    if not isinstance(event, dict):
        return "direct", None
    context = event.get("requestContext")
    if "httpMethod" in event:
        # The resource is the route's path; serverless offline names the root resource "".
        method, path = event.get("httpMethod"), event.get("resource", event.get("path"))
        if path == "":
            path = "/"
    elif isinstance(context, dict) and isinstance(context.get("http"), dict):
        method, path = context["http"].get("method"), _http_api_path(event, context)
    else:
        return "direct", None
    if not isinstance(path, str) or path not in ROUTES:
        raise InvalidRequest("not_found", f"no such path; this API has {', '.join(ROUTES)}", 404)
    allowed = ROUTES[path]
    if method not in allowed and method != "OPTIONS":
        allow = ", ".join((*allowed, "OPTIONS"))
        raise InvalidRequest("method_not_allowed", f"{path} answers {allow}; see /openapi.json", 405, {"Allow": allow})
    return path, method


def _http_api_path(event: dict, context: dict) -> object:
    """An HTTP API (v2) event's route path: from its routeKey ("ANY /health"), else its rawPath
    without the stage. A function URL event has routeKey and stage "$default": its rawPath."""
    route_key = event.get("routeKey")
    if isinstance(route_key, str) and " /" in route_key:
        return route_key.split(" ", 1)[1]
    raw_path, stage = event.get("rawPath"), context.get("stage")
    if isinstance(raw_path, str) and isinstance(stage, str) and stage != "$default":
        if raw_path == f"/{stage}":
            return "/"
        if raw_path.startswith(f"/{stage}/"):
            return raw_path[len(stage) + 1:]
    return raw_path


@functools.cache
def _static_file(name: str) -> str:
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), encoding="utf-8") as f:
        return f.read()


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
        # What json.loads(raw, parse_constant=...) does, without making a decoder per request.
        return _BODY_JSON.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except (ValueError, RecursionError) as e:
        raise InvalidRequest("invalid_json", f"the body is not valid JSON: {_json_problem(e)}") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


_BODY_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _json_problem(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg}: line {error.lineno} column {error.colno}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return str(error)


def _request_ids(event, context) -> dict:
    """The id for the caller and the log line (request_id), and the platform's ids beside it.

    Lambda's own request id is a UUID, unique per invocation; `serverless offline` and `invoke
    local` pass a fixed stand-in (1234567890), and an HTTP API under `serverless offline` a fixed
    requestContext.requestId, so anything else gets a fresh UUID. The Lambda id and API Gateway's
    requestContext.requestId are logged too when they differ from it.
    """
    lambda_id = getattr(context, "aws_request_id", None)
    context_of_event = event.get("requestContext") if isinstance(event, dict) else None
    gateway_id = context_of_event.get("requestId") if isinstance(context_of_event, dict) else None
    request_id = lambda_id if isinstance(lambda_id, str) and _UUID.match(lambda_id) else str(uuid.uuid4())
    ids = {"request_id": request_id}
    if lambda_id and lambda_id != request_id:
        ids["lambda_request_id"] = str(lambda_id)
    if gateway_id and gateway_id != request_id:
        ids["apigw_request_id"] = str(gateway_id)
    return ids


def _error(code: str, message: str, request_id: str) -> dict:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def _log_request(ids: dict, route: str, status: int, started: float, texts) -> None:
    fields = {
        **ids,
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
