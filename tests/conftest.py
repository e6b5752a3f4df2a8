"""Fixtures: the real fastText binary, a tiny real model trained once per session, the runtime's
environment, and the Serverless CLI with a copy of the project for it (helpers: support.py).

Tiers: a test is `slow` when it needs more than Python and the fastText binary: node and the
Serverless CLI, chromium, other Debian packages, the arm64 build, or the Debian model.bin.
`make test-fast` runs the rest (`pytest -m "not slow"`); `make test` runs everything. A test that
asks for one of SLOW_FIXTURES, directly or through another fixture, is marked slow here.
"""

import os
import random
import subprocess
from pathlib import Path

import pytest

from support import (
    FASTTEXT,
    MANY_LABELS,
    NAMED_MODELS,
    ROOT,
    SERVERLESS,
    fresh_handler,
    make_service,
    offline_server,
    train_supervised,
    write_tiny_training_file,
)

SLOW_FIXTURES = {"serverless_cli", "shipped_model", "fasttext_arm64", "file_command"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def fasttext_binary() -> Path:
    assert FASTTEXT.is_file(), "run `make setup` (or `make test-fast`) first: the fastText binary is built by it"
    return FASTTEXT


@pytest.fixture(scope="session")
def fasttext_arm64() -> Path:
    binary = ROOT / "fasttext-arm64"
    assert binary.is_file(), "run `make setup` first: it cross-compiles fasttext-arm64"
    return binary


@pytest.fixture(scope="session")
def file_command() -> str:
    assert subprocess.run(["which", "file"], capture_output=True).returncode == 0, "`make apt-deps` installs file"
    return "file"


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    """The model the function ships: model.bin, or the one `make test MODEL=...` names."""
    model = ROOT / (os.environ.get("MODEL") or "model.bin")
    assert model.is_file(), f"{model} is missing: the setup (`make setup`) trains model.bin before the tests run"
    return model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, fasttext_binary) -> Path:
    """A real supervised fastText model over support.TINY_TOPICS, trained in well under a second.

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


@pytest.fixture(scope="session")
def many_labels_model(tmp_path_factory, fasttext_binary) -> Path:
    """70 labels (t00..t69, word wNN for label tNN), most of them on every example: the model gives
    most labels a probability above 0 for any text, so more than MAX_K of them can be recommended."""
    rng = random.Random(3)
    lines = []
    for _ in range(1000):
        labels = rng.sample(range(MANY_LABELS), 62)
        words = [f"w{label:02d}" for label in labels]
        rng.shuffle(words)
        lines.append(" ".join(f"__label__t{label:02d}" for label in labels) + " " + " ".join(words[:12]))
    return train_supervised(fasttext_binary, tmp_path_factory.mktemp("many_labels"), lines, epoch=2)


@pytest.fixture
def lambda_env(monkeypatch, tiny_model, fasttext_binary):
    """Point the runtime at the tiny model, as serverless.yml's environment does in Lambda."""
    monkeypatch.setenv("MODEL_PATH", str(tiny_model))
    monkeypatch.setenv("FASTTEXT_BINARY", str(fasttext_binary))
    monkeypatch.setenv("PREDICT_TIMEOUT_SECONDS", "5")
    return {"model": tiny_model, "binary": fasttext_binary}


@pytest.fixture(scope="session")
def serverless_cli() -> Path:
    assert SERVERLESS.exists(), "run `make setup` first: node_modules is installed by the setup"
    assert "osls" in SERVERLESS.resolve().parts, f"{SERVERLESS} must be osls, not {SERVERLESS.resolve()}"
    return SERVERLESS


@pytest.fixture(scope="module")
def service(tmp_path_factory, serverless_cli, fasttext_binary, tiny_model) -> Path:
    """A copy of the project serving the tiny model, also as each of support.NAMED_MODELS
    (support.make_service)."""
    return make_service(tmp_path_factory.mktemp("service") / "fasttext-serverless", tiny_model,
                        {name: tiny_model for name in NAMED_MODELS})


@pytest.fixture(scope="module")
def offline(service, tmp_path_factory):
    """`serverless offline` serving `service` on free loopback ports."""
    with offline_server(service, tmp_path_factory.mktemp("offline") / "offline.log") as server:
        yield server


@pytest.fixture
def app(lambda_env, monkeypatch):
    """The handler with a recommender built from the environment, as at a Lambda cold start."""
    with fresh_handler(monkeypatch) as fresh:
        yield fresh
