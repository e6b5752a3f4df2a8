"""Security checks (see SECURITY.md): nothing runs through a shell; the fastText child's argv,
environment and open files are fixed at start and no request can change them; no request text
reaches a file path, a process, the environment or the logs; the Lambda role only writes logs."""

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import handler
from contract import DEFAULT_K, MAX_K
from fasttext_process import Deadline
from support import ROOT, LambdaContext, http_event, make_service, patch_processes, recommender_for, rest_event, run_cli

MARKER = "zqsecuritymarker"


# ---------------------------------------------------------------------------------------------
# The running child: argv, environment and file descriptors, before and after hostile requests.

_audit_events: list | None = None
_WATCHED_PREFIXES = (
    "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.putenv", "os.unsetenv",
    "os.remove", "os.rename", "os.rmdir", "os.chmod", "os.chdir", "shutil.", "socket.", "urllib.", "http.client.",
    "open",
)


def c_environ() -> set[bytes]:
    """The process's real environment, as a child inherits it: libc's `environ`, which may hold
    entries that os.environ does not show (readline sets LINES and COLUMNS with setenv)."""
    entries = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.CDLL(None), "environ")
    result, i = set(), 0
    while entries[i] is not None:
        result.add(entries[i])
        i += 1
    return result


def _audit_hook(name, args):
    if _audit_events is not None and name.startswith(_WATCHED_PREFIXES):
        environ = c_environ() if name == "subprocess.Popen" else None
        _audit_events.append((name, args, environ))


sys.addaudithook(_audit_hook)  # permanent, but records only while a test sets _audit_events


@pytest.fixture
def audit():
    global _audit_events
    _audit_events = []
    yield _audit_events
    _audit_events = None


@pytest.fixture
def cold_app(tiny_model, fasttext_binary, monkeypatch):
    """handler with a recommender whose fastText process has not started yet."""
    recommender = recommender_for(tiny_model, fasttext_binary)
    monkeypatch.setattr(handler, "recommender", recommender)
    monkeypatch.setattr(handler, "LOG_REQUEST_TEXT", False)
    yield handler
    recommender.close()


def hostile_texts(tmp: Path) -> list[str]:
    return [
        f"; touch {tmp}/pwned1 #",
        f"$(touch {tmp}/pwned2)",
        f"`touch {tmp}/pwned3`",
        f"python | touch {tmp}/pwned4",
        f"python && touch {tmp}/pwned5 ; rm -rf / #",
        f"python\n-output {tmp}/pwned6\n-input /etc/passwd",
        f"../../../../..{tmp}/pwned7",
        "__label__python 1.0\n__label__web -k 99 -thread 64",
        "MODEL_PATH=/etc/passwd FASTTEXT_BINARY=/bin/sh LD_PRELOAD=/tmp/x.so",
        "${IFS}cat${IFS}/etc/passwd %s%s%n%x",
        "python\x00/bin/sh\x00-c\x00id",
        "python\r\n- predict-prob /etc/passwd -",
        f"\u202e\u2066; touch {tmp}/pwned8 \ud800",
        f"{MARKER} python pip server",
    ]


def proc_cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").decode().split("\0")


def proc_environ(pid: int) -> set[bytes]:
    return set(Path(f"/proc/{pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")) - {b""}


def proc_fds(pid: int) -> dict[str, str]:
    fd_dir = Path(f"/proc/{pid}/fd")
    return {fd.name: os.readlink(fd) for fd in fd_dir.iterdir()}


def test_child_argv_environment_and_fds_are_fixed_and_hostile_texts_change_nothing(
    cold_app, audit, tmp_path, tiny_model, fasttext_binary
):
    # A plain request's process: the DEFAULT_K labels it can use.
    expected_argv = [str(fasttext_binary), "predict-prob", str(tiny_model), "-", str(DEFAULT_K)]
    environ_before = dict(os.environ)
    process = cold_app.recommender.models.default.top
    texts = hostile_texts(tmp_path)

    # Cold: the first request, itself hostile, starts the child.
    response = cold_app.tagRecommendations(rest_event({"text": texts[0]}), LambdaContext())
    assert response["statusCode"] == 200
    spawned = [e for e in audit if e[0] == "subprocess.Popen"]
    assert len(spawned) == 1
    _, (executable, argv, cwd, env), parent_environ = spawned[0]
    assert [os.fsdecode(a) for a in argv] == expected_argv and os.fsdecode(executable) == str(fasttext_binary)
    assert env is None and cwd is None  # the child inherits the parent's environment, unchanged
    pid = process.pid
    assert proc_cmdline(pid) == expected_argv
    assert proc_environ(pid) == parent_environ
    assert {k + b"=" + v for k, v in os.environb.items()} <= parent_environ
    fds = proc_fds(pid)
    assert sorted(fds) == ["0", "1", "2"], f"the child inherited open files: {fds}"
    assert all(target.startswith("pipe:") for target in fds.values()), fds

    # Warm: the model's other processes (MAX_K labels, every label) started too; then every hostile
    # text, alone and in a batch, through v1, v2 and direct invocation, starts nothing.
    for other in cold_app.recommender.models.default.processes:
        other.wait_until_ready(Deadline(10))
    audit.clear()
    for text in texts:
        for event in (rest_event({"text": text}), http_event({"text": text, "k": MAX_K}), {"text": text}):
            assert cold_app.tagRecommendations(event, LambdaContext())["statusCode"] == 200
    batch = cold_app.tagRecommendations(rest_event({"texts": texts, "exclude_used": True}), LambdaContext())
    assert batch["statusCode"] == 200 and len(json.loads(batch["body"])["results"]) == len(texts)
    # Fields or event parts naming paths or settings are refused or ignored, never used.
    # ("model" names a model of the deployment, never a path: one is not a name.)
    for extra, code in [({"model": "/etc/passwd"}, "invalid_model"), ({"model": "passwd"}, "unknown_model"),
                        ({"binary": "/bin/sh"}, "unknown_field"), ({"MODEL_PATH": "/etc/passwd"}, "unknown_field"),
                        ({"env": {"A": "1"}}, "unknown_field")]:
        response = cold_app.tagRecommendations(rest_event({"text": "python", **extra}), LambdaContext())
        assert response["statusCode"] == 400 and json.loads(response["body"])["error"]["code"] == code
    event = rest_event({"text": "python"})
    event.update(
        queryStringParameters={"model": "/etc/passwd"},
        pathParameters={"MODEL_PATH": "/etc/passwd"},
        stageVariables={"FASTTEXT_BINARY": "/bin/sh"},
    )
    event["headers"]["X-Model-Path"] = "/etc/passwd"
    assert cold_app.tagRecommendations(event, LambdaContext())["statusCode"] == 200

    forbidden = [(name, args) for name, args, _ in audit if name != "open"]
    assert forbidden == [], f"warm requests started processes, set the environment or used the network: {forbidden}"
    for _, (path, mode, _flags), _ in (e for e in audit if e[0] == "open"):
        assert not isinstance(mode, str) or not set(mode) & set("wax+"), f"a request opened {path} to write"
        assert MARKER not in str(path) and str(tmp_path) not in str(path), f"a request opened {path}"
    assert list(tmp_path.iterdir()) == [], "a hostile text created a file"
    assert (process.pid, process.starts) == (pid, 1)
    assert (process.binary_path, process.model_path) == (str(fasttext_binary), str(tiny_model))
    assert proc_cmdline(pid) == expected_argv
    assert proc_environ(pid) == parent_environ
    assert sorted(proc_fds(pid)) == ["0", "1", "2"]
    assert dict(os.environ) == environ_before
    assert not any(MARKER.encode() in entry or str(tmp_path).encode() in entry for entry in c_environ())


# ---------------------------------------------------------------------------------------------
# Logs: one line per request, without the caller's text unless LOG_REQUEST_TEXT is set.


def _logged(capsys):
    out, err = capsys.readouterr()
    return out, err, [json.loads(line) for line in out.splitlines()]


def test_no_log_line_carries_the_text_on_any_path(cold_app, capsys, tmp_path, monkeypatch):
    text = f"{MARKER} python pip #{MARKER}"
    requests = [
        ({"text": text}, 200),
        ({"texts": [text, "x" + MARKER]}, 200),
        ({"text": text, "k": 0}, 400),
        ({"text": text, MARKER: 1}, 400),
        ({"texts": [text, 5]}, 400),
        ({"text": text + "a" * 20_000}, 413),
    ]
    capsys.readouterr()
    for body, status in requests:
        for event in (rest_event(body), http_event(body), body):
            assert cold_app.tagRecommendations(event, LambdaContext())["statusCode"] == status
    assert cold_app.tagRecommendations(rest_event(f'{{"text": "{MARKER}", oops'), None)["statusCode"] == 400
    assert cold_app.tagRecommendations(rest_event({"text": text}, method="PUT"), None)["statusCode"] == 405
    # 503: the model is gone; its log line gives the reason, not the text.
    patch_processes(monkeypatch, cold_app.recommender.models.default, model_path=tmp_path / "gone.bin")
    assert cold_app.tagRecommendations(rest_event({"text": text}), None)["statusCode"] == 503
    out, err, lines = _logged(capsys)
    assert MARKER not in out and MARKER not in err
    assert sum(line["message"] == "request" for line in lines) == 3 * len(requests) + 3
    assert not any("request_texts" in line for line in lines)


def test_request_text_is_logged_only_when_switched_on(cold_app, capsys, monkeypatch):
    capsys.readouterr()
    cold_app.tagRecommendations({"text": f"{MARKER} python"}, LambdaContext())
    assert MARKER not in capsys.readouterr().out
    monkeypatch.setattr(cold_app, "LOG_REQUEST_TEXT", True)
    cold_app.tagRecommendations({"texts": [f"{MARKER} python", "pip"]}, LambdaContext())
    _, _, lines = _logged(capsys)
    assert lines[-1]["request_texts"] == [f"{MARKER} python", "pip"]


def test_log_request_text_is_off_unless_set_to_a_true_value():
    """LOG_REQUEST_TEXT is read once at import; only 1/true/yes (any case) switch it on."""
    script = textwrap.dedent(
        """
        import importlib, json, os, sys
        sys.path.insert(0, sys.argv[1])
        values = [None, "", "0", "false", "False", "no", "off", "2", "on", " true", "1", "true", "TRUE", "Yes"]
        result = {}
        for value in values:
            os.environ.pop("LOG_REQUEST_TEXT", None)
            if value is not None:
                os.environ["LOG_REQUEST_TEXT"] = value
            import handler
            result[repr(value)] = importlib.reload(handler).LOG_REQUEST_TEXT
        print(json.dumps(result))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "LOG_REQUEST_TEXT"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    switched_on = {value for value, on in json.loads(out).items() if on}
    assert switched_on == {"'1'", "'true'", "'TRUE'", "'Yes'"}
    assert os.environ.get("LOG_REQUEST_TEXT") is None and handler.LOG_REQUEST_TEXT is False


def test_logged_request_text_survives_lone_surrogates(cold_app, capsys, monkeypatch):
    monkeypatch.setattr(cold_app, "LOG_REQUEST_TEXT", True)
    capsys.readouterr()
    response = cold_app.tagRecommendations(rest_event('{"text": "python \\ud800 pip"}'), LambdaContext())
    assert response["statusCode"] == 200
    out, err, lines = _logged(capsys)
    assert err == ""
    assert [line["message"] for line in lines if line["message"] == "request"] == ["request"]
    assert lines[-1]["request_texts"] == ["python \ud800 pip"]


# ---------------------------------------------------------------------------------------------
# The Lambda role, as `serverless package` generates it: write its own logs, nothing else.

LOG_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:TagResource"}
ALLOWED_MANAGED_POLICIES = {"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def cloudformation_template(tmp_path_factory, tiny_model, fasttext_binary, serverless_cli):
    service = make_service(tmp_path_factory.mktemp("security") / "fasttext-serverless", tiny_model)
    run_cli(service, "package")
    return json.loads((service / ".serverless" / "cloudformation-template-update-stack.json").read_text())


def test_lambda_role_may_only_write_its_own_logs(cloudformation_template):
    resources = cloudformation_template["Resources"]
    roles = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert list(roles) == ["IamRoleLambdaExecution"]
    role = roles["IamRoleLambdaExecution"]
    assume = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in assume] == [{"Service": ["lambda.amazonaws.com"]}]
    assert set(role.get("ManagedPolicyArns", [])) <= ALLOWED_MANAGED_POLICIES
    assert not [r for r in resources.values() if r["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}]
    statements = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = set(_as_list(statement["Action"]))
        resources_ = json.dumps(statement["Resource"])
        if actions <= LOG_ACTIONS:
            assert ":log-group:/aws/lambda/" in resources_ and '"*"' not in resources_, statement
        else:
            # A model kept in S3 needs exactly s3:GetObject on that one object, nothing wider.
            assert actions == {"s3:GetObject"} and '"*"' not in resources_, statement
    function = resources["TagRecommendationsLambdaFunction"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["IamRoleLambdaExecution", "Arn"]}
    assert "VpcConfig" not in function
    assert not {"LOG_REQUEST_TEXT", "LD_PRELOAD", "PYTHONPATH"} & set(function["Environment"]["Variables"])
