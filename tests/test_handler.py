"""The Lambda function called the way API Gateway and direct invocation call it, with a real tiny model."""

import hashlib
import json
import logging
import os
import signal
import uuid

import pytest

import handler
from handler import ROUTES
from recommender import Recommender
from support import ROOT, LambdaContext, fasttext_children, function_url_event, http_event, patch_processes, rest_event


@pytest.fixture
def logs(capsys):
    """Read what the function logged to stdout (CloudWatch's input) as JSON lines."""
    capsys.readouterr()
    return lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def call(app, event):
    response = app.tagRecommendations(event, LambdaContext())
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"
    return response["statusCode"], json.loads(response["body"])


def assert_error(status, body, expected_status, code):
    assert status == expected_status, body
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == LambdaContext().aws_request_id


@pytest.mark.parametrize("make_event", [rest_event, http_event, function_url_event], ids=["rest_v1", "http_v2", "url"])
def test_recommends_for_one_text(app, make_event):
    status, body = call(app, make_event({"text": "My #Python script needs a pip module #python"}))
    assert status == 200
    assert body["hashtags_already_used"] == ["#python"]
    recommended = body["hashtags_recommended"]
    assert recommended[0]["hashtag"] == "#python"
    assert len(recommended) == 4  # k=5 by default, the tiny model has 4 labels
    probabilities = [r["probability"] for r in recommended]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0 <= p <= 1 for p in probabilities)
    assert all(r["hashtag"].startswith("#") and "__label__" not in r["hashtag"] for r in recommended)


@pytest.mark.parametrize("route_key", ["$default", None], ids=["route_key_default", "no_route_key"])
def test_function_url_event_is_answered_on_every_route(app, route_key):
    """A function URL sends every path to the function, with rawPath as the caller wrote it (no
    stage) and routeKey "$default" (or none): each route answers as behind API Gateway."""

    def url_event(body, method, path):
        event = function_url_event(body, method=method, path=path)
        if route_key is None:
            del event["routeKey"], event["requestContext"]["routeKey"]
        return event

    response = app.tagRecommendations(url_event({"text": "sound music player"}, "POST", "/recommendations"), LambdaContext())
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["hashtags_recommended"][0]["hashtag"] == "#audio"
    response = app.tagRecommendations(url_event(None, "GET", "/health"), LambdaContext())
    assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "ok"
    response = app.tagRecommendations(url_event(None, "GET", "/openapi.json"), LambdaContext())
    assert response["statusCode"] == 200 and json.loads(response["body"])["paths"].keys() == ROUTES.keys()
    response = app.tagRecommendations(url_event(None, "GET", "/"), LambdaContext())
    assert response["statusCode"] == 200 and response["headers"]["Content-Type"].startswith("text/html")
    response = app.tagRecommendations(url_event(None, "HEAD", "/health"), LambdaContext())
    assert response["statusCode"] == 200
    status, body = call(app, url_event({"text": "python"}, "PUT", "/recommendations"))
    assert_error(status, body, 405, "method_not_allowed")
    status, body = call(app, url_event(None, "GET", "/dev/health"))  # a function URL has no stage
    assert_error(status, body, 404, "not_found")
    status, body = call(app, url_event(None, "GET", "/favicon.ico"))
    assert_error(status, body, 404, "not_found")


def test_direct_invocation_takes_the_request_object_itself(app):
    status, body = call(app, {"text": "sound music player"})
    assert status == 200 and body["hashtags_recommended"][0]["hashtag"] == "#audio"


@pytest.mark.parametrize("make_event", [rest_event, http_event, function_url_event], ids=["rest_v1", "http_v2", "url"])
def test_base64_body(app, make_event):
    status, body = call(app, make_event({"text": "http server browser"}, base64_encoded=True))
    assert status == 200 and body["hashtags_recommended"][0]["hashtag"] == "#web"


def test_form_encoded_content_type_is_still_read_as_json(app):
    event = rest_event('{"text": "compiler library header"}')
    assert event["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    status, body = call(app, event)
    assert status == 200 and body["hashtags_recommended"][0]["hashtag"] == "#cpp"


def test_batch_answers_in_input_order_in_one_round_trip(app, monkeypatch):
    texts = ["http server browser", "python pip module", "!!!", "sound music mixer", "compiler linker"]
    rounds = []
    process = app.recommender.models.default.top
    real = process.answer_lines
    monkeypatch.setattr(process, "answer_lines", lambda lines, deadline: rounds.append(lines) or real(lines, deadline))
    status, body = call(app, rest_event({"texts": texts, "k": 1}))
    assert status == 200
    tops = [r["hashtags_recommended"][0]["hashtag"] if r["hashtags_recommended"] else None for r in body["results"]]
    assert tops == ["#web", "#python", None, "#audio", "#cpp"]
    assert len(rounds) == 1 and len(rounds[0]) == 4


def test_batch_results_equal_single_results(app):
    texts = ["http server python", "mp3 player compiler", "#audio proxy website"]
    _, batch = call(app, rest_event({"texts": texts, "k": 3}))
    singles = [call(app, rest_event({"text": t, "k": 3}))[1] for t in texts]
    assert batch["results"] == singles


def test_k_and_threshold(app):
    _, body = call(app, rest_event({"text": "python pip http server", "k": 2}))
    assert len(body["hashtags_recommended"]) == 2
    _, body = call(app, rest_event({"text": "python pip http server", "threshold": 0.5}))
    assert body["hashtags_recommended"] and all(r["probability"] >= 0.5 for r in body["hashtags_recommended"])
    _, body = call(app, rest_event({"text": "python pip module", "threshold": 1}))
    assert all(r["probability"] == 1.0 for r in body["hashtags_recommended"])


def test_exclude_used_leaves_out_used_hashtags_but_still_returns_k(app):
    text = "python pip module #python"
    _, with_used = call(app, rest_event({"text": text, "k": 3}))
    _, without = call(app, rest_event({"text": text, "k": 3, "exclude_used": True}))
    assert "#python" in [r["hashtag"] for r in with_used["hashtags_recommended"]]
    hashtags = [r["hashtag"] for r in without["hashtags_recommended"]]
    assert "#python" not in hashtags and len(hashtags) == 3


def test_recommended_hashtag_pasted_back_is_recognised_as_used(app):
    _, first = call(app, rest_event({"text": "sound music player"}))
    top = first["hashtags_recommended"][0]["hashtag"]
    _, second = call(app, rest_event({"text": f"sound music player {top}"}))
    assert second["hashtags_already_used"] == [top]


def test_text_full_of_newlines_cannot_desynchronise_later_requests(app):
    _, expected = call(app, rest_event({"text": "compiler library header"}))
    status, _ = call(app, rest_event({"text": "python\n" * 500 + "\r\n__label__web\n-k 9\n"}))
    assert status == 200
    _, after = call(app, rest_event({"text": "compiler library header"}))
    assert after == expected


@pytest.mark.parametrize(
    "body, status, code",
    [
        ("{not json", 400, "invalid_json"),
        ('{"text": "a"', 400, "invalid_json"),
        ('{"text": NaN}', 400, "invalid_json"),
        ('{"text": "a", "k": 1' + "0" * 5000 + "}", 400, "invalid_json"),
        ("[" * 100_000, 400, "invalid_json"),
        ('"just a string"', 400, "invalid_body"),
        ("[1, 2]", 400, "invalid_body"),
        ("null", 400, "invalid_body"),
        ("{}", 400, "missing_text"),
        ('{"text": "a", "texts": ["b"]}', 400, "missing_text"),
        ('{"text": ""}', 400, "empty_text"),
        ('{"text": "  \\n\\t "}', 400, "empty_text"),
        ('{"text": 42}', 400, "invalid_text"),
        ('{"text": null}', 400, "invalid_text"),
        ('{"text": ["a"]}', 400, "invalid_text"),
        ('{"texts": "a"}', 400, "invalid_texts"),
        ('{"texts": []}', 400, "invalid_texts"),
        ('{"texts": ["a", 1]}', 400, "invalid_text"),
        ('{"texts": ["a", ""]}', 400, "empty_text"),
        ('{"text": "a", "k": 0}', 400, "invalid_k"),
        ('{"text": "a", "k": 51}', 400, "invalid_k"),
        ('{"text": "a", "k": 2.5}', 400, "invalid_k"),
        ('{"text": "a", "k": "5"}', 400, "invalid_k"),
        ('{"text": "a", "k": true}', 400, "invalid_k"),
        ('{"text": "a", "threshold": -0.1}', 400, "invalid_threshold"),
        ('{"text": "a", "threshold": 1.5}', 400, "invalid_threshold"),
        ('{"text": "a", "threshold": "0.5"}', 400, "invalid_threshold"),
        ('{"text": "a", "threshold": 1e999}', 400, "invalid_threshold"),
        ('{"text": "a", "threshold": false}', 400, "invalid_threshold"),
        ('{"text": "a", "exclude_used": "yes"}', 400, "invalid_exclude_used"),
        ('{"text": "a", "exclude_used": 1}', 400, "invalid_exclude_used"),
        ('{"text": "a", "explain": "true"}', 400, "invalid_explain"),
        ('{"text": "a", "explain": 1}', 400, "invalid_explain"),
        ('{"text": "a", "explain": null}', 400, "invalid_explain"),
        ('{"text": "a", "model": ""}', 400, "invalid_model"),
        ('{"text": "a", "model": "../model"}', 400, "invalid_model"),
        ('{"text": "a", "model": "' + "m" * 65 + '"}', 400, "invalid_model"),
        ('{"text": "a", "model": 7}', 400, "invalid_model"),
        ('{"text": "a", "model": null}', 400, "invalid_model"),
        ('{"text": "a", "model": "forum"}', 400, "unknown_model"),
        ('{"text": "a", "lang": "en"}', 400, "unknown_field"),
        ('{"text": "' + "a" * 20_001 + '"}', 413, "text_too_long"),
        ('{"texts": ["b", "' + "a" * 20_001 + '"]}', 413, "text_too_long"),
        ('{"text": "' + "a " * 140_000 + '"}', 413, "body_too_large"),
    ],
)
def test_bad_requests_get_clear_json_errors(app, body, status, code):
    got_status, got = call(app, rest_event(body))
    assert_error(got_status, got, status, code)


def test_too_many_texts(app):
    status, body = call(app, rest_event({"texts": ["python"] * 101}))
    assert_error(status, body, 400, "invalid_texts")
    assert "1 to 100" in body["error"]["message"]


def test_unknown_field_is_named(app):
    _, body = call(app, rest_event({"text": "a", "lang": "en"}))
    assert "'lang'" in body["error"]["message"]


def test_limits_are_exactly_at_the_documented_sizes(app):
    status, _ = call(app, rest_event({"text": "a" * 20_000}))
    assert status == 200
    status, _ = call(app, rest_event({"texts": ["python"] * 100}))
    assert status == 200


@pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest_v1", "http_v2"])
def test_missing_or_null_body(app, make_event):
    event = make_event(None)
    assert_error(*call(app, event), 400, "missing_body")
    del event["body"]
    assert_error(*call(app, event), 400, "missing_body")


def test_invalid_base64(app):
    event = rest_event("not base64!!")
    event["isBase64Encoded"] = True
    assert_error(*call(app, event), 400, "invalid_base64")


def test_base64_of_invalid_utf8(app):
    assert_error(*call(app, rest_event(b"\xff\xfe{\x00", base64_encoded=True)), 400, "invalid_json")


def test_direct_invocation_of_a_non_object(app):
    assert_error(*call(app, "just text"), 400, "invalid_body")


ALLOWED = {"/recommendations": "POST, OPTIONS", "/health": "GET, HEAD, OPTIONS",
           "/openapi.json": "GET, HEAD, OPTIONS", "/": "GET, HEAD, OPTIONS"}


@pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest_v1", "http_v2"])
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/recommendations"), ("PUT", "/recommendations"), ("DELETE", "/recommendations"),
     ("POST", "/health"), ("DELETE", "/health"), ("PATCH", "/openapi.json"), ("POST", "/"), ("get", "/health")],
)
def test_other_methods_get_405_with_allow(app, make_event, method, path):
    response = app.tagRecommendations(make_event({"text": "python"}, method=method, path=path), LambdaContext())
    assert_error(response["statusCode"], json.loads(response["body"]), 405, "method_not_allowed")
    assert response["headers"]["Allow"] == ALLOWED[path]
    assert response["headers"]["Content-Type"] == "application/json"


@pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest_v1", "http_v2"])
def test_a_path_the_api_does_not_have_is_404(app, make_event):
    assert_error(*call(app, make_event({"text": "python"}, path="/recommendations/x")), 404, "not_found")


def test_http_api_route_without_a_route_key_is_read_from_the_raw_path(app):
    event = http_event(None, method="GET", path="/health")
    event["routeKey"] = "$default"
    assert call(app, event)[1]["status"] == "ok"
    event["rawPath"] = "/dev"
    assert app.tagRecommendations(event, LambdaContext())["headers"]["Content-Type"].startswith("text/html")
    event["requestContext"]["stage"], event["rawPath"] = "$default", "/openapi.json"  # no stage in the path
    assert "paths" in call(app, event)[1]


@pytest.mark.parametrize("make_event", [rest_event, http_event], ids=["rest_v1", "http_v2"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_page_and_contract_are_served_as_files(app, make_event, method):
    page = app.tagRecommendations(make_event(None, method=method, path="/"), LambdaContext())
    assert page["statusCode"] == 200
    assert page["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert page["body"] == (ROOT / "try_it.html").read_text()
    contract = app.tagRecommendations(make_event(None, method=method, path="/openapi.json"), LambdaContext())
    assert contract["statusCode"] == 200 and contract["headers"]["Content-Type"] == "application/json"
    assert json.loads(contract["body"])["paths"].keys() == ROUTES.keys()


def test_serverless_offline_root_resource_is_the_page(app):
    event = rest_event(None, method="GET", path="")  # serverless offline names the root resource ""
    assert app.tagRecommendations(event, LambdaContext())["headers"]["Content-Type"].startswith("text/html")


def test_invalid_json_message_says_where(app):
    _, body = call(app, rest_event('{"text": "a'))
    assert body["error"]["message"] == (
        "the body is not valid JSON: Unterminated string starting at: line 1 column 10"
    )


def default_process(app):
    return app.recommender.models.default.top  # what a plain request asks


def end_backoff(app, name="default"):
    """What the passing of the model's back-off does: the next request tries it again."""
    app.recommender.models.by_name[name].retry_at = 0


def assert_unavailable(status, body, headers, public_code):
    """503 model_unavailable with a Retry-After, naming the failure's code and no file path."""
    assert_error(status, body, 503, "model_unavailable")
    assert int(headers["Retry-After"]) >= 1
    assert public_code in body["error"]["message"] and "/" not in body["error"]["message"]


def call_with_headers(app, event):
    response = app.tagRecommendations(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"]), response["headers"]


def test_missing_model_gives_503_at_once_during_its_backoff_then_recovers(app, tmp_path, monkeypatch, tiny_model, logs):
    model = tmp_path / "model.bin"
    patch_processes(monkeypatch, app.recommender.models.default, model_path=model)
    assert_unavailable(*call_with_headers(app, rest_event({"text": "python"})), "model_invalid")
    assert str(model) in json.dumps(logs())  # the log names the file, the answer does not
    model.write_bytes(tiny_model.read_bytes())
    assert_unavailable(*call_with_headers(app, rest_event({"text": "python"})), "model_invalid")  # backing off
    assert fasttext_children(model) == {}
    end_backoff(app)
    assert call(app, rest_event({"text": "python"}))[0] == 200


def test_missing_binary_gives_503(app, tmp_path, monkeypatch):
    patch_processes(monkeypatch, app.recommender.models.default, binary_path=tmp_path / "fasttext")
    assert_unavailable(*call_with_headers(app, rest_event({"text": "python"})), "binary_unusable")


def test_hung_fasttext_gives_503_within_the_timeout_then_recovers(app, monkeypatch):
    assert call(app, rest_event({"text": "python"}))[0] == 200
    monkeypatch.setattr(default_process(app), "timeout", 0.5)
    os.kill(default_process(app).pid, signal.SIGSTOP)
    assert_unavailable(*call_with_headers(app, rest_event({"text": "python"})), "answer_timeout")
    end_backoff(app)
    assert call(app, rest_event({"text": "python"}))[0] == 200


def test_unexpected_error_gives_500_with_request_id_and_no_trace(app, monkeypatch, logs):
    def explode(request, deadline):
        raise RuntimeError("secret internal detail at /var/task/recommender.py")

    monkeypatch.setattr(app.recommender, "recommend", explode)
    status, body = call(app, rest_event({"text": "python"}))
    assert_error(status, body, 500, "internal_error")
    assert "secret" not in json.dumps(body) and "Traceback" not in json.dumps(body)
    logged = logs()
    assert "secret internal detail" in logged[0]["exception"]  # the log keeps what the caller must not see
    assert logged[0]["request_id"] == body["error"]["request_id"]


def test_health_describes_each_model_and_the_binary(app, tiny_model):
    assert call(app, rest_event({"text": "python"}))[0] == 200
    status, body = call(app, rest_event(None, method="GET", path="/health"))
    assert status == 200 and body["status"] == "ok"
    assert body["models"] == [{"name": "default", "status": "ok", "source": "bundled", "labels": 4,
                               "sha256": hashlib.sha256(tiny_model.read_bytes()).hexdigest()}]
    assert body["fasttext"] == {"version": "0.9.3"}
    status, body_v2 = call(app, http_event(None, method="GET", path="/health"))
    assert status == 200 and body_v2 == body


def test_health_on_a_fresh_function_starts_no_fasttext_process_and_a_recommendation_then_does(app, tiny_model):
    status, body = call(app, rest_event(None, method="GET", path="/health"))
    assert status == 200 and body["status"] == "ok"
    assert fasttext_children(tiny_model) == {}
    assert body["models"] == [{"name": "default", "status": "idle", "source": "bundled", "sha256": None, "labels": None}]
    assert call(app, rest_event(None, method="HEAD", path="/health"))[0] == 200
    assert fasttext_children(tiny_model) == {}

    assert call(app, rest_event({"text": "python pip module"}))[0] == 200
    (pid,) = fasttext_children(tiny_model)
    status, body = call(app, rest_event(None, method="GET", path="/health"))
    assert body["models"][0]["status"] == "ok"
    assert list(fasttext_children(tiny_model)) == [pid]  # health asked nothing of it


def test_health_says_when_the_fasttext_process_died_and_the_next_request_restarts_it(app, tiny_model):
    assert call(app, rest_event({"text": "python"}))[0] == 200
    (pid,) = fasttext_children(tiny_model)
    os.kill(pid, signal.SIGKILL)
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped by its Popen
    body = call(app, rest_event(None, method="GET", path="/health"))[1]
    assert body["models"][0]["status"] == "idle"
    assert fasttext_children(tiny_model) == {}  # health did not restart it
    assert call(app, rest_event({"text": "python"}))[0] == 200
    body = call(app, rest_event(None, method="GET", path="/health"))[1]
    assert body["models"][0]["status"] == "ok" and default_process(app).starts == 2


def test_health_reports_503_while_the_default_model_is_failing(app, tmp_path, monkeypatch):
    patch_processes(monkeypatch, app.recommender.models.default, model_path=tmp_path / "gone.bin")
    assert call(app, rest_event(None, method="GET", path="/health"))[0] == 200  # not tried yet
    assert call(app, rest_event({"text": "python"}))[0] == 503
    status, body, headers = call_with_headers(app, rest_event(None, method="GET", path="/health"))
    assert_unavailable(status, body, headers, "model_invalid")


@pytest.mark.parametrize("problem", ["missing", "not executable"])
def test_health_reports_503_when_the_binary_could_not_start(app, tmp_path, monkeypatch, problem):
    binary = tmp_path / "fasttext"
    if problem == "not executable":
        binary.write_bytes(b"\x7fELF")
    patch_processes(monkeypatch, app.recommender.models.default, binary_path=binary)
    assert_unavailable(*call_with_headers(app, rest_event(None, method="GET", path="/health")), "binary_unusable")


def test_one_structured_log_line_per_request_without_the_text(app, logs):
    call(app, rest_event({"texts": ["a secret python text", "another"]}))
    lines = logs()
    requests = [line for line in lines if line["message"] == "request"]
    assert len(requests) == 1
    entry = requests[0]
    assert entry["request_id"] == LambdaContext().aws_request_id
    assert entry["status"] == 200 and entry["texts"] == 2 and entry["latency_ms"] >= 0
    assert "secret" not in json.dumps(lines)


def test_request_line_has_the_log_formatters_shape_and_follows_the_log_level(app, logs):
    """The per-request line is written without a LogRecord (bench/README.md): it must still read
    as the formatter writes every other line, and LOG_LEVEL above INFO must still silence it."""
    call(app, rest_event({"text": "a python text"}))
    (entry,) = [line for line in logs() if line["message"] == "request"]
    assert list(entry)[:3] == ["level", "logger", "message"]  # as _JsonLogFormatter orders them
    assert list(entry)[-4:] == ["route", "status", "latency_ms", "texts"]
    assert entry["request_id"] == LambdaContext().aws_request_id
    assert entry["level"] == "INFO" and entry["logger"] == "tagRecommendations"
    assert entry["route"] == "/recommendations" and entry["status"] == 200 and entry["texts"] == 1
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # what LOG_LEVEL=WARNING sets at import
    try:
        call(app, rest_event({"text": "a python text"}))
    finally:
        root.setLevel(level)
    assert [line for line in logs() if line["message"] == "request"] == []


def test_request_text_is_logged_only_when_asked(app, logs, monkeypatch):
    monkeypatch.setattr(app, "LOG_REQUEST_TEXT", True)
    call(app, rest_event({"text": "a debug python text"}))
    assert logs()[-1]["request_texts"] == ["a debug python text"]


def test_request_id_is_lambdas_own_and_api_gateways_is_logged_beside_it(app, logs):
    status, body = call(app, rest_event("{bad"))
    assert body["error"]["request_id"] == LambdaContext().aws_request_id
    (entry,) = logs()
    assert entry["request_id"] == LambdaContext().aws_request_id
    assert entry["apigw_request_id"] == rest_event(None)["requestContext"]["requestId"]
    assert "lambda_request_id" not in entry


@pytest.mark.parametrize("context", [LambdaContext("1234567890"), None], ids=["local_stand_in", "no_context"])
@pytest.mark.parametrize("make_event", [rest_event, http_event, lambda body: body], ids=["rest_v1", "http_v2", "direct"])
def test_request_id_is_unique_where_the_runtime_gives_none(app, logs, context, make_event):
    """serverless offline and invoke local pass the context id 1234567890 to every request (and an
    HTTP API under serverless offline one fixed requestId): each request gets a fresh UUID."""
    ids = []
    for _ in range(2):
        response = app.tagRecommendations(make_event({"text": 5}), context)
        ids.append(json.loads(response["body"])["error"]["request_id"])
    assert ids[0] != ids[1]
    assert all(str(uuid.UUID(request_id)) == request_id for request_id in ids)
    entries = logs()
    assert [entry["request_id"] for entry in entries] == ids
    for entry in entries:
        assert entry.get("lambda_request_id") == (context and context.aws_request_id)
        event = make_event({})
        assert entry.get("apigw_request_id") == (event.get("requestContext") or {}).get("requestId")


def test_relative_binary_path_is_taken_from_the_package_root(monkeypatch):
    monkeypatch.setenv("FASTTEXT_BINARY", "fasttext-arm64")
    monkeypatch.delenv("MODEL_PATH", raising=False)
    process = Recommender.from_environment().models.default.answering
    assert process.binary_path == os.path.join(os.path.dirname(handler.__file__), "fasttext-arm64")
    assert process.model_path == os.path.join(os.path.dirname(handler.__file__), "model.bin")
