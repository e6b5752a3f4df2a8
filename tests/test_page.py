"""The try-it page (try_it.html at GET /) in a real browser: Debian's chromium, headless, driven by
playwright, against `serverless offline` serving the real model.bin.

The screenshot in docs/API.md, docs/try-it.png, is the one this test takes; to refresh it:
    SCREENSHOT_DIR=docs .venv/bin/python -m pytest tests/test_page.py
(otherwise the screenshot goes to a temporary directory).
"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from support import ROOT, make_service, offline_server, request

CHROMIUM = "/usr/bin/chromium"
# Headless as root, and nothing that reaches out of this machine (its connections are refused).
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TEXT = "Command-line tool to convert audio files between MP3 and Ogg Vorbis #audio #sound"


@pytest.fixture(scope="module")
def real_service(tmp_path_factory, serverless_cli, fasttext_binary, shipped_model) -> Path:
    return make_service(tmp_path_factory.mktemp("page") / "fasttext-serverless", shipped_model)


@pytest.fixture(scope="module")
def server(real_service, tmp_path_factory):
    with offline_server(real_service, tmp_path_factory.mktemp("offline") / "offline.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    assert Path(CHROMIUM).is_file(), "chromium is missing: `make apt-deps` installs it"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh profile
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, viewport={"width": 900, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    yield page
    page.close()


def api(server, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    status, _, raw = request(server.url + "/recommendations", json.dumps(body).encode(), headers)
    return status, json.loads(raw)


def submit(page, text: str, k: str = "5", threshold: str = "0", exclude_used: bool = False, api_key: str = "",
           explain: bool = False):
    page.fill("#text", text)
    page.fill("#k", k)
    page.fill("#threshold", threshold)
    page.set_checked("#exclude-used", exclude_used)
    page.set_checked("#explain", explain)
    page.fill("#api-key", api_key)
    with page.expect_response(re.compile(r"/recommendations$")):
        page.click("#submit")
    expect(page.locator("#submit")).to_be_enabled()


def shown_recommendations(page) -> list[dict]:
    rows = page.locator("#recommended .row")
    return [
        {"hashtag": row.locator(".hashtag").inner_text(), "probability": float(row.locator(".prob").inner_text()),
         "bar": row.locator(".bar").evaluate("bar => bar.style.width")}
        for row in rows.all()
    ]


@pytest.mark.parametrize("path", ["/", ""], ids=["stage_root_slash", "stage_root"])
def test_page_recommends_like_the_api_and_shows_the_model(server, page, tmp_path, path):
    page.goto(server.url + path)
    submit(page, TEXT, k="10", exclude_used=True)
    # The facts /health has of the default model once a request has loaded it.
    expect(page.locator("#model")).to_contain_text("hashtags")
    health = json.loads(request(server.url + "/health")[2])
    default = health["models"][0]
    assert f"{default['labels']} hashtags" in page.inner_text("#model")
    assert default["sha256"][:12] in page.inner_text("#model")
    status, expected = api(server, {"text": TEXT, "k": 10, "threshold": 0, "exclude_used": True})
    assert status == 200
    assert page.locator("#used .tag").all_inner_texts() == expected["hashtags_already_used"] == ["#audio", "#sound"]
    shown = shown_recommendations(page)
    assert [r["hashtag"] for r in shown] == [r["hashtag"] for r in expected["hashtags_recommended"]]
    for row, answer in zip(shown, expected["hashtags_recommended"]):
        assert row["probability"] == round(answer["probability"], 4)
        assert float(row["bar"].removesuffix("%")) == round(answer["probability"] * 100, 1)  # the bar
    assert page.inner_text("#error") == ""
    page.click("#contract summary")  # the contract, rendered from the served openapi.json
    contract = json.loads((ROOT / "openapi.json").read_text())
    shown_operations = page.locator("#contract dt").all_inner_texts()
    assert shown_operations == [
        f"{method.upper()} {path}: {operation['summary']}"
        for path, operations in contract["paths"].items() for method, operation in operations.items()
    ]
    assert "405: method_not_allowed" in page.inner_text("#contract")
    screenshots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    page.screenshot(path=str(screenshots / "try-it.png"), full_page=True)
    assert (screenshots / "try-it.png").stat().st_size > 10_000


@pytest.mark.slow
def test_page_marks_the_words_behind_a_chosen_hashtag(server, page):
    page.goto(server.url + "/")
    expect(page.locator("#model")).to_contain_text("Model: default")
    assert page.locator("#model-name option").all_inner_texts() == ["default"]  # from /health's list
    submit(page, TEXT, k="3", explain=True)
    status, expected = api(server, {"text": TEXT, "k": 3, "explain": True})
    assert status == 200
    assert page.inner_text("#answered-by") == "Answered by model default"
    assert page.locator("#explanation").is_hidden()
    for i, answer in enumerate(expected["hashtags_recommended"]):
        page.locator("#recommended .row").nth(i).click()
        expect(page.locator("#chosen")).to_have_text(answer["hashtag"])
        assert page.locator("#recommended .row.chosen .hashtag").all_inner_texts() == [answer["hashtag"]]
        words = {e["word"] for e in answer["explained_by"]}
        marked = page.locator("#words mark").all_inner_texts()
        assert {m.lower() for m in marked} == words  # every word of TEXT behind it, and only those
        assert page.inner_text("#words") == TEXT
        effects = page.locator("#effects .effect").all_inner_texts()
        assert effects == [f"{e['word']}: −{e['effect']:.4f}" for e in answer["explained_by"]]
    submit(page, TEXT, k="3")  # without explain: nothing to choose
    assert page.locator("#recommended .row.explained").count() == 0 and page.locator("#explanation").is_hidden()


@pytest.mark.parametrize(
    "fields, request_body",
    [
        ({"k": "99"}, {"k": 99}),
        ({"threshold": "2"}, {"threshold": 2}),
        ({"k": "a lot"}, {"k": "a lot"}),  # sent as typed, for the API to explain
        ({"k": "2.5"}, {"k": 2.5}),
        ({"text": "   "}, {"text": "   "}),
    ],
    ids=["k_out_of_range", "threshold_out_of_range", "k_not_a_number", "k_not_an_integer", "blank_text"],
)
def test_page_shows_the_apis_error_message(server, page, fields, request_body):
    page.goto(server.url + "/")
    submit(page, **{"text": TEXT, **fields})
    status, expected = api(server, {"text": TEXT, "k": 5, "threshold": 0, "exclude_used": False, "explain": False,
                                    "model": "default", **request_body})
    assert status == 400
    error = page.inner_text("#error")
    assert error.startswith("400: " + expected["error"]["message"]), error
    assert expected["error"]["code"] in error


def test_page_sends_the_api_key_and_shows_api_gateways_own_errors(real_service, browser_context, tmp_path):
    """With apiKeyRequired=true the page itself needs no key, the API does: without one (or with a
    wrong one) the page shows API Gateway's 403, with the stage's key it recommends."""
    service = tmp_path / "keyed"
    shutil.copytree(real_service, service, symlinks=True)
    with offline_server(service, tmp_path / "offline.log", args=("--param=apiKeyRequired=true",)) as server:
        key = re.search(r"Key with token: '([^']+)'", server.log()).group(1)
        assert api(server, {"text": TEXT})[0] == 403
        page = browser_context.new_page()
        try:
            page.goto(server.url + "/")
            expect(page.locator("#model")).to_contain_text("403: Forbidden")
            submit(page, TEXT)
            assert page.inner_text("#error") == "403: Forbidden"
            submit(page, TEXT, api_key="not-the-key")
            assert page.inner_text("#error") == "403: Forbidden"
            sent = []
            page.on("request", lambda r: sent.append(r.headers.get("x-api-key")))
            submit(page, TEXT, api_key=key)
            assert page.inner_text("#error") == ""
            assert sent == [key, key]  # the recommendation, then /health for the model facts
            status, expected = api(server, {"text": TEXT}, {"x-api-key": key})
            assert [r["hashtag"] for r in shown_recommendations(page)] == [
                r["hashtag"] for r in expected["hashtags_recommended"]
            ]
            expect(page.locator("#model")).to_contain_text("hashtags")
        finally:
            page.close()
