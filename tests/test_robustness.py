"""Property-based robustness tests: whatever API Gateway or a direct caller sends, the function
answers with a documented status and JSON shape, never leaks internals, and never desynchronises
the long-lived fastText process.

Hypothesis profiles (registered and loaded here, selected with HYPOTHESIS_PROFILE):
  robustness  the default: 500 examples per property, a few seconds each
  long        20,000 examples per property (`make test-long`)
  quick       50 examples per property, for editing these tests
"""

import base64
import binascii
import copy
import json
import operator
import os
import re
import subprocess
import unicodedata
import uuid

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import event as record_event
from hypothesis import strategies as st

import handler
from contract import MAX_K, MAX_TEXT_CHARS, MAX_TEXTS
from support import ROOT, TINY_TOPICS, LambdaContext, http_event, load_event, recommender_for, rest_event
from text_cleaning import clean_text, extract_hashtags, normalize_tag

_BASE = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("robustness", max_examples=500, **_BASE)
settings.register_profile("long", max_examples=20_000, **_BASE)
settings.register_profile("quick", max_examples=50, **_BASE)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "robustness")
settings.load_profile(PROFILE)

# 20,000 examples of one property can outlast the 600 s per test of pyproject.toml's pytest options on a busy machine.
pytestmark = pytest.mark.timeout(7200 if PROFILE == "long" else 600)

# ---------------------------------------------------------------------------------------------
# What the function promises (README / handler docstring): statuses, error codes, shapes, limits.

DOCUMENTED_STATUSES = {200, 204, 400, 404, 405, 413, 500, 503}
ERROR_STATUS = {
    "missing_body": 400,
    "invalid_body": 400,
    "invalid_base64": 400,
    "invalid_json": 400,
    "body_too_large": 413,
    "unknown_field": 400,
    "missing_text": 400,
    "invalid_text": 400,
    "empty_text": 400,
    "text_too_long": 413,
    "invalid_texts": 400,
    "invalid_k": 400,
    "invalid_threshold": 400,
    "invalid_exclude_used": 400,
    "invalid_explain": 400,
    "invalid_model": 400,
    "unknown_model": 400,
    "not_found": 404,
    "method_not_allowed": 405,
}
MAX_BODY_BYTES = 256 * 1024
CONTEXT = LambdaContext()
REQUEST_ID = CONTEXT.aws_request_id
LABELS = sorted(TINY_TOPICS)
WORDS = sorted({w for words in TINY_TOPICS.values() for w in words.split()})
# Substrings of a stack trace or of this machine's layout, which no response body may contain.
INTERNALS = ("Traceback", 'File "', "/work/", str(ROOT), '.py"', '.py\\"', "site-packages", "/var/task")

# ---------------------------------------------------------------------------------------------
# Strategies

ANY_CHAR = st.characters(exclude_categories=())  # every code point: controls, surrogates, unassigned
NASTY = [
    "\n", "\r", "\r\n", "\n\r", "\t", "\x00", "\x0b", "\x0c", "\x1b[2J", "\x7f", "\x85", "\xa0",
    "\u2028", "\u2029", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066",
    "\ufeff", "\ufffd", "\ufffe", "\uffff", "\ud800", "\udbff\udfff", "\udc00", "\U0001f600",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467", "\U0001f1eb\U0001f1f7", "e\u0301", "\u0130", "\u0130stanbul",
    "\u00df", "\u1e9e", "\ufb01", "\u03a3", "\u0391\u03a3", "\u01c5", "\u0645\u0631\u062d\u0628\u0627",
    "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd", "\u4e2d\u6587", "\u65e5\u672c\u8a9e", "\U0001d518\U0001d52b",
    "\u0663\u0664", "\u2460\u2461", "<", ">", "</s>", "<b>", "<script>alert(1)</script>", "&amp;", "&lt;",
    "&#0;", "&#10;", "&#x0d;", "&#x85;", "&nbsp;", "&", "__label__", "__label__python", "__label__x 1.0",
    "_", "-", "--", "-k", "-k 9", "- python", "-1", "#", "#python", "#Python", "#c++", "##", "#-#", "#web-dev",
    " ", "  ", "\\", "\\n", '"', "'", "`id`", "$(touch /tmp/pwned)", "; rm -rf / #", "|", "%s%n", "{}", "[]",
    "null", "NaN", "1e999", "9" * 50,
]
words = st.sampled_from(WORDS)
pieces = st.one_of(st.sampled_from(NASTY), words, words.map(lambda w: " " + w + " "), st.text(ANY_CHAR, max_size=6))
composed_texts = st.lists(pieces, max_size=30).map("".join)
# Long texts, some over the 20,000-character limit: one unit repeated.
repeated_texts = st.builds(
    operator.mul,
    st.one_of(st.sampled_from(NASTY), words.map(lambda w: w + " "), st.text(ANY_CHAR, min_size=1, max_size=4)),
    st.integers(1, 6000),
)
newline_floods = st.builds(
    lambda n, word, sep: (word + sep) * n,
    st.integers(1, 3000),
    words,
    st.sampled_from(["\n", "\r", "\r\n", "\n\n", "\x00", "\n-k 9\n", "\n__label__web\n"]),
)
# Texts that look like what fastText itself reads: label tokens, option-like lines, one per line.
fasttext_lines = st.one_of(
    st.builds(lambda label, w: f"__label__{label} {w}", st.sampled_from(LABELS + ["x", ""]), words),
    words.map(lambda w: "-" + w),
    st.sampled_from(["-", "-k 9", "-thread 4", "</s>", "__label__web 1.00001", "predict-prob", "-input /etc/passwd"]),
    words,
)
fasttext_like_texts = st.builds(
    lambda lines, sep: sep.join(lines),
    st.lists(fasttext_lines, min_size=1, max_size=12),
    st.sampled_from(["\n", "\r", "\r\n", "\x00", "\n\n\n", " "]),
)
texts = st.one_of(st.text(ANY_CHAR, max_size=60), composed_texts, repeated_texts, newline_floods, fasttext_like_texts)
valid_texts = texts.filter(lambda t: t.strip() and len(t) <= MAX_TEXT_CHARS)

huge_ints = st.one_of(
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.sampled_from([2**31, 2**63, -(2**63), 2**64, 10**308, 10**309, -(10**309)]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    huge_ints,
    st.floats(),  # NaN and infinities included: json.dumps writes them as NaN / Infinity
    st.text(ANY_CHAR, max_size=12),
)
any_json = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(ANY_CHAR, max_size=8), children, max_size=4),
    max_leaves=12,
)
deeply_nested = st.builds(
    lambda depth, inner: json.loads("[" * depth + json.dumps(inner) + "]" * depth), st.integers(1, 300), json_scalars
)
# Values a caller might send by mistake, for any field: wrong types, out of range, lookalikes.
TYPE_CONFUSIONS = [
    True, False, None, 0, -1, 51, 5.0, 1.5, -0.0, 1e-320, 2.0, "5", "0.5", "true", "", " ", [], {}, [5], ["python"],
    {"text": "python"}, float("nan"), float("inf"), -float("inf"), 10**400, -(10**400),
]
wrong_values = st.one_of(st.sampled_from(TYPE_CONFUSIONS), any_json, huge_ints, deeply_nested)

k_valid = st.integers(1, MAX_K)
threshold_valid = st.one_of(st.floats(0, 1), st.sampled_from([0, 1, 0.0, 1.0, 5e-324, 0.5]))
options = {"k": k_valid, "threshold": threshold_valid, "exclude_used": st.booleans()}
valid_requests = st.one_of(
    st.fixed_dictionaries({"text": valid_texts}, optional=options),
    st.fixed_dictionaries({"texts": st.lists(valid_texts, min_size=1, max_size=8)}, optional=options),
)
many_texts = st.builds(lambda t, n: [t] * n, valid_texts, st.integers(MAX_TEXTS - 3, MAX_TEXTS + 3))
any_requests = st.builds(
    lambda fields, extra: {**extra, **fields},
    st.fixed_dictionaries(
        {},
        optional={
            "text": st.one_of(texts, wrong_values),
            "texts": st.one_of(st.lists(texts, max_size=8), many_texts, wrong_values),
            "k": st.one_of(k_valid, huge_ints, wrong_values),
            "threshold": st.one_of(threshold_valid, st.floats(), huge_ints, wrong_values),
            "exclude_used": st.one_of(st.booleans(), wrong_values),
            "explain": st.one_of(st.booleans(), wrong_values),
            "model": st.one_of(st.sampled_from(["default", "forum", "a b", ""]), wrong_values),
        },
    ),
    st.one_of(st.just({}), st.dictionaries(st.text(ANY_CHAR, max_size=10), any_json, max_size=2)),
)


@st.composite
def one_field_wrong(draw):
    """A valid request with one field (present or not) replaced by a value of a wrong type or range."""
    request = dict(draw(valid_requests))
    field = draw(st.sampled_from(["text", "texts", "k", "threshold", "exclude_used", "explain", "model"]))
    request[field] = draw(wrong_values)
    return request


request_bodies = st.one_of(valid_requests, valid_requests, any_requests, one_field_wrong(), any_json)


# ---------------------------------------------------------------------------------------------
# Oracles: what the answer must be, from the documented rules.


def _reject_constant(name):
    raise ValueError(name)


def decode_body(body, is_base64):
    """(error codes, decoded object) for a proxy event's body: the documented decoding rules."""
    if body is None:
        return {"missing_body"}, None
    if not isinstance(body, str):
        return {"invalid_body"}, None
    raw = body.encode("utf-8", "surrogatepass")
    if is_base64:
        try:
            raw = base64.b64decode(raw, validate=True)
        except binascii.Error:
            return {"invalid_base64"}, None
    if len(raw) > MAX_BODY_BYTES:
        return {"body_too_large"}, None
    try:
        return set(), json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return {"invalid_json"}, None


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def text_problems(text):
    if not isinstance(text, str):
        return {"invalid_text"}
    problems = set()
    if not text.strip():
        problems.add("empty_text")
    if len(text) > MAX_TEXT_CHARS:
        problems.add("text_too_long")
    return problems


def request_problems(body):
    """Every error code the request deserves; the handler reports one of them (the first it finds)."""
    if not isinstance(body, dict):
        return {"invalid_body"}
    problems = set()
    if set(body) - {"text", "texts", "k", "threshold", "exclude_used", "explain", "model"}:
        problems.add("unknown_field")
    if ("text" in body) == ("texts" in body):
        problems.add("missing_text")
    elif "text" in body:
        problems |= text_problems(body["text"])
    elif not isinstance(body["texts"], list) or not 1 <= len(body["texts"]) <= MAX_TEXTS:
        problems.add("invalid_texts")
    else:
        for text in body["texts"]:
            problems |= text_problems(text)
    k = body.get("k", 5)
    if not (isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_K):
        problems.add("invalid_k")
    threshold = body.get("threshold", 0.0)
    if not (_is_number(threshold) and 0 <= threshold <= 1):  # NaN fails the comparison
        problems.add("invalid_threshold")
    if not isinstance(body.get("exclude_used", False), bool):
        problems.add("invalid_exclude_used")
    if not isinstance(body.get("explain", False), bool):
        problems.add("invalid_explain")
    model = body.get("model", "default")
    if not (isinstance(model, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", model)):
        problems.add("invalid_model")
    elif model != "default":  # the only model of the tiny deployment
        problems.add("unknown_model")
    return problems


def check_response(response, request_id=REQUEST_ID):
    """The invariants of every answer: a documented status (never 500/503 with a healthy model),
    JSON of the documented shape, nothing internal. Returns (status, decoded body)."""
    assert isinstance(response, dict) and set(response) == {"statusCode", "headers", "body"}, response
    status, raw = response["statusCode"], response["body"]
    assert status in DOCUMENTED_STATUSES, raw
    assert status not in (500, 503), raw
    assert isinstance(raw, str)
    assert response["headers"]["X-Content-Type-Options"] == "nosniff"
    if status == 204:  # an OPTIONS that reached the function: a CORS preflight, no body
        assert raw == "" and "OPTIONS" in response["headers"]["Access-Control-Allow-Methods"], response
        return status, {}
    if response["headers"]["Content-Type"] == "text/html; charset=utf-8":  # GET /, the page
        assert status == 200 and raw == (ROOT / "try_it.html").read_text()
        return status, {"page": raw}
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(raw)
    assert isinstance(body, dict)
    if status == 200:
        visible = raw
    else:
        assert ("Allow" in response["headers"]) == (status == 405), response["headers"]
        assert set(body) == {"error"}, body
        error = body["error"]
        assert set(error) == {"code", "message", "request_id"}, error
        assert all(isinstance(v, str) and v for v in error.values()), error
        assert ERROR_STATUS.get(error["code"]) == status, error
        if request_id is not None:
            assert error["request_id"] == request_id
        else:
            uuid.UUID(error["request_id"])
        message = error["message"]
        if error["code"] == "unknown_field":  # the one message that quotes the caller's input
            assert message.startswith("unknown field "), message
            message = "unknown field"
        visible = json.dumps({"error": {**error, "message": message}}, ensure_ascii=False)
    for internal in INTERNALS:
        assert internal not in visible, f"{internal!r} leaked into the response"
    return status, body


def check_result(result, text, request):
    """One text's result: shape, options honoured, and what the tiny model must answer."""
    k, threshold = request.get("k", 5), request.get("threshold", 0.0)
    exclude_used = request.get("exclude_used", False)
    explain = request.get("explain", False)
    assert set(result) - {"words_not_explained" if explain else None} == {
        "hashtags_already_used", "hashtags_recommended", "model"}, result
    assert result["model"] == request.get("model", "default")
    used, recommended = result["hashtags_already_used"], result["hashtags_recommended"]
    assert isinstance(used, list) and len(set(used)) == len(used)
    for tag in used:
        assert isinstance(tag, str) and tag.startswith("#") and len(tag) >= 2
        assert extract_hashtags(tag) == [tag]  # a normalised hashtag reads back as itself
    assert isinstance(recommended, list) and len(recommended) <= k
    hashtags = [r["hashtag"] for r in recommended]
    assert len(set(hashtags)) == len(hashtags)
    probabilities = [r["probability"] for r in recommended]
    assert probabilities == sorted(probabilities, reverse=True)
    for r in recommended:
        assert set(r) == {"hashtag", "probability", *(["explained_by"] if explain else [])}
        assert r["hashtag"] in {"#" + label for label in LABELS}, r
        assert isinstance(r["probability"], float) and threshold <= r["probability"] <= 1
        assert not (exclude_used and r["hashtag"] in used)
    if not clean_text(text):
        assert recommended == []  # a text with no words is not sent to fastText
    elif threshold == 0:
        # Up to k of the allowed labels: those the model gives a probability above 0 (which ones,
        # test_batch_equals_singles_and_a_fresh_fasttext checks against fastText itself).
        allowed = [label for label in LABELS if not (exclude_used and "#" + label in used)]
        assert len(recommended) <= min(k, len(allowed))


def check_answer(body, request):
    """A 200 answer to a valid request: one result per text, in order, batch or not."""
    if "texts" in request:
        assert set(body) == {"results"} and isinstance(body["results"], list)
        assert len(body["results"]) == len(request["texts"])
        for result, text in zip(body["results"], request["texts"]):
            check_result(result, text, request)
    else:
        check_result(body, request["text"], request)


# ---------------------------------------------------------------------------------------------
# The function under test: one warm fastText process (real binary, tiny real model) for the module.


@pytest.fixture(scope="module")
def app(tiny_model, fasttext_binary):
    recommender = recommender_for(tiny_model, fasttext_binary)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(handler, "recommender", recommender)
        mp.setattr(handler, "LOG_REQUEST_TEXT", False)
        for process in recommender.models.default.processes:
            process.predict(["warm up"])
        yield handler
    recommender.close()


def invoke(app, event, context=CONTEXT, request_id=REQUEST_ID):
    """Call the handler; the fastText processes must survive every request unrestarted, since a
    restart is how a crash or a desynchronised answer stream would show."""
    processes = app.recommender.models.default.processes
    before = [(process.pid, process.starts) for process in processes]
    response = app.tagRecommendations(event, context)
    assert [(process.pid, process.starts) for process in processes] == before, "a fastText process was restarted"
    return check_response(response, request_id)


REFERENCE_REQUEST = {"texts": ["compiler library header", "sound music player", "python pip http server"], "k": 4}


@pytest.fixture(scope="module")
def reference_answer(app):
    status, body = invoke(app, rest_event(REFERENCE_REQUEST))
    assert status == 200
    return body


def event_outcome(status, answer):
    """Count outcomes in hypothesis' statistics (pytest --hypothesis-show-statistics)."""
    record_event(f"{status} {answer['error']['code'] if status not in (200, 204) else 'ok'}")


def proxy_event(kind, body, b64=False):
    return {"rest": rest_event, "http": http_event}[kind](body, base64_encoded=b64)


# ---------------------------------------------------------------------------------------------
# 1. Any request object, sent as a v1 or v2 proxy event (base64 or not) or invoked directly.


def assert_outcome(status, answer, problems, request):
    """The error the request deserves, or a 200 with a well-formed answer for it."""
    if problems:
        assert status != 200 and answer["error"]["code"] in problems, (problems, answer)
    else:
        assert status == 200, answer
        check_answer(answer, request)


@given(body=request_bodies, via=st.sampled_from(["rest", "http", "direct"]), b64=st.booleans())
def test_any_request_object_gets_its_documented_answer(app, body, via, b64):
    if via == "direct":
        assume(not (isinstance(body, dict) and {"httpMethod", "requestContext"} & set(body)))
        event, problems, decoded = copy.deepcopy(body), request_problems(body), body
    else:
        event = proxy_event(via, body, b64)
        problems, decoded = decode_body(event["body"], event["isBase64Encoded"])
        if not problems:
            problems = request_problems(decoded)
    status, answer = invoke(app, event)
    event_outcome(status, answer)
    assert_outcome(status, answer, problems, decoded)


@given(
    request=valid_requests,
    field=st.sampled_from(["text", "texts", "k", "threshold", "exclude_used", "explain", "model"]),
    value=st.one_of(st.sampled_from(TYPE_CONFUSIONS), wrong_values),
    via=st.sampled_from(["rest", "direct"]),
)
def test_a_wrong_value_in_one_field_is_named(app, request, field, value, via):
    """A valid request with one field changed gets exactly that field's error (or 200 if the
    value happens to be valid there), so no type confusion (True for k, "5" for k...) slips by."""
    request = {**request, field: value}
    if field in ("text", "texts"):
        request.pop("texts" if field == "text" else "text", None)
    problems = request_problems(request)  # all about `field`: more than one if it is a list of bad texts
    event = request if via == "direct" else rest_event(request)
    if via == "rest":
        problems = decode_body(event["body"], False)[0] or problems  # NaN / Infinity are not JSON
    status, answer = invoke(app, event)
    event_outcome(status, answer)
    assert_outcome(status, answer, problems, request)


# ---------------------------------------------------------------------------------------------
# 2. Any body text: arbitrary, truncated or invalid JSON, deep nesting, huge numbers, bad base64.

fields = st.sampled_from(["text", "texts", "k", "threshold", "exclude_used", "explain", "model", "other"])
number_literals = st.one_of(
    st.builds(
        lambda sign, digits, n, fraction, exponent: sign + digits[0] * n + fraction + exponent,
        st.sampled_from(["", "-"]),
        st.sampled_from(["1", "9"]),
        st.integers(1, 6000),
        st.sampled_from(["", ".5", ".0"]),
        st.sampled_from(["", "e5", "e-400", "E+400", "e99999", "e-99999"]),
    ),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", "0.0000", "01", ".5", "1.", "+1", "0x10"]),
)
huge_number_bodies = st.builds(
    lambda field, number: '{"text": "python pip", "%s": %s}' % (field, number) if field != "text"
    else '{"text": %s}' % number,
    fields,
    number_literals,
)
nested_bodies = st.builds(
    lambda depth, opener, closer, wrap: (wrap[0] + opener * depth + "1" + closer * depth + wrap[1]),
    st.integers(1, 120_000),
    st.sampled_from(["[", '{"a":', '{"k":']),
    st.sampled_from(["]", "}"]),
    st.sampled_from([("", ""), ('{"text": "python", "k": ', "}"), ('{"texts": ', "}")]),
)
truncated_bodies = st.builds(
    lambda text, cut: text[: cut % (len(text) + 1)], request_bodies.map(json.dumps), st.integers(0, 10**6)
)
near_limit_bodies = st.builds(lambda n: '{"text": "' + "a " * n + '"}', st.integers(131_050, 131_080))
odd_json = st.sampled_from([
    "", " ", "\ufeff{\"text\": \"python\"}", "{'text': 'python'}", '{"text": "python",}', '{"text": "python"} x',
    '{"text": "python"}{"text": "pip"}', '{"text": "py\x00thon"}', '{"text": "a\\ud800"}', '{"text": "\\u0000"}',
    '{"text": "python", "text": 5}', "/* c */ {}", "\x00", "\u2028", '{"text": "python\\n__label__web"}',
])
raw_bodies = st.one_of(
    st.text(ANY_CHAR, max_size=80),
    truncated_bodies,
    request_bodies.map(json.dumps),
    huge_number_bodies,
    nested_bodies,
    near_limit_bodies,
    odd_json,
)


@given(
    body=st.one_of(raw_bodies, st.binary(max_size=200)),
    via=st.sampled_from(["rest", "http"]),
    encoding=st.sampled_from(["plain", "base64", "flagged-but-not-base64"]),
)
def test_any_body_text_gets_its_documented_answer(app, body, via, encoding):
    if isinstance(body, bytes):
        event = proxy_event(via, body, b64=True)  # arbitrary bytes only travel base64-encoded
    elif encoding == "base64":
        event = proxy_event(via, body.encode("utf-8", "surrogatepass"), b64=True)
    else:
        event = proxy_event(via, body)
        event["isBase64Encoded"] = encoding != "plain"
    problems, decoded = decode_body(event["body"], event["isBase64Encoded"])
    problems = problems or request_problems(decoded)
    status, answer = invoke(app, event)
    event_outcome(status, answer)
    assert_outcome(status, answer, problems, decoded)


# ---------------------------------------------------------------------------------------------
# 3. The canonical events with parts missing or of odd types.

MISSING = object()
odd_values = st.one_of(
    st.just(MISSING), st.none(), st.booleans(), st.integers(), st.text(ANY_CHAR, max_size=10),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
methods = st.one_of(st.sampled_from(["POST", "GET", "PUT", "DELETE", "OPTIONS", "HEAD", "post", ""]), odd_values)
paths = st.one_of(
    st.sampled_from([
        "/recommendations", "/health", "/dev/health", "/dev/recommendations", "/", "", "/health/x", "/openapi.json",
        "/dev", "/dev/",
    ]),
    odd_values,
)


def _set(container, key, value):
    if value is MISSING:
        container.pop(key, None)
    else:
        container[key] = value


@st.composite
def mutated_events(draw):
    event = load_event(draw(st.sampled_from(["apigw_rest_v1.json", "apigw_http_v2.json"])))
    v1 = "httpMethod" in event
    body = draw(st.one_of(request_bodies.map(json.dumps), raw_bodies))
    event["body"] = body
    mutations = draw(st.lists(st.sampled_from([
        "headers", "body", "base64", "requestContext", "http", "requestId", "method", "path", "extra", "drop",
    ]), max_size=5))
    for mutation in mutations:
        context = event.get("requestContext")
        if mutation == "headers":
            _set(event, draw(st.sampled_from(["headers", "multiValueHeaders"])), draw(odd_values))
        elif mutation == "body":
            _set(event, "body", draw(odd_values))
        elif mutation == "base64":
            flag = draw(st.sampled_from([True, True, False, MISSING, None, "false", 1, 0]))
            if flag is True and isinstance(event.get("body"), str) and draw(st.booleans()):
                event["body"] = base64.b64encode(event["body"].encode("utf-8", "surrogatepass")).decode()
            _set(event, "isBase64Encoded", flag)
        elif mutation == "requestContext":
            _set(event, "requestContext", draw(st.one_of(odd_values, st.just({}))))
        elif mutation == "http" and isinstance(context, dict):
            _set(context, "http", draw(st.one_of(odd_values, st.just({}), st.just({"method": "POST"}))))
        elif mutation == "requestId" and isinstance(context, dict):
            _set(context, "requestId", draw(odd_values))
        elif mutation == "method":
            if v1:
                _set(event, "httpMethod", draw(methods))
            elif isinstance(context, dict) and isinstance(context.get("http"), dict):
                _set(context["http"], "method", draw(methods))
        elif mutation == "path":
            _set(event, draw(st.sampled_from(["resource", "path"] if v1 else ["rawPath"])), draw(paths))
        elif mutation == "extra":
            event[draw(st.sampled_from(["text", "texts", "k", "version", "routeKey", "stageVariables"]))] = draw(
                any_json
            )
        elif mutation == "drop":
            _set(event, draw(st.sampled_from(sorted(event))), MISSING)
    return event


@given(event=mutated_events(), with_context=st.booleans())
def test_mutated_api_gateway_events_get_a_documented_answer(app, event, with_context):
    request_id = REQUEST_ID if with_context else None  # None: a fresh UUID
    status, answer = invoke(app, event, LambdaContext() if with_context else None, request_id)
    event_outcome(status, answer)
    if status == 200 and ("page" in answer or "openapi" in answer):  # GET / or GET /openapi.json
        pass
    elif status == 200 and "status" in answer:  # GET /health
        assert answer["status"] == "ok" and [m["name"] for m in answer["models"]] == ["default"]
        assert answer["models"][0]["labels"] in (None, len(LABELS))  # None until a process has loaded it
    elif status == 200:
        assert set(answer) in ({"results"}, {"hashtags_already_used", "hashtags_recommended", "model"})


# ---------------------------------------------------------------------------------------------
# 4. No request can desynchronise the answer stream: a fixed request still gets its first answer.

desync_texts = st.one_of(fasttext_like_texts, newline_floods, composed_texts, repeated_texts).filter(
    lambda t: t.strip() and len(t) <= MAX_TEXT_CHARS
)


@given(
    request=st.one_of(
        st.fixed_dictionaries({"text": desync_texts}, optional=options),
        st.fixed_dictionaries({"texts": st.lists(desync_texts, min_size=1, max_size=8)}, optional=options),
    ),
    via=st.sampled_from(["rest", "http", "direct"]),
)
def test_no_request_desynchronises_later_answers(app, reference_answer, request, via):
    event = request if via == "direct" else proxy_event(via, request)
    assume(via == "direct" or len(event["body"].encode("utf-8", "surrogatepass")) <= MAX_BODY_BYTES)
    status, answer = invoke(app, event)
    assert status == 200, answer
    check_answer(answer, request)
    assert invoke(app, rest_event(REFERENCE_REQUEST)) == (200, reference_answer)


# ---------------------------------------------------------------------------------------------
# 5. A batch answer is the single answers; recommendations depend only on the cleaned text; and
#    they match a separate one-shot `fasttext predict-prob` run over the cleaned lines.


def one_shot_predictions(binary, model, lines):
    """[(label, probability)] per line from a fresh `fasttext predict-prob` run, parsed here."""
    out = subprocess.run(
        [str(binary), "predict-prob", str(model), "-", str(MAX_K)],
        input="".join(line + "\n" for line in lines).encode(),
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    answers = out.split("\n")
    assert answers[-1] == "" and len(answers) == len(lines) + 1
    parsed = []
    for answer in answers[:-1]:
        fields = answer.split(" ")
        parsed.append([
            # fastText prints p + 1e-5; the API reports p, rounded to 6 places.
            (label.removeprefix("__label__"), min(1.0, max(0.0, round(float(probability) - 1e-5, 6))))
            for label, probability in zip(fields[::2], fields[1::2])
        ])
    return parsed


@given(
    texts_=st.lists(valid_texts, min_size=1, max_size=6),
    k=k_valid,
    threshold=st.one_of(st.just(0.0), threshold_valid),
    exclude_used=st.booleans(),
)
def test_batch_equals_singles_and_a_fresh_fasttext(app, tiny_model, fasttext_binary, texts_, k, threshold, exclude_used):
    opts = {"k": k, "threshold": threshold, "exclude_used": exclude_used}
    status, batch = invoke(app, {"texts": texts_, **opts})
    assert status == 200, batch
    check_answer(batch, {"texts": texts_, **opts})
    singles = [invoke(app, {"text": text, **opts}) for text in texts_]
    assert [answer for _, answer in singles] == batch["results"]
    cleaned = [clean_text(text) for text in texts_]
    lines = [line for line in cleaned if line]
    fresh = iter(one_shot_predictions(fasttext_binary, tiny_model, lines) if lines else [])
    for line, result in zip(cleaned, batch["results"]):
        if not line:
            continue
        # A separate one-shot fastText process (its own parsing, not parse_answer) ranks the same...
        expected = []
        for label, probability in next(fresh):
            if probability < threshold or probability == 0:  # no chance is no recommendation
                break
            expected.append({"hashtag": "#" + normalize_tag(label), "probability": probability})
        # ... and so does the cleaned line sent as the text, without exclusions or a k limit.
        # (Cleaning can lengthen a text: "İ".lower() is two characters.)
        if len(line) <= MAX_TEXT_CHARS:
            _, from_clean = invoke(app, {"text": line, "k": MAX_K, "threshold": threshold})
            assert from_clean["hashtags_recommended"] == expected
        used = result["hashtags_already_used"]
        kept = [r for r in expected if not (exclude_used and r["hashtag"] in used)]
        assert result["hashtags_recommended"] == kept[:k]


# ---------------------------------------------------------------------------------------------
# 6. clean_text: one line of fastText tokens, whatever the input.

@given(text=st.one_of(st.text(ANY_CHAR), composed_texts, fasttext_like_texts, newline_floods))
def test_clean_text_gives_one_clean_line_of_plain_tokens(text):
    cleaned = clean_text(text)
    for forbidden in "\n\r\t\v\f\x00":
        assert forbidden not in cleaned
    assert not any(unicodedata.category(c).startswith("C") for c in cleaned)  # no control/format/surrogate
    assert not any(c.isspace() and c != " " for c in cleaned)
    assert "  " not in cleaned and cleaned == cleaned.strip()
    assert "<" not in cleaned and ">" not in cleaned
    tokens = cleaned.split(" ") if cleaned else []
    assert all(tokens) and not any(token.startswith("__label__") or token == "</s>" for token in tokens)
    assert cleaned.split() == tokens  # fastText's split and ours agree
    encoded = cleaned.encode("utf-8")  # no lone surrogates: it encodes strictly
    assert not any(byte < 0x20 for byte in encoded)
    assert clean_text(cleaned) == cleaned  # idempotent


# ---------------------------------------------------------------------------------------------
# 7. Logs never carry the caller's text (or fields) unless LOG_REQUEST_TEXT is set.

MARKER = "zqsecretmarker"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, *_BASE["suppress_health_check"]])
@given(
    request=request_bodies,
    where=st.sampled_from(["text", "texts", "field", "k", "body"]),
    via=st.sampled_from(["rest", "http", "direct"]),
)
def test_logs_never_contain_the_request_text(app, capsys, request, where, via):
    request = dict(request) if isinstance(request, dict) else {"text": "x"}
    if where == "text":
        request["text"] = f"{request.get('text', '')} {MARKER} #{MARKER}"
    elif where == "texts":
        texts_ = request.get("texts")
        request["texts"] = [*(texts_ if isinstance(texts_, list) else [])[:5], f"python {MARKER}"]
    elif where == "field":
        request[MARKER] = MARKER
    elif where == "k":
        request["k"] = MARKER
    if via == "direct":
        event = request
    else:
        event = proxy_event(via, request)
        if where == "body":
            event["body"] = f'{{"text": "{MARKER}", broken'
    capsys.readouterr()
    app.tagRecommendations(event, LambdaContext())
    out, err = capsys.readouterr()
    assert MARKER not in out and MARKER not in err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["message"] for line in lines] == ["request"]
    assert "request_texts" not in lines[0]


# ---------------------------------------------------------------------------------------------
# Bugs the properties above found, now fixed: kept as regression tests.


@pytest.mark.parametrize("via", ["rest", "direct"])
def test_integer_threshold_too_big_for_a_float_is_a_400(app, via):
    request = {"text": "python pip", "threshold": 10**400}
    event = request if via == "direct" else rest_event('{"text": "python pip", "threshold": 1' + "0" * 400 + "}")
    response = app.tagRecommendations(event, LambdaContext())
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_threshold"


def test_html_tags_cannot_span_a_stray_angle_bracket():
    # `<[^<>]*>` rather than `<[^>]*>`: linear on a text full of `<` with no `>`.
    assert clean_text("<a <b> c") == "a c"
    assert clean_text("<" * MAX_TEXT_CHARS) == ""
