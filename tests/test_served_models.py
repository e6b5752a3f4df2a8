"""The served models hold the request's deadline, their memory and their secrets (issue 22): one
deadline for every exchange of a request, a load that outlasts a request, the processes alive
within half the function's memory, and nothing of the container's in what a stranger sees."""

import base64
import hashlib
import json
import re
import shutil

import pytest

from fasttext_process import Deadline
from served_models import ALL_LABELS
from support import (
    LambdaContext,
    fresh_handler,
    function_url_event,
    http_event,
    patch_processes,
    predict_prob,
    rest_event,
    slow_fasttext,
)

EXPLAIN = {"text": "python pip module #web", "explain": True, "exclude_used": True}


class ContextWithTime(LambdaContext):
    def __init__(self, millis: int):
        super().__init__()
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def respond(app, event, context=None) -> tuple[int, dict, dict]:
    response = app.tagRecommendations(event, context or LambdaContext())
    return response["statusCode"], json.loads(response["body"] or "null"), response["headers"]


@pytest.fixture
def slow_app(lambda_env, monkeypatch, tmp_path):
    """The handler with a fastText that answers each exchange 0.4 s late, and a 0.7 s timeout; its
    model loaded."""
    monkeypatch.setenv("FASTTEXT_BINARY", str(slow_fasttext(tmp_path, lambda_env["binary"], exchange=0.4)))
    monkeypatch.setenv("PREDICT_TIMEOUT_SECONDS", "0.7")
    with fresh_handler(monkeypatch) as fresh:
        for process in fresh.recommender.models.default.processes:
            process.wait_until_ready(Deadline(5))
        yield fresh


def test_every_exchange_of_a_request_shares_its_deadline(slow_app):
    """A plain request is one exchange (0.4 s), within the 0.7 s timeout; with explain it is two,
    each within the timeout, together past it."""
    assert respond(slow_app, rest_event({"text": "python pip module"}))[0] == 200
    status, body, headers = respond(slow_app, rest_event({"text": "python pip module", "explain": True}))
    assert status == 503 and "answer_timeout" in body["error"]["message"] and int(headers["Retry-After"]) > 0


def test_the_deadline_is_shorter_when_lambda_has_less_time_left(slow_app):
    # 0.8 s left, less the margin: 0.3 s, short of the 0.4 s the exchange takes.
    status, body, _ = respond(slow_app, rest_event({"text": "python"}), ContextWithTime(800))
    assert status == 503 and "answer_timeout" in body["error"]["message"]
    slow_app.recommender.models.default.retry_at = 0
    slow_app.recommender.models.default.top.wait_until_ready(Deadline(5))
    assert respond(slow_app, rest_event({"text": "python"}), ContextWithTime(9000))[0] == 200


def test_a_model_slower_to_load_than_the_timeout_loads_across_requests(lambda_env, monkeypatch, tmp_path):
    """Done when (issue 22), scaled down: a model loading in 1.2 s with a 0.5 s timeout serves after
    a few requests, each 503 while it loads, from the one process started by the first."""
    monkeypatch.setenv("FASTTEXT_BINARY", str(slow_fasttext(tmp_path, lambda_env["binary"], load=1.2)))
    monkeypatch.setenv("PREDICT_TIMEOUT_SECONDS", "0.5")
    with fresh_handler(monkeypatch) as app:
        answers = []
        while not answers or answers[-1][0] != 200:
            answers.append(respond(app, rest_event({"text": "python pip module"})))
            assert len(answers) < 20
        assert len(answers) > 1
        for status, body, headers in answers[:-1]:
            assert status == 503 and "loading" in body["error"]["message"] and headers["Retry-After"] == "1"
        assert answers[-1][1]["hashtags_recommended"][0]["hashtag"] == "#python"
        assert app.recommender.models.default.top.starts == 1


def test_a_model_that_never_loads_fails_after_its_load_limit(lambda_env, monkeypatch, tmp_path):
    monkeypatch.setenv("FASTTEXT_BINARY", str(slow_fasttext(tmp_path, lambda_env["binary"], load=30)))
    monkeypatch.setenv("PREDICT_TIMEOUT_SECONDS", "0.3")
    monkeypatch.setenv("MODEL_LOAD_TIMEOUT_SECONDS", "0.5")
    with fresh_handler(monkeypatch) as app:
        assert "loading" in respond(app, rest_event({"text": "python"}))[1]["error"]["message"]
        status, body, headers = respond(app, rest_event({"text": "python"}))
        assert status == 503 and "load_timeout" in body["error"]["message"] and int(headers["Retry-After"]) >= 30
        assert app.recommender.models.default.top.pid is None
        assert app.recommender.models.default.summary()["status"] == "failing"


@pytest.fixture
def seven_models(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("seven")
    for i in range(7):
        shutil.copyfile(tiny_model, folder / f"m{i}.bin")
    return folder


def test_processes_stay_within_half_the_functions_memory_least_recently_used_stopped_first(
        lambda_env, seven_models, monkeypatch):
    """Done when (issue 22), scaled to the tiny model (about 2 MiB a process): with 10 MB of
    memory, 5 MiB for processes; 7 models asked with explain, then each asked again answers as
    `fasttext predict-prob` does."""
    monkeypatch.setenv("MODELS_DIR", str(seven_models))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10")
    with fresh_handler(monkeypatch) as app:
        models = app.recommender.models
        assert models.budget_bytes == 5 * 1024 * 1024
        for i in range(7):
            assert respond(app, rest_event({**EXPLAIN, "model": f"m{i}"}))[0] == 200
            alive = [p for m in models.by_name.values() for p in m.processes if p.running]
            assert 0 < sum(p.rss_bytes() for p in alive) <= models.budget_bytes
        # The least recently used were stopped: the last model asked runs, the first does not.
        assert models.by_name["m6"].answering.running and not models.by_name["m0"].answering.running
        for i in range(7):
            status, body, _ = respond(app, rest_event({"texts": ["python pip", "sound music"], "k": 3, "model": f"m{i}"}))
            expected = predict_prob(lambda_env["binary"], seven_models / f"m{i}.bin", ["python pip", "sound music"], 3)
            assert [r["hashtags_recommended"] for r in body["results"]] == expected


def test_the_every_label_process_is_stopped_before_an_answering_one(lambda_env, monkeypatch, tmp_path, tiny_model):
    (tmp_path / "other.bin").write_bytes(tiny_model.read_bytes())
    monkeypatch.setenv("MODELS_DIR", str(tmp_path))
    with fresh_handler(monkeypatch) as app:
        models = app.recommender.models
        default, other = models.by_name["default"], models.by_name["other"]
        deadline = app.recommender.deadline()
        models.answer_lines(default, ["python"], deadline)
        models.answer_lines(default, ["python"], deadline, ALL_LABELS)
        models.answer_lines(other, ["python"], deadline)
        # Room for about one process less than the four: the default's every-label one is
        # stopped, though its answering one was used before it.
        models.budget_bytes = int(3.9 * default.answering.rss_bytes())
        models.answer_lines(other, ["python"], deadline, ALL_LABELS)
        assert default.answering.running and not default.all_labels.running


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.-]+/)+[\w.-]+")  # two parts at least: not a route


def assert_nothing_for_strangers(text: str, pids: set) -> None:
    assert "s3://" not in text and not ABSOLUTE_PATH.search(text), text
    assert not any(re.search(rf"\b{pid}\b", text) for pid in pids), text


def test_no_health_or_error_body_carries_a_path_an_s3_uri_or_a_pid(app, lambda_env, tmp_path, monkeypatch):
    seen, pids = [], set()
    seen.append(respond(app, rest_event({"text": "python"})))
    pids.add(app.recommender.models.default.top.pid)
    seen.append(respond(app, rest_event(None, method="GET", path="/health")))
    patch_processes(monkeypatch, app.recommender.models.default, model_path=tmp_path / "gone.bin")
    seen.append(respond(app, rest_event({"text": "python"})))
    seen.append(respond(app, rest_event(None, method="GET", path="/health")))
    patch_processes(monkeypatch, app.recommender.models.default, binary_path=tmp_path / "nothing")
    seen.append(respond(app, rest_event(None, method="GET", path="/health")))
    seen.append(respond(app, rest_event({"text": "python", "model": "nope"})))
    seen.append(respond(app, rest_event({"text": "python"}, path="/nowhere")))
    assert {status for status, _, _ in seen} == {200, 503, 400, 404}
    for _, body, headers in seen:
        assert_nothing_for_strangers(json.dumps(body) + json.dumps(headers), pids - {None})


@pytest.mark.parametrize("make_event", [rest_event, http_event, function_url_event])
def test_every_response_says_nosniff(app, make_event):
    for event in [make_event({"text": "python"}), make_event(None, method="GET", path="/health"),
                  make_event(None, method="GET", path="/"), make_event(None, method="GET", path="/openapi.json"),
                  make_event(None, method="DELETE", path="/health"), make_event("{", method="POST"),
                  make_event(None, method="OPTIONS", path="/recommendations")]:
        assert app.tagRecommendations(event, LambdaContext())["headers"]["X-Content-Type-Options"] == "nosniff"


def test_the_page_has_a_content_security_policy_allowing_its_own_script_and_style_alone(app):
    response = app.tagRecommendations(rest_event(None, method="GET", path="/"), LambdaContext())
    policy = dict(directive.strip().split(" ", 1) for directive in response["headers"]["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'" and policy["connect-src"] == "'self'"
    for tag in ("script", "style"):
        (inline,) = re.findall(rf"<{tag}>(.*?)</{tag}>", response["body"], re.S)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert policy[f"{tag}-src"] == f"'sha256-{digest}'"
    json_response = app.tagRecommendations(rest_event(None, method="GET", path="/health"), LambdaContext())
    assert "Content-Security-Policy" not in json_response["headers"]


@pytest.mark.parametrize("make_event", [rest_event, http_event, function_url_event])
def test_an_options_request_that_reaches_the_function_is_a_cors_preflight(app, make_event):
    response = app.tagRecommendations(make_event(None, method="OPTIONS", path="/recommendations"), LambdaContext())
    assert response["statusCode"] == 204 and response["body"] == ""
    headers = response["headers"]
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert "content-type" in headers["Access-Control-Allow-Headers"].lower()
    response = app.tagRecommendations(make_event(None, method="OPTIONS", path="/nowhere"), LambdaContext())
    assert response["statusCode"] == 404


def test_a_405_names_options_only_because_options_is_answered(app):
    status, body, headers = respond(app, rest_event(None, method="PUT", path="/health"))
    assert status == 405 and headers["Allow"] == "GET, HEAD, OPTIONS"
    assert respond(app, rest_event(None, method="OPTIONS", path="/health"))[0] == 204
