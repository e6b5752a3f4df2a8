"""Several models in one deployment: every NAME.bin in MODELS_DIR answers the requests that name it,
each from its own fastText process, exactly as `fasttext predict-prob` on that file answers."""

import hashlib
import json
import os
import random
import signal
from pathlib import Path

import pytest

from recommender import Recommender
from support import (
    LambdaContext,
    call,
    fasttext_children,
    fresh_handler,
    http_event,
    patch_processes,
    predict_prob,
    rest_event,
    train_supervised,
)

# A second model, on other topics than the tiny one: the same text gets other hashtags from it.
OTHER_TOPICS = {
    "games": "player level score console joystick arcade",
    "math": "algebra matrix integral theorem proof equation",
    "linux": "kernel shell terminal package driver distribution",
}
TEXTS = ["sound music player", "python pip module", "kernel driver terminal", "matrix algebra proof score"]


def train(fasttext_binary: Path, work: Path, topics: dict[str, str]) -> Path:
    rng = random.Random(11)
    names = sorted(topics)
    lines = []
    for _ in range(1500):
        labels = rng.sample(names, 2)
        words = (topics[labels[0]] + " " + topics[labels[1]]).split()
        rng.shuffle(words)
        lines.append(" ".join("__label__" + label for label in labels) + " " + " ".join(words[:7]))
    return train_supervised(fasttext_binary, work, lines)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, fasttext_binary, tiny_model) -> Path:
    """forum.bin (the tiny model's topics) and other.bin (OTHER_TOPICS), with files that are no
    models of the deployment beside them."""
    folder = tmp_path_factory.mktemp("models")
    (folder / "forum.bin").write_bytes(tiny_model.read_bytes())
    other = train(fasttext_binary, tmp_path_factory.mktemp("other_model"), OTHER_TOPICS)
    (folder / "other.bin").write_bytes(other.read_bytes())
    (folder / "not a name.bin").write_bytes(tiny_model.read_bytes())
    (folder / "README.txt").write_text("not a model\n")
    return folder


@pytest.fixture
def app(lambda_env, models_dir, monkeypatch):
    monkeypatch.setenv("MODELS_DIR", str(models_dir))
    with fresh_handler(monkeypatch) as fresh:
        yield fresh


def test_each_request_is_answered_by_the_model_it_names_as_predict_prob_on_that_file(app, models_dir, lambda_env):
    binary = lambda_env["binary"]
    for name, path in [("forum", models_dir / "forum.bin"), ("other", models_dir / "other.bin"),
                       ("default", lambda_env["model"])]:
        status, body = call(app, rest_event({"texts": TEXTS, "k": 3, "model": name}))
        assert status == 200, body
        assert [r["hashtags_recommended"] for r in body["results"]] == predict_prob(binary, path, TEXTS, 3), name
        assert {r["model"] for r in body["results"]} == {name}
    # The two models know different hashtags: the answers above are not one model's three times.
    _, other = call(app, rest_event({"text": "kernel driver terminal", "model": "other"}))
    assert other["hashtags_recommended"][0]["hashtag"] == "#linux"


def test_without_a_model_the_default_answers_and_is_named(app):
    status, body = call(app, http_event({"text": "sound music player"}))
    assert status == 200 and body["model"] == "default"
    assert body["hashtags_recommended"][0]["hashtag"] == "#audio"
    assert call(app, http_event({"text": "sound music player", "model": "default"}))[1] == body


def test_each_model_has_its_own_process_started_on_first_use_and_kept(app):
    models = app.recommender.models.by_name
    assert all(process.pid is None for served in models.values() for process in served.processes)
    call(app, rest_event({"text": "python", "model": "forum"}))
    forum = models["forum"].top
    assert forum.pid is not None and models["other"].top.pid is None and models["default"].top.pid is None
    pid = forum.pid
    call(app, rest_event({"text": "kernel", "model": "other"}))
    call(app, rest_event({"text": "python", "model": "forum"}))
    assert forum.pid == pid and forum.starts == 1
    assert models["other"].top.pid not in (None, pid)


def test_a_named_models_process_killed_is_restarted(app):
    call(app, rest_event({"text": "python", "model": "forum"}))
    forum = app.recommender.models.by_name["forum"].top
    os.kill(forum.pid, signal.SIGKILL)
    status, body = call(app, rest_event({"text": "python pip module", "model": "forum"}))
    assert status == 200 and body["hashtags_recommended"][0]["hashtag"] == "#python"
    assert forum.starts == 2


def test_unknown_model_is_a_400_that_lists_the_models(app):
    status, body = call(app, rest_event({"text": "python", "model": "news"}))
    assert status == 400 and body["error"]["code"] == "unknown_model"
    assert body["error"]["message"] == "no model named 'news'; this deployment has default, forum, other"
    # A file whose stem cannot be a name is no model of the deployment.
    status, body = call(app, rest_event({"text": "python", "model": "not a name"}))
    assert status == 400 and body["error"]["code"] == "invalid_model"


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "../forum", "forum.bin", "f\u00f6rum", 3, None, ["forum"]])
def test_malformed_model_name_is_a_400(app, name):
    status, body = call(app, rest_event({"text": "python", "model": name}))
    assert status == 400 and body["error"]["code"] == "invalid_model", body
    assert "1 to 64 letters, digits, _ or -" in body["error"]["message"]


def test_health_lists_every_model_without_starting_their_processes(app, models_dir, lambda_env):
    status, body = call(app, rest_event(None, method="GET", path="/health"))
    assert status == 200
    assert body["models"] == [{"name": name, "status": "idle", "source": "bundled", "sha256": None, "labels": None}
                              for name in ["default", "forum", "other"]]
    assert all(p.pid is None for served in app.recommender.models.by_name.values() for p in served.processes)
    call(app, rest_event({"text": "python", "model": "other"}))
    listed = {m["name"]: m for m in call(app, rest_event(None, method="GET", path="/health"))[1]["models"]}
    assert [listed[n]["status"] for n in listed] == ["idle", "idle", "ok"]
    assert listed["other"]["sha256"] == hashlib.sha256((models_dir / "other.bin").read_bytes()).hexdigest()
    assert listed["other"]["labels"] == len(OTHER_TOPICS)
    call(app, rest_event({"text": "python"}))
    listed = {m["name"]: m for m in call(app, rest_event(None, method="GET", path="/health"))[1]["models"]}
    assert [listed[n]["status"] for n in listed] == ["ok", "idle", "ok"]
    assert listed["default"]["sha256"] == hashlib.sha256(lambda_env["model"].read_bytes()).hexdigest()


def test_a_broken_named_model_fails_only_the_requests_that_name_it(app, tmp_path, monkeypatch):
    patch_processes(monkeypatch, app.recommender.models.by_name["forum"], model_path=tmp_path / "gone.bin")
    status, body = call(app, rest_event({"text": "python", "model": "forum"}))
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert call(app, rest_event({"text": "python"}))[0] == 200
    assert call(app, rest_event({"text": "kernel", "model": "other"}))[0] == 200


def test_a_truncated_named_model_fails_at_once_and_health_says_so(app, models_dir, tmp_path, monkeypatch):
    """Done when (issue 22): 503, then 503 at once during its back-off (no process started), "failing"
    in /health with its code, and the default model still answers."""
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes((models_dir / "other.bin").read_bytes()[:3000])
    patch_processes(monkeypatch, app.recommender.models.by_name["other"], model_path=truncated)
    for _ in range(2):
        response = app.tagRecommendations(rest_event({"text": "kernel", "model": "other"}), LambdaContext())
        assert response["statusCode"] == 503 and int(response["headers"]["Retry-After"]) > 0
        assert json.loads(response["body"])["error"]["code"] == "model_unavailable"
    assert fasttext_children(truncated) == {}
    listed = {m["name"]: m for m in call(app, rest_event(None, method="GET", path="/health"))[1]["models"]}
    assert listed["other"]["status"] == "failing" and listed["other"]["error"] == "model_invalid"
    assert "error" not in listed["default"]
    assert call(app, rest_event({"text": "python"}))[0] == 200


def test_models_dir_defaults_to_models_beside_the_handler(monkeypatch, lambda_env, models_dir, tmp_path):
    """Without MODELS_DIR, models/ in the package root (recommender.HERE, /var/task on Lambda)."""
    import recommender

    monkeypatch.delenv("MODELS_DIR", raising=False)
    monkeypatch.setattr(recommender, "HERE", str(tmp_path))
    assert list(Recommender.from_environment().models.by_name) == ["default"]  # no models/ folder: none
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "news.bin").write_bytes((models_dir / "other.bin").read_bytes())
    served = Recommender.from_environment().models.by_name
    assert list(served) == ["default", "news"]
    assert served["news"].answering.model_path == str(tmp_path / "models" / "news.bin")


def test_a_models_dir_entry_named_default_does_not_replace_the_default(tmp_path, monkeypatch, lambda_env, models_dir):
    (tmp_path / "default.bin").write_bytes((models_dir / "other.bin").read_bytes())
    monkeypatch.setenv("MODELS_DIR", str(tmp_path))
    recommender = Recommender.from_environment()
    assert list(recommender.models.by_name) == ["default"]
    assert recommender.models.default.answering.model_path == str(lambda_env["model"])
