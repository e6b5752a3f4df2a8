"""`python -m training.suggest`, run as a user runs it, answers what the endpoint answers."""

import json
import os
import subprocess
import sys

import pytest

import handler
from contract import MAX_TEXT_CHARS, MAX_TEXTS
from recommender import Recommender
from support import ROOT, LambdaContext, rest_event

TEXTS = ["a python script with pip and virtualenv #python", "compiler and linker errors in a template header",
         "an mp3 music player with a sound mixer", "an http proxy server for the browser #web #audio"]


def suggest(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.suggest", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture
def endpoint(lambda_env, monkeypatch):
    """What POST /recommendations answers for a body, through the handler with the same model."""
    recommender = Recommender.from_environment()
    monkeypatch.setattr(handler, "recommender", recommender)

    def answer(body: dict) -> dict:
        response = handler.tagRecommendations(rest_event(body), LambdaContext())
        assert response["statusCode"] == 200, response["body"]
        return json.loads(response["body"])

    yield answer
    recommender.close()


def test_suggest_prints_the_endpoints_answer_for_each_text(endpoint, tiny_model):
    result = suggest("--model", str(tiny_model), "--k", "3", "--exclude-used", *TEXTS)
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert printed == [endpoint({"text": text, "k": 3, "exclude_used": True}) for text in TEXTS]
    assert printed[3]["hashtags_already_used"] == ["#web", "#audio"]
    assert all(r["hashtag"] not in {"#web", "#audio"} for r in printed[3]["hashtags_recommended"])


def test_suggest_reads_stdin_in_batches_and_keeps_the_order(endpoint, tiny_model):
    lines = [TEXTS[i % len(TEXTS)] for i in range(MAX_TEXTS + 30)]
    result = suggest("--model", str(tiny_model), "--threshold", "0.2", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    expected = {text: endpoint({"text": text, "threshold": 0.2}) for text in TEXTS}
    assert [json.loads(line) for line in result.stdout.splitlines()] == [expected[text] for text in lines]


def test_every_bad_text_is_named_by_its_number_before_anything_is_suggested(tiny_model):
    lines = ["a python script", "   ", "a sound mixer", "x" * (MAX_TEXT_CHARS + 1)]
    result = suggest("--model", str(tiny_model), stdin="\n".join(lines))
    assert result.returncode == 1 and result.stdout == ""
    assert "text 2: text must not be empty" in result.stderr
    assert f"text 4: text has {MAX_TEXT_CHARS + 1} characters; the limit is {MAX_TEXT_CHARS}" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--k", "0"], "k must be an integer from 1 to 50"),
        (["--threshold", "1.5"], "threshold must be a number from 0 to 1"),
        (["--model", "no-such.bin"], "no-such.bin: no such model; train one with 'make train DATA=... MODEL=...'"),
        # The reason with its path is the log line (stderr); the error, the runtime's public code.
        (["--model", "README.md"], "model 'default' cannot answer (model_invalid)"),
        ([], "no texts: give them as arguments or one per line on stdin"),
    ],
)
def test_bad_options_and_models_are_clear_errors(tiny_model, args, message):
    result = suggest("--model", str(tiny_model), *args, *(["a python script"] if args else []))
    assert result.returncode == 1 and result.stdout == ""
    assert f"error: {message}" in result.stderr and "Traceback" not in result.stderr
    if "README.md" in args:
        assert f"model file {ROOT / 'README.md'} is not a whole fastText model" in result.stderr


def test_the_functions_environment_variables_apply(tiny_model):
    result = suggest("--model", str(tiny_model), "a python script", env={"FASTTEXT_BINARY": "/nonexistent/fasttext",
                                                                          "MODEL_S3_URI": "s3://bucket/other.bin"})
    assert result.returncode == 1 and result.stdout == ""
    assert "fastText binary /nonexistent/fasttext is missing" in result.stderr
    assert "error: model 'default' cannot answer (binary_unusable)" in result.stderr
