"""The Serverless Framework setup, through the real CLI (osls) and its plugins: what `package`
ships, `invoke local`, and `serverless offline` answering over HTTP.

Each run works in a temporary copy of the project: the runtime modules, serverless.yml,
package.json, requirements.txt, the real fastText binary, a model as model.bin, node_modules
as a symlink, and decoys named like everything else in the repository, which must stay out
of the zip. The tiny model keeps these runs fast; one packaging run uses the real model.bin,
whose size is what matters for Lambda's limits.
"""

import hashlib
import json
import os
import re
import socket
import stat
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from handler import ROUTES
from support import (
    CLI_TIMEOUT,
    LOCAL_RUNTIME,
    NAMED_MODELS,
    PYTHON_TEXT,
    ROOT,
    SERVERLESS,
    ZIP_NAME,
    api_methods,
    cli_env,
    function_url_event,
    live_processes_in_group,
    make_service,
    offline_server,
    package,
    request,
    run_cli,
    runtime_modules,
    static_files,
)

MAX_ZIP_BYTES = 15 * 1024 * 1024


def listed_patterns() -> list[str]:
    """package-files.txt: what ships in the zip, one serverless-style pattern per line."""
    lines = (line.strip() for line in (ROOT / "package-files.txt").read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _glob_regex(pattern: str) -> re.Pattern:
    parts = re.split(r"(\*\*/?|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(part, re.escape(part)) for part in parts) + r"\Z")


def files_the_list_ships(service: Path, extra: tuple[str, ...] = ()) -> set[str]:
    """The service's files that package-files.txt (and `extra` patterns after it) include: the
    last pattern that matches a file decides, as in serverless's package.patterns."""
    patterns = [(p.startswith("!"), _glob_regex(p.lstrip("!"))) for p in [*listed_patterns(), *extra]]
    shipped = set()
    for path in service.rglob("*"):
        rel = path.relative_to(service).as_posix()
        if rel.startswith(("node_modules/", ".serverless/")) or not path.is_file():
            continue
        included = False
        for negated, regex in patterns:
            if regex.match(rel):
                included = not negated
        if included:
            shipped.add(rel)
    return shipped


@pytest.fixture(scope="module")
def packaged(service) -> zipfile.ZipFile:
    with package(service) as zf:
        yield zf


def assert_ships_exactly_the_runtime(zf: zipfile.ZipFile, service: Path, models: set[str] = frozenset()) -> None:
    """The zip holds what package-files.txt lists (with the binary and model.bin), and that is
    exactly handler.py's modules, the files it serves, the binary, the model and `models`."""
    modules = runtime_modules(service)
    expected = modules | static_files() | {"fasttext", "model.bin"} | models
    assert files_the_list_ships(service, ("fasttext", "model.bin")) == expected
    assert sorted(zf.namelist()) == sorted(expected)
    for name in modules | static_files():
        assert zf.read(name) == (service / name).read_bytes(), name
    binary = zf.getinfo("fasttext")
    mode = binary.external_attr >> 16
    assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, f"fasttext lost its executable bit: {oct(mode)}"
    assert zf.read("fasttext") == (service / "fasttext").read_bytes()
    model = service / "model.bin"
    assert zf.getinfo("model.bin").file_size == model.stat().st_size
    with zf.open("model.bin") as shipped, open(model, "rb") as original:
        while block := original.read(1 << 20):
            assert shipped.read(len(block)) == block, "model.bin differs from the model packaged"
    assert zf.testzip() is None


def test_package_ships_exactly_the_runtime(packaged, service):
    assert {"handler.py", "recommender.py", "fasttext_process.py", "text_cleaning.py"} <= runtime_modules()
    assert_ships_exactly_the_runtime(packaged, service, {f"models/{name}.bin" for name in NAMED_MODELS})


def test_package_with_the_real_model_fits_lambda(tmp_path, serverless_cli, fasttext_binary, shipped_model):
    service = make_service(tmp_path / "fasttext-serverless", shipped_model)
    with package(service) as zf:
        assert_ships_exactly_the_runtime(zf, service)
    size = (service / ".serverless" / ZIP_NAME).stat().st_size
    assert size <= MAX_ZIP_BYTES, f"the zip has {size / 2**20:.1f} MiB; keep it within {MAX_ZIP_BYTES // 2**20} MiB"


@pytest.mark.slow
def test_package_says_how_much_room_is_left_under_lambdas_limits(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / "fasttext-serverless", tiny_model)
    result = run_cli(service, "package")
    output = result.stdout + result.stderr
    match = re.search(r"Package: ([\d.]+) MB zipped \(([\d.]+) MB left of Lambda's 50\.0 MB for a direct upload\), "
                      r"([\d.]+) MB unzipped \(([\d.]+) MB left of 250\.0 MB\)", output)
    assert match, output
    with zipfile.ZipFile(service / ".serverless" / ZIP_NAME) as zf:
        unzipped = sum(info.file_size for info in zf.infolist())
    zipped = (service / ".serverless" / ZIP_NAME).stat().st_size
    mb = 2**20
    assert [float(g) for g in match.groups()] == [round(zipped / mb, 1), round(50 - zipped / mb, 1),
                                                  round(unzipped / mb, 1), round(250 - unzipped / mb, 1)]


@pytest.mark.slow
def test_package_over_lambdas_limit_is_refused_and_not_left_behind(tmp_path, serverless_cli, tiny_model):
    service = make_service(tmp_path / "fasttext-serverless", tiny_model)
    # A fastText header (no words, so its processes fit the memory) and 51 MB of random bytes, which
    # do not compress.
    header = struct.pack("<2i12id3i", 793712314, 12, *[0] * 12, 0.0, 0, 0, 0)
    (service / "models" / "huge.bin").write_bytes(header + os.urandom(51 * 2**20))
    result = subprocess.run([str(SERVERLESS), "package"], cwd=service, env=cli_env(), stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=CLI_TIMEOUT)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "The package is too big for Lambda:" in output and "left of Lambda's 50.0 MB" in output, output
    assert "Keep large models in S3" in output
    assert not (service / ".serverless" / ZIP_NAME).exists()


def test_package_template_describes_the_function_and_its_routes(packaged, service):
    template = json.loads((service / ".serverless" / "cloudformation-template-update-stack.json").read_text())
    resources = template["Resources"]
    function = resources["TagRecommendationsLambdaFunction"]["Properties"]
    assert function["Handler"] == "handler.tagRecommendations"
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["x86_64"]
    assert function["MemorySize"] == 1769  # one full vCPU (docs/DEPLOYMENT.md, "Memory size and cost")
    env = function["Environment"]["Variables"]
    assert env == {"MODEL_PATH": "model.bin", "FASTTEXT_BINARY": "fasttext", "PREDICT_TIMEOUT_SECONDS": "5"}
    # API Gateway gives up after 29 s; fastText's own timeout must fire well before Lambda's.
    assert float(env["PREDICT_TIMEOUT_SECONDS"]) < function["Timeout"] < 29

    # Every path takes ANY method, to the function, and OPTIONS (the CORS preflight), a mock.
    methods = api_methods(resources)
    assert set(methods) == {(method, path) for path in ROUTES for method in ("ANY", "OPTIONS")}
    for (method, _), props in methods.items():
        assert props["Integration"]["Type"] == ("MOCK" if method == "OPTIONS" else "AWS_PROXY")


def printed_response(output: str) -> dict:
    """The last JSON object printed with a statusCode: invoke local prints logs, then the response."""
    decoder, response = json.JSONDecoder(), None
    for match in re.finditer(r"(?m)^\{", output):
        try:
            value, _ = decoder.raw_decode(output, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and "statusCode" in value:
            response = value
    assert response is not None, f"no response in the output:\n{output}"
    return response


def invoke_local(service: Path, event: dict) -> dict:
    result = run_cli(
        service, "invoke", "local", "-f", "tagRecommendations",
        f"--param=runtime={LOCAL_RUNTIME}", "-d", json.dumps(event),
    )
    return printed_response(result.stdout)


def test_invoke_local_recommends(service):
    response = invoke_local(service, {"text": PYTHON_TEXT})
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert body["hashtags_recommended"][0]["hashtag"] == "#python"


@pytest.mark.slow
def test_invoke_local_answers_a_function_url_event_with_the_model_it_names(service):
    response = invoke_local(service, function_url_event({"text": PYTHON_TEXT, "model": "forum", "explain": True}))
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["model"] == "forum" and body["hashtags_recommended"][0]["hashtag"] == "#python"
    # The tiny model is sure of #python (1.0) without any one word of it: no word to name, honestly.
    assert all(isinstance(r["explained_by"], list) for r in body["hashtags_recommended"])
    response = invoke_local(service, function_url_event(None, method="GET", path="/health"))
    assert [m["name"] for m in json.loads(response["body"])["models"]] == ["default", *NAMED_MODELS]


def test_invoke_local_reports_a_bad_request(service):
    response = invoke_local(service, {"texts": []})
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == "invalid_texts"


# --- serverless offline -------------------------------------------------------------------


def test_offline_recommends_for_a_form_encoded_post(offline):
    # What `curl --data '{"text": ...}'` sends: JSON labelled application/x-www-form-urlencoded.
    body = json.dumps({"text": PYTHON_TEXT}).encode()
    status, headers, raw = request(
        offline.url + "/recommendations", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200, raw
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(raw)["hashtags_recommended"][0]["hashtag"] == "#python"


def test_offline_decodes_a_binary_body(offline):
    # serverless-offline passes application/octet-stream bodies base64-encoded, flagged
    # isBase64Encoded, as API Gateway does for binary media types.
    body = json.dumps({"texts": ["un script python pour l’interpréteur ✓", "a compiler, a linker"]}, ensure_ascii=False)
    status, _, raw = request(
        offline.url + "/recommendations", body.encode(), {"Content-Type": "application/octet-stream"}
    )
    assert status == 200, raw
    results = json.loads(raw)["results"]
    assert [r["hashtags_recommended"][0]["hashtag"] for r in results] == ["#python", "#cpp"]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_offline_rejects_invalid_json(offline, content_type):
    status, headers, raw = request(
        offline.url + "/recommendations", b'{"text": "unterminated', {"Content-Type": content_type}
    )
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(raw)["error"]["code"] == "invalid_json"


def test_offline_health_keeps_one_warm_fasttext_process(offline, tiny_model):
    status, _, raw = request(offline.url + "/recommendations", json.dumps({"text": PYTHON_TEXT}).encode())
    assert status == 200, raw
    answers = []
    for _ in range(2):
        status, _, raw = request(offline.url + "/health")
        assert status == 200, raw
        answers.append(json.loads(raw))
    assert answers[0] == answers[1] and answers[0]["status"] == "ok"
    assert answers[0]["models"][0] == {"name": "default", "status": "ok", "source": "bundled", "labels": 4,
                                       "sha256": hashlib.sha256(tiny_model.read_bytes()).hexdigest()}
    # The same Python worker and fastText process answer every request, as in a warm container.
    assert request(offline.url + "/recommendations", json.dumps({"text": PYTHON_TEXT}).encode())[0] == 200
    default_children = [cmd for cmd in live_processes_in_group(offline.pgid) if "predict-prob" in cmd
                        and "/model.bin - 5" in cmd]
    assert len(default_children) == 1, default_children


@pytest.mark.slow
def test_offline_answers_with_the_named_model_and_refuses_unknown_ones(offline):
    assert request(offline.url + "/recommendations", json.dumps({"text": PYTHON_TEXT}).encode())[0] == 200
    status, _, raw = request(offline.url + "/recommendations", json.dumps({"text": PYTHON_TEXT, "model": "forum"}).encode())
    assert status == 200 and json.loads(raw)["model"] == "forum", raw
    status, _, raw = request(offline.url + "/recommendations", json.dumps({"text": PYTHON_TEXT, "model": "news"}).encode())
    assert status == 400 and json.loads(raw)["error"]["code"] == "unknown_model"
    listed = json.loads(request(offline.url + "/health")[2])["models"]
    assert [(m["name"], m["status"]) for m in listed] == [("default", "ok"), ("forum", "ok")]


def test_offline_answers_cors_preflight(offline):
    origin = "https://example.org"
    status, headers, _ = request(
        offline.url + "/recommendations",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
        method="OPTIONS",
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/recommendations"), ("PUT", "/recommendations"), ("DELETE", "/health"), ("POST", "/health"),
     ("PATCH", "/openapi.json"), ("POST", "/"), ("TRACE", "/health")],
)
def test_offline_answers_a_wrong_method_with_a_json_405_and_allow(offline, method, path):
    status, headers, raw = request(offline.url + path, b'{"text": "python"}', method=method)
    assert status == 405, raw
    assert headers["Allow"] == ", ".join((*ROUTES[path], "OPTIONS"))
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(raw)["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("path", list(ROUTES))
def test_offline_answers_cors_preflight_on_every_path(offline, path):
    origin = "https://example.org"
    status, headers, _ = request(
        offline.url + path, headers={"Origin": origin, "Access-Control-Request-Method": "POST"}, method="OPTIONS"
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("path", ["", "/"])
def test_offline_serves_the_page_at_the_stage_root(offline, path):
    status, headers, raw = request(offline.url + path)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert raw.decode() == (ROOT / "try_it.html").read_text()


def test_offline_serves_the_contract(offline):
    status, headers, raw = request(offline.url + "/openapi.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(raw) == json.loads((ROOT / "openapi.json").read_text())


def test_offline_request_ids_are_unique_and_logged_with_the_platforms(offline):
    ids = []
    for _ in range(3):
        _, _, raw = request(offline.url + "/recommendations", b'{"text": 1}')
        ids.append(json.loads(raw)["error"]["request_id"])
    assert len(set(ids)) == 3
    logged = [json.loads(line) for line in offline.log().splitlines() if line.startswith("{") and '"request"' in line]
    by_id = {entry["request_id"]: entry for entry in logged}
    for request_id in ids:
        entry = by_id[request_id]
        assert entry["lambda_request_id"] == "1234567890"  # serverless offline's fixed stand-in
        assert entry["apigw_request_id"] not in ids and entry["apigw_request_id"]


def test_offline_fresh_health_starts_no_fasttext_child_and_stop_ends_the_whole_group(service, tmp_path):
    with offline_server(service, tmp_path / "offline.log") as server:
        # A fresh function's health starts its Python worker, and no fastText child.
        status, _, raw = request(server.url + "/health")
        assert status == 200 and [m["status"] for m in json.loads(raw)["models"]] == ["idle", "idle"], raw
        running = live_processes_in_group(server.pgid)
        assert any("invoke.py" in cmd for cmd in running), running
        assert not any("predict-prob" in cmd for cmd in running), running
        status, _, raw = request(server.url + "/recommendations", json.dumps({"text": PYTHON_TEXT}).encode())
        assert status == 200, raw
        running = live_processes_in_group(server.pgid)
        assert any("invoke.py" in cmd for cmd in running), running  # the Python worker
        assert any("predict-prob" in cmd for cmd in running), running  # its fastText child
    assert server.leftover == [], "still running after SIGTERM to the process group"
    assert server.process.returncode is not None
    assert live_processes_in_group(server.pgid) == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_offline_serves_the_http_api_with_v2_events(service, tmp_path):
    """apiType=http: serverless offline serves the httpApi routes (no stage prefix, payload format
    2.0 events for the handler) and answers the CORS preflight."""
    with offline_server(service, tmp_path / "offline.log", args=("--param=apiType=http",)) as server:
        status, _, raw = request(server.url + "/recommendations", json.dumps({"text": PYTHON_TEXT}).encode(),
                                 {"Content-Type": "application/json"})
        assert status == 200, raw
        assert json.loads(raw)["hashtags_recommended"][0]["hashtag"] == "#python"
        status, _, raw = request(server.url + "/health")
        assert status == 200 and json.loads(raw)["status"] == "ok", raw
        status, headers, raw = request(server.url + "/health", b"{}", method="POST")
        assert status == 405 and headers["Allow"] == ", ".join((*ROUTES["/health"], "OPTIONS")), raw
        status, _, raw = request(server.url + "/dev/health")
        assert status == 404, "an HTTP API's $default stage has no stage in its paths"
        status, headers, _ = request(
            server.url + "/recommendations",
            headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"},
            method="OPTIONS",
        )
        assert status in (200, 204)
        assert headers["Access-Control-Allow-Origin"] in ("*", "https://example.org")
