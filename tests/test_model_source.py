"""A model kept in S3, with moto standing in for AWS; the fastText side is real."""

import errno
import hashlib
import importlib
import json
import os
import shutil
import tempfile

import boto3
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

import handler
import served_models
from model_source import BundledModel, ModelSourceError, S3Model, model_from_environment
from recommender import Recommender
from support import LambdaContext, call, fresh_handler, rest_event

BUCKET, KEY = "tag-models", "models/debtags.bin"
URI = f"s3://{BUCKET}/{KEY}"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield boto3.client("s3")


@pytest.fixture
def uploaded(aws, tiny_model):
    aws.put_object(Bucket=BUCKET, Key=KEY, Body=tiny_model.read_bytes())
    return hashlib.sha256(tiny_model.read_bytes()).hexdigest()


@pytest.fixture
def s3_app(monkeypatch, tmp_path, fasttext_binary):
    """The handler as a cold start with MODEL_S3_URI set builds it."""
    monkeypatch.delenv("MODEL_PATH", raising=False)
    monkeypatch.setenv("MODEL_S3_URI", URI)
    monkeypatch.setenv("MODEL_DOWNLOAD_DIR", str(tmp_path))
    monkeypatch.setenv("FASTTEXT_BINARY", str(fasttext_binary))
    with fresh_handler(monkeypatch) as fresh:
        yield fresh


def leftovers(directory):
    return [name for name in os.listdir(directory) if name.endswith(".partial")]


def test_downloads_once_and_serves_from_tmp(uploaded, tmp_path, tiny_model):
    model = S3Model(URI, uploaded, str(tmp_path))
    path = model.local_path()
    assert path.startswith(str(tmp_path)) and open(path, "rb").read() == tiny_model.read_bytes()
    assert model.local_path() == path
    assert model.downloads == 1


def test_checksum_is_optional(uploaded, tmp_path, tiny_model):
    model = S3Model(URI, None, str(tmp_path))
    assert open(model.local_path(), "rb").read() == tiny_model.read_bytes()


def test_missing_object_is_a_clear_error_and_leaves_nothing(aws, tmp_path):
    model = S3Model(URI, None, str(tmp_path))
    with pytest.raises(ModelSourceError, match=f"model {URI} does not exist"):
        model.local_path()
    assert os.listdir(tmp_path) == []


def test_missing_bucket(aws, tmp_path):
    with pytest.raises(ModelSourceError, match="does not exist"):
        S3Model("s3://no-such-bucket/model.bin", None, str(tmp_path)).local_path()


def test_checksum_mismatch_never_leaves_a_model(uploaded, tmp_path):
    model = S3Model(URI, "0" * 64, str(tmp_path))
    with pytest.raises(ModelSourceError, match="failed its checksum"):
        model.local_path()
    assert os.listdir(tmp_path) == []
    assert not os.path.exists(model.path)


def test_denied_read_is_named(uploaded, tmp_path, monkeypatch):
    @set_initial_no_auth_action_count(2)
    def read_as_a_user_without_permissions():
        iam = boto3.client("iam")
        iam.create_user(UserName="no-rights")
        key = iam.create_access_key(UserName="no-rights")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN")
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the old credentials
        S3Model(URI, None, str(tmp_path)).local_path()

    with pytest.raises(ModelSourceError, match="denied; the function's role needs s3:GetObject"):
        read_as_a_user_without_permissions()
    assert leftovers(tmp_path) == []


def test_malformed_uri(tmp_path):
    with pytest.raises(ModelSourceError, match="must look like s3://bucket/key"):
        S3Model("https://example.com/model.bin", None, str(tmp_path)).local_path()


def test_bundled_model_is_the_default(monkeypatch):
    monkeypatch.delenv("MODEL_S3_URI", raising=False)
    monkeypatch.delenv("MODEL_PATH", raising=False)
    model = model_from_environment("/var/task/model.bin")
    assert isinstance(model, BundledModel) and model.local_path() == "/var/task/model.bin"
    assert model.kind == "bundled"


def test_handler_serves_the_s3_model_and_health_says_so(uploaded, s3_app):
    source = s3_app.recommender.models.default.source
    # A fresh container's health fetches nothing, and names no bucket or key.
    status, health = call(s3_app, rest_event(None, method="GET", path="/health"))
    assert status == 200
    assert health["models"] == [{"name": "default", "status": "idle", "source": "s3", "sha256": None, "labels": None}]
    assert source.downloads == 0
    status, body = call(s3_app, rest_event({"text": "python pip module"}))
    assert status == 200 and body["hashtags_recommended"][0]["hashtag"] == "#python"
    status, health = call(s3_app, rest_event(None, method="GET", path="/health"))
    assert health["models"] == [{"name": "default", "status": "ok", "source": "s3", "sha256": uploaded, "labels": 4}]
    assert BUCKET not in json.dumps(health) and source.downloads == 1


def test_the_request_that_needs_a_missing_s3_model_says_what_failed_without_naming_the_object(aws, s3_app, capsys):
    status, health = call(s3_app, rest_event(None, method="GET", path="/health"))
    assert status == 200 and s3_app.recommender.models.default.source.downloads == 0
    response = s3_app.tagRecommendations(rest_event({"text": "python"}), LambdaContext())
    body = json.loads(response["body"])
    assert response["statusCode"] == 503 and body["error"]["code"] == "model_unavailable"
    assert "not_found" in body["error"]["message"] and BUCKET not in response["body"]
    assert "s3://" not in json.dumps(response["headers"]) and int(response["headers"]["Retry-After"]) > 0
    assert f"model {URI} does not exist" in capsys.readouterr().out  # the log keeps it


def test_handler_answers_503_when_the_s3_model_is_missing_then_recovers_after_its_backoff(aws, s3_app, tiny_model):
    assert call(s3_app, rest_event({"text": "python"}))[0] == 503
    aws.put_object(Bucket=BUCKET, Key=KEY, Body=tiny_model.read_bytes())
    assert call(s3_app, rest_event({"text": "python"}))[0] == 503  # in its back-off: not asked again
    assert s3_app.recommender.models.default.source.downloads == 0
    s3_app.recommender.models.default.retry_at = 0  # what the end of the back-off does
    assert call(s3_app, rest_event({"text": "python"}))[0] == 200


def test_a_full_disk_while_fetching_is_a_503(uploaded, s3_app, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", disk_full)
    status, body = call(s3_app, rest_event({"text": "python"}))
    assert status == 503 and body["error"]["code"] == "model_unavailable" and "no_space" in body["error"]["message"]
    health = call(s3_app, rest_event(None, method="GET", path="/health"))
    assert health[0] == 503  # the default model is failing


def test_with_provisioned_concurrency_init_fetches_verifies_and_starts_the_s3_model(uploaded, monkeypatch, tmp_path,
                                                                                   fasttext_binary):
    """Done when (issue 22): the S3 model is on disk after import, before any request."""
    monkeypatch.delenv("MODEL_PATH", raising=False)
    monkeypatch.setenv("MODEL_S3_URI", URI)
    monkeypatch.setenv("MODEL_SHA256", uploaded)
    monkeypatch.setenv("MODEL_DOWNLOAD_DIR", str(tmp_path))
    monkeypatch.setenv("FASTTEXT_BINARY", str(fasttext_binary))
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")
    fresh = importlib.reload(handler)
    try:
        served = fresh.recommender.models.default
        assert served.source.fetched and os.path.isfile(served.source.path)
        assert served.status == "ok" and served.top.starts == 1
        assert call(fresh, rest_event({"text": "python pip module"}))[0] == 200
        assert served.top.starts == 1 and served.source.downloads == 1
    finally:
        fresh.recommender.close()
        monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE")


def test_relative_model_path_is_taken_from_the_package_root(monkeypatch):
    monkeypatch.delenv("MODEL_S3_URI", raising=False)
    monkeypatch.setenv("MODEL_PATH", "models/other.bin")
    assert model_from_environment("/var/task/model.bin").local_path() == "/var/task/models/other.bin"


@pytest.fixture
def named_s3_app(monkeypatch, tmp_path, lambda_env, aws, tiny_model):
    """The handler with the tiny model bundled as the default, and named models under an S3 prefix:
    forum uploaded with its checksum, news listed with a checksum it does not have."""
    aws.put_object(Bucket=BUCKET, Key="named/forum.bin", Body=tiny_model.read_bytes())
    aws.put_object(Bucket=BUCKET, Key="named/news.bin", Body=tiny_model.read_bytes())
    digest = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    monkeypatch.setenv("MODELS_S3_PREFIX", f"s3://{BUCKET}/named")
    monkeypatch.setenv("MODELS_SHA256", f"forum={digest}, news={'0' * 64}, bad entry")
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "no-models-here"))
    monkeypatch.setenv("MODEL_DOWNLOAD_DIR", str(tmp_path))
    recommender = Recommender.from_environment()
    monkeypatch.setattr(handler, "recommender", recommender)
    yield handler, digest
    recommender.close()


def test_named_models_in_s3_are_fetched_on_first_use_with_their_checksum(named_s3_app, tmp_path):
    app, digest = named_s3_app
    assert list(app.recommender.models.by_name) == ["default", "forum", "news"]  # "bad entry" is left out
    forum = app.recommender.models.by_name["forum"].source
    assert forum.uri == f"s3://{BUCKET}/named/forum.bin" and forum.downloads == 0
    status, health = call(app, rest_event(None, method="GET", path="/health"))
    listed = {m["name"]: m for m in health["models"]}
    assert listed["forum"] == {"name": "forum", "status": "idle", "source": "s3", "sha256": None, "labels": None}
    assert forum.downloads == 0
    status, body = call(app, rest_event({"text": "python pip module", "model": "forum"}))
    assert status == 200 and body["model"] == "forum"
    assert body["hashtags_recommended"][0]["hashtag"] == "#python"
    call(app, rest_event({"text": "sound", "model": "forum"}))
    assert forum.downloads == 1 and forum.local_path().startswith(str(tmp_path))
    listed = {m["name"]: m for m in call(app, rest_event(None, method="GET", path="/health"))[1]["models"]}
    assert listed["forum"] == {"name": "forum", "status": "ok", "source": "s3", "sha256": digest, "labels": 4}
    assert listed["news"]["status"] == "idle"


def test_a_named_s3_model_failing_its_checksum_backs_off_instead_of_downloading_again(named_s3_app, monkeypatch):
    app, _ = named_s3_app
    news = app.recommender.models.by_name["news"]
    fetches = []
    real = news.source._download
    monkeypatch.setattr(news.source, "_download", lambda: fetches.append(1) or real())
    for _ in range(3):
        status, body = call(app, rest_event({"text": "python", "model": "news"}))
        assert status == 503 and body["error"]["code"] == "model_unavailable"
        assert "checksum_mismatch" in body["error"]["message"] and "0000" not in body["error"]["message"]
    assert len(fetches) == 1 and all(process.pid is None for process in news.processes)
    health = call(app, rest_event(None, method="GET", path="/health"))[1]
    assert {m["name"]: m.get("error") for m in health["models"]}["news"] == "checksum_mismatch"
    assert call(app, rest_event({"text": "python"}))[0] == 200


@pytest.fixture
def two_s3_models(monkeypatch, tmp_path, lambda_env, aws, tiny_model):
    """Two named models in S3, a and b, and a /tmp with room for one of them."""
    digest = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    for name in ("a", "b"):
        aws.put_object(Bucket=BUCKET, Key=f"named/{name}.bin", Body=tiny_model.read_bytes())
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    monkeypatch.setenv("MODELS_S3_PREFIX", f"s3://{BUCKET}/named")
    monkeypatch.setenv("MODELS_SHA256", f"a={digest},b={digest}")
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "no-models-here"))
    monkeypatch.setenv("MODEL_DOWNLOAD_DIR", str(downloads))
    capacity = tiny_model.stat().st_size * 3 // 2

    def disk_usage(path):
        used = sum(f.stat().st_size for f in downloads.iterdir())
        return shutil._ntuple_diskusage(capacity, used, capacity - used)

    monkeypatch.setattr(served_models.shutil, "disk_usage", disk_usage)
    with fresh_handler(monkeypatch) as app:
        yield app


def test_models_in_s3_share_tmp_the_download_no_process_uses_deleted_first(two_s3_models):
    app = two_s3_models
    a, b = (app.recommender.models.by_name[name] for name in ("a", "b"))
    assert call(app, rest_event({"text": "python pip", "model": "a"}))[0] == 200
    a.close()  # as the memory budget stops it
    assert call(app, rest_event({"text": "python pip", "model": "b"}))[0] == 200
    assert not a.source.fetched and not os.path.exists(a.source.path) and b.source.fetched
    # b runs: its download stays, and a does not fit beside it.
    status, body = call(app, rest_event({"text": "python pip", "model": "a"}))
    assert status == 503 and "no_space" in body["error"]["message"]
    health = {m["name"]: m for m in call(app, rest_event(None, method="GET", path="/health"))[1]["models"]}
    assert health["a"]["status"] == "failing" and health["a"]["error"] == "no_space"
    assert health["b"]["status"] == "ok"
