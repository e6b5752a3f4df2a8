"""What the tests (and bench/) share: the repository's paths, the way Lambda and API Gateway
call the function (events, the context object), a tiny training file, and a copy of the project
that the real Serverless CLI can package, invoke and serve.

Standard library only and no runtime import at module level: bench/ imports it too, in processes
that choose which copy of the runtime they import. The pytest fixtures are in conftest.py.
"""

import ast
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FASTTEXT = ROOT / "fasttext"
FIXTURES = ROOT / "tests" / "fixtures"
SERVERLESS = ROOT / "node_modules" / ".bin" / "serverless"
ZIP_NAME = "fasttext-serverless.zip"
LOCAL_RUNTIME = "python%d.%d" % sys.version_info[:2]
CLI_TIMEOUT = 180
PYTHON_TEXT = "a python script run by the interpreter, installed with pip in a virtualenv"

# Four topics, two per document: enough for a model that answers predictably.
TINY_TOPICS = {
    "python": "python script interpreter module pip virtualenv",
    "cpp": "compiler library header template linker",
    "audio": "sound music player mp3 audio mixer",
    "web": "http server browser html website proxy",
}


def write_tiny_training_file(path: Path) -> None:
    rng = random.Random(7)
    names = sorted(TINY_TOPICS)
    with open(path, "w") as f:
        for _ in range(1500):
            labels = rng.sample(names, 2)
            words = " ".join(TINY_TOPICS[labels[0]].split() + TINY_TOPICS[labels[1]].split()).split()
            rng.shuffle(words)
            f.write(" ".join("__label__" + label for label in labels) + " " + " ".join(words[:7]) + "\n")


def train_supervised(fasttext_binary: Path, work: Path, lines: list[str], epoch: int = 10) -> Path:
    """A small real supervised model (work/model.bin) of `lines` in fastText's format, in about a
    second. Word bigrams matter: fastText 0.9.3 hits NaN on tiny vocabularies without them."""
    (work / "train.txt").write_text("".join(line + "\n" for line in lines))
    subprocess.run(
        [str(fasttext_binary), "supervised", "-input", str(work / "train.txt"), "-output", str(work / "model"),
         "-epoch", str(epoch), "-dim", "10", "-loss", "ova", "-wordNgrams", "2", "-bucket", "1000",
         "-thread", "1", "-verbose", "0", "-seed", "1"],
        check=True,
    )
    return work / "model.bin"


def fasttext_quantize(fasttext_binary: Path, dense: Path, prefix: Path, *options: str) -> Path:
    """fastText's own `quantize` of `dense` into PREFIX.ftz (fastText reads PREFIX.bin), with `options`."""
    shutil.copyfile(dense, prefix.with_suffix(".bin"))
    train = prefix.with_name("train.txt")
    write_tiny_training_file(train)
    subprocess.run([str(fasttext_binary), "quantize", "-input", str(train), "-output", str(prefix), *options,
                    "-thread", "1", "-verbose", "0"], check=True)
    return prefix.with_suffix(".ftz")


# Labels t00..t69 of the many-labels model (conftest.many_labels_model), word wNN for label tNN.
MANY_LABELS = 70


# --- how Lambda and API Gateway call the function -------------------------------------------------

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


def function_url_event(body, method="POST", path="/recommendations", base64_encoded=False) -> dict:
    """A Lambda function URL event (payload 2.0: rawPath without a stage, routeKey "$default"),
    from the canonical fixture."""
    event = load_event("function_url.json")
    event["rawPath"] = path
    event["requestContext"]["http"].update(method=method, path=path)
    event["body"], event["isBase64Encoded"] = _body(body, base64_encoded)
    return event


class LambdaContext:
    """The one attribute of Lambda's context object that the handler reads. The request id is a
    UUID, as Lambda's are: for anything else the handler makes a fresh one, which Lambda never needs."""

    def __init__(self, request_id="c0ffee00-0000-4000-8000-000000000001"):
        self.aws_request_id = request_id


@contextlib.contextmanager
def fresh_handler(monkeypatch):
    """The handler module with a recommender built from the environment, as at a Lambda cold start;
    its fastText processes are stopped after."""
    import handler
    from recommender import Recommender

    recommender = Recommender.from_environment()
    monkeypatch.setattr(handler, "recommender", recommender)
    try:
        yield handler
    finally:
        recommender.close()


SLOW_FASTTEXT = """#!{python}
# The real fastText binary, {load} s slower to load its model and {exchange} s slower to answer each
# batch of lines that arrives at once (one exchange).
import os, subprocess, sys, threading, time
time.sleep({load})
child = subprocess.Popen([{binary!r}] + sys.argv[1:], stdin=subprocess.PIPE, stdout=sys.stdout, bufsize=0)
while chunk := os.read(0, 1 << 16):
    time.sleep({exchange})
    child.stdin.write(chunk)
child.stdin.close()
sys.exit(child.wait())
"""


def slow_fasttext(directory: Path, binary: Path, load: float = 0.0, exchange: float = 0.0) -> Path:
    """A wrapper around the real binary that loads `load` seconds late and answers each exchange
    `exchange` seconds late."""
    wrapper = directory / "slow-fasttext"
    wrapper.write_text(SLOW_FASTTEXT.format(python=sys.executable, load=load, exchange=exchange, binary=str(binary)))
    wrapper.chmod(0o755)
    return wrapper


def recommender_for(model: Path, binary: Path, timeout: float = 10.0):
    """A Recommender serving `model` alone as the default model, nothing started yet."""
    from model_source import BundledModel
    from recommender import Recommender
    from served_models import ServedModel, ServedModels

    return Recommender(ServedModels({"default": ServedModel("default", BundledModel(str(model)), str(binary),
                                                            timeout, timeout, retry_seconds=0)}))


def predict_prob(binary: Path, model: Path, texts: list[str], k: int) -> list[list[dict]]:
    """What a one-shot `fasttext predict-prob MODEL - k` answers, as the API spells it."""
    from fasttext_process import parse_answer
    from text_cleaning import clean_text

    out = subprocess.run(
        [str(binary), "predict-prob", str(model), "-", str(k)],
        input="".join(clean_text(text) + "\n" for text in texts), capture_output=True, text=True, check=True,
    ).stdout
    return [
        [{"hashtag": "#" + label, "probability": p} for label, p in parse_answer(line) if p > 0]
        for line in out.splitlines()
    ]


def patch_processes(monkeypatch, served, **attributes) -> None:
    """Set `attributes` (model_path, binary_path, timeout) on every fastText process of a served
    model, and stop those running, as a changed deployment would find them."""
    for process in served.processes:
        process.close()
        for name, value in attributes.items():
            monkeypatch.setattr(process, name, str(value) if name.endswith("_path") else value)


def call(app, event) -> tuple[int, dict]:
    """The handler's status and decoded body for an event, called as Lambda calls it."""
    response = app.tagRecommendations(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


# --- a copy of the project for the Serverless CLI ---------------------------------------------------

# Things a checkout or a build has that must never be shipped, beside the repository's own
# top-level entries (mirrored as decoys as well).
DECOYS = [
    "README.md",
    "Makefile",
    "requirements-dev.txt",
    "fasttext-arm64",
    "model.metrics.json",
    "model.report.md",
    "tests/test_handler.py",
    "data/train.tsv.gz",
    "training/train.py",
    "bench/run.py",
    ".venv/bin/python",
    "__pycache__/handler.cpython-311.pyc",
    "build/fasttext-0.9.3/src/main.cc",
    "models/README.txt",
    "models/forum.bin.partial",
]
# The named model the test service has beside its default model (models/NAME.bin).
NAMED_MODELS = ("forum",)


def runtime_modules(root: Path = ROOT) -> set[str]:
    """handler.py and the top-level modules it imports, directly or not: what Lambda must have."""
    local = {p.stem for p in root.glob("*.py")}
    seen, todo = set(), ["handler"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(ast.parse((root / f"{name}.py").read_text())):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported = [node.module]
            else:
                continue
            todo.extend(n.split(".")[0] for n in imported if n.split(".")[0] in local)
    return {f"{name}.py" for name in seen}


def static_files() -> set[str]:
    """The files handler.py serves as they are (the page and the contract)."""
    from handler import STATIC_FILES  # here, not at the top: bench/ picks its own copy of the runtime

    return {name for name, _ in STATIC_FILES.values()}


def make_service(dest: Path, model: Path, named: dict[str, Path] | None = None) -> Path:
    """A copy of the project in `dest` that the CLI can package, invoke and serve, with `named`
    models as models/NAME.bin."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ["serverless.yml", "serverless.params.js", "package.json", "requirements.txt", "package-files.txt",
                 "fasttext", *static_files()]:
        shutil.copy2(ROOT / name, dest / name)  # copy2 keeps fasttext's executable bit
    for module in ROOT.glob("*.py"):  # all of them: the ones handler.py does not import are decoys
        shutil.copy2(module, dest / module.name)
    shutil.copyfile(model, dest / "model.bin")
    for name, path in (named or {}).items():
        (dest / "models").mkdir(exist_ok=True)
        shutil.copyfile(path, dest / "models" / f"{name}.bin")
    (dest / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    mirrored = [
        p.name + ("/decoy.txt" if p.is_dir() else "")
        for p in ROOT.iterdir()
        if p.name not in {".serverless", "node_modules"}
    ]
    for rel in DECOYS + mirrored:
        path = dest / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("decoy: must not be packaged\n")
    return dest


# Environment variables serverless.yml reads (a model in S3): a shell exporting them must not
# change what these tests package.
DEPLOY_ENV = ("MODEL_S3_URI", "MODEL_SHA256")


def cli_env() -> dict:
    """The environment for the CLI: no real AWS identity, no reaching out for one.

    Dummy static keys end osls's credential lookup (which `invoke local` always does) before
    the instance-metadata endpoint, and AWS_EC2_METADATA_DISABLED rules that endpoint out anyway.
    The Python that the CLI spawns as `python3` is the one running these tests.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in {"VIRTUAL_ENV", *DEPLOY_ENV}
    }
    env.update(
        AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE",
        AWS_SECRET_ACCESS_KEY="not-a-real-secret",
        AWS_EC2_METADATA_DISABLED="true",
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    )
    return env


def run_cli(service: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`serverless *args` in `service`, with cli_env() plus `env`; it must succeed."""
    result = subprocess.run(
        [str(SERVERLESS), *args],
        cwd=service,
        env={**cli_env(), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert result.returncode == 0, f"serverless {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def package(service: Path) -> zipfile.ZipFile:
    run_cli(service, "package")
    return zipfile.ZipFile(service / ".serverless" / ZIP_NAME)


ROOT_RESOURCE = {"Fn::GetAtt": ["ApiGatewayRestApi", "RootResourceId"]}


def api_methods(resources: dict) -> dict[tuple[str, str], dict]:
    """(HTTP method, path such as /health) -> the properties of the template's API Gateway method."""
    paths = {
        logical_id: "/" + r["Properties"]["PathPart"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::ApiGateway::Resource"
    }
    return {
        (props["HttpMethod"], "/" if props["ResourceId"] == ROOT_RESOURCE else paths[props["ResourceId"]["Ref"]]): props
        for props in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method")
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_processes_in_group(pgid: int) -> list[str]:
    """Command lines of the group's processes that are still running (zombies are dead)."""
    live = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in "ZX":
            live.append(cmdline.strip())
    return live


def fasttext_children(model: Path) -> dict[int, str]:
    """pid -> the k argument of each running `fasttext predict-prob MODEL - k` child of this process."""
    children = {}
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (proc / "cmdline").read_bytes().split(b"\0")[:-1]
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and argv[1:4] == [b"predict-prob", str(model).encode(), b"-"]:
            children[int(proc.name)] = argv[4].decode()
    return children


class OfflineServer:
    """`serverless offline start` on free loopback ports, in a process group of its own."""

    def __init__(self, service: Path, log_path: Path, command=None, args: tuple[str, ...] = ()):
        """`command(port)`, when given, is what starts the server on `port` (`make serve`, say);
        `args` are more arguments for `serverless offline start` otherwise; with --param=apiType=http
        the routes have no stage prefix."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}" + ("" if "--param=apiType=http" in args else "/dev")
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            command(self.port) if command else [
                str(SERVERLESS), "offline", "start", f"--param=runtime={LOCAL_RUNTIME}",
                "--host", "127.0.0.1", "--httpPort", str(self.port), "--lambdaPort", str(free_port()), *args,
            ],
            cwd=service,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.process.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"serverless offline exited:\n{self.log()}"
            try:
                if request(self.url + "/openapi.json")[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, f"serverless offline did not answer in {timeout} s:\n{self.log()}"
            time.sleep(0.2)

    def stop(self) -> list[str]:
        """SIGTERM the whole group (node, the Python worker and its fastText child) and wait for it.

        Returns what was still running after that; those stragglers are then killed.
        """
        if self.process.poll() is None:
            os.killpg(self.pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        deadline = time.monotonic() + 10
        while (leftover := live_processes_in_group(self.pgid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if leftover:
            os.killpg(self.pgid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self._log.close()
        return leftover


@contextlib.contextmanager
def offline_server(service: Path, log_path: Path, command=None, args: tuple[str, ...] = ()):
    server = OfflineServer(service, log_path, command, args)
    try:
        server.wait_until_ready()
        yield server
    finally:
        server.leftover = server.stop()


def request(url: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
    """(status, headers, body) over real HTTP; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        try:
            return e.code, e.headers, e.read()
        finally:
            e.close()
