"""Shared fixtures: the real fastText binary, a tiny real model trained once per session,
and API Gateway events shaped the way the platform sends them."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FASTTEXT = ROOT / "fasttext"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Four topics, two per document: enough for a model that answers predictably.
TINY_TOPICS = {
    "python": "python script interpreter module pip virtualenv",
    "cpp": "compiler library header template linker",
    "audio": "sound music player mp3 audio mixer",
    "web": "http server browser html website proxy",
}


@pytest.fixture(scope="session")
def fasttext_binary() -> Path:
    assert FASTTEXT.is_file(), "run `make setup` first: the fastText binary is built by the setup"
    return FASTTEXT


def write_tiny_training_file(path: Path) -> None:
    import random

    rng = random.Random(7)
    names = sorted(TINY_TOPICS)
    with open(path, "w") as f:
        for _ in range(1500):
            labels = rng.sample(names, 2)
            words = " ".join(TINY_TOPICS[labels[0]].split() + TINY_TOPICS[labels[1]].split()).split()
            rng.shuffle(words)
            f.write(" ".join("__label__" + label for label in labels) + " " + " ".join(words[:7]) + "\n")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, fasttext_binary) -> Path:
    """A real supervised fastText model over TINY_TOPICS, trained in well under a second.

    Word bigrams matter: fastText 0.9.3 hits NaN on this tiny vocabulary without them.
    """
    work = tmp_path_factory.mktemp("tiny_model")
    train = work / "train.txt"
    write_tiny_training_file(train)
    subprocess.run(
        [str(fasttext_binary), "supervised", "-input", str(train), "-output", str(work / "model"),
         "-epoch", "10", "-dim", "10", "-loss", "ova", "-wordNgrams", "2", "-bucket", "1000",
         "-thread", "1", "-verbose", "0", "-seed", "1"],
        check=True,
    )
    return work / "model.bin"


@pytest.fixture
def lambda_env(monkeypatch, tiny_model, fasttext_binary):
    """Point the runtime at the tiny model, as serverless.yml's environment does in Lambda."""
    monkeypatch.setenv("MODEL_PATH", str(tiny_model))
    monkeypatch.setenv("FASTTEXT_BINARY", str(fasttext_binary))
    monkeypatch.setenv("PREDICT_TIMEOUT_SECONDS", "5")
    return {"model": tiny_model, "binary": fasttext_binary}


def load_event(name: str) -> dict:
    return json.loads((FIXTURES / "events" / name).read_text())


def rest_event(body, method="POST", path="/recommendations", base64_encoded=False) -> dict:
    """An API Gateway REST (v1) proxy event, from the canonical fixture."""
    event = load_event("apigw_rest_v1.json")
    event.update(httpMethod=method, resource=path, path=path)
    event["requestContext"].update(httpMethod=method, resourcePath=path, path="/dev" + path)
    event["body"], event["isBase64Encoded"] = _body(body, base64_encoded)
    return event


def http_event(body, method="POST", path="/recommendations", base64_encoded=False) -> dict:
    """An API Gateway HTTP API (v2) proxy event, from the canonical fixture."""
    event = load_event("apigw_http_v2.json")
    event.update(rawPath="/dev" + path, routeKey=f"{method} {path}")
    event["requestContext"]["http"].update(method=method, path="/dev" + path)
    event["requestContext"]["routeKey"] = f"{method} {path}"
    event["body"], event["isBase64Encoded"] = _body(body, base64_encoded)
    return event


def _body(body, base64_encoded):
    """Body as API Gateway passes it: a string, base64-encoded when flagged; dicts become JSON."""
    if body is None:
        return None, False
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    if base64_encoded:
        raw = body.encode() if isinstance(body, str) else body
        return base64.b64encode(raw).decode(), True
    return (body.decode() if isinstance(body, bytes) else body), False


class LambdaContext:
    """The attributes of the Lambda context object that the handler reads."""

    def __init__(self, request_id="c0ffee00-0000-4000-8000-000000000001"):
        self.aws_request_id = request_id
        self.function_name = "tagRecommendations"
        self.memory_limit_in_mb = 1024

    def get_remaining_time_in_millis(self):
        return 10_000


def function_url_event(body, method="POST", path="/recommendations", base64_encoded=False) -> dict:
    """A Lambda function URL event (payload 2.0: rawPath without a stage, routeKey "$default"),
    from the canonical fixture."""
    event = load_event("function_url.json")
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event["body"], event["isBase64Encoded"] = _body(body, base64_encoded)
    return event
