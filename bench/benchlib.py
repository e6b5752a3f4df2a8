"""Shared pieces of the benchmark: texts, events, statistics, machine and model facts.

Only the standard library, so every benchmark process starts the same way.
"""

import copy
import gzip
import os
import platform
import random
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "model.bin"
FASTTEXT = REPO / "fasttext"
VALID = REPO / "data" / "valid.tsv.gz"
TEXT_SEED = 20261125
# The handler's own limits (recommender.MAX_TEXT_CHARS, handler.MAX_BODY_BYTES); texts over
# them would be answered with an error, not a recommendation, so they are left out.
MAX_TEXT_CHARS = 20_000
MAX_BODY_BYTES = 256 * 1024

# The shape API Gateway (REST API, payload v1) sends; copied from tests/fixtures/events/apigw_rest_v1.json.
APIGW_V1_EVENT = {
    "resource": "/recommendations",
    "path": "/recommendations",
    "httpMethod": "POST",
    "headers": {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "bench/1.0",
        "X-Forwarded-For": "198.51.100.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    },
    "multiValueHeaders": {
        "Accept": ["*/*"],
        "Content-Type": ["application/json"],
        "Host": ["abcdef1234.execute-api.us-east-1.amazonaws.com"],
        "User-Agent": ["bench/1.0"],
    },
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "abcdef1234",
        "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "abcdef1234",
        "extendedRequestId": "P8kTrGwXoAMFaHw=",
        "httpMethod": "POST",
        "identity": {"sourceIp": "198.51.100.7", "userAgent": "bench/1.0"},
        "path": "/dev/recommendations",
        "protocol": "HTTP/1.1",
        "requestId": "5b7a3a0e-8f2b-4c5e-9d1a-2f3b4c5d6e7f",
        "requestTime": "25/Nov/2026:03:04:05 +0000",
        "requestTimeEpoch": 1795575845000,
        "resourceId": "x1y2z3",
        "resourcePath": "/recommendations",
        "stage": "dev",
    },
    "body": None,
    "isBase64Encoded": False,
}


def apigw_event(body: str) -> dict:
    event = copy.deepcopy(APIGW_V1_EVENT)
    event["body"] = body
    return event


def load_texts(limit: int | None = None) -> list[str]:
    """Raw descriptions from the validation split, in a fixed shuffled order.

    Read straight from the data file (`package<TAB>source<TAB>labels<TAB>text`), not through
    training code. Texts the handler would refuse (blank, over MAX_TEXT_CHARS) are skipped.
    """
    texts = []
    with gzip.open(VALID, "rt", encoding="utf-8", newline="\n") as lines:
        for line in lines:
            text = line.rstrip("\n").split("\t")[3]
            if text.strip() and len(text) <= MAX_TEXT_CHARS:
                texts.append(text)
    random.Random(TEXT_SEED).shuffle(texts)
    return texts[:limit] if limit else texts


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(seconds: list[float]) -> dict:
    """n, mean, min, p50, p90, p99, max of durations given in seconds, reported in milliseconds."""
    values = sorted(s * 1000 for s in seconds)
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean_ms": sum(values) / len(values),
        "min_ms": values[0],
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1],
    }


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> dict:
    return {
        "cpu_model": cpu_model(),
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
    }


def model_facts(path: Path) -> dict:
    """What the runtime itself reports about a model (its header reader and checksum)."""
    sys.path.insert(0, str(REPO))
    from fasttext_process import read_model_header
    from model_source import file_sha256

    header = read_model_header(str(path))
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": file_sha256(str(path)),
        "dim": header.dim,
        "words": header.words,
        "labels": header.labels,
        "is_default": path.resolve() == DEFAULT_MODEL.resolve(),
    }


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_cpus(spec: str | None) -> set[int] | None:
    """'0' -> {0}, '0,1' -> {0, 1}, 'all' or None -> None (no pinning)."""
    if spec in (None, "", "all"):
        return None
    return {int(c) for c in spec.split(",")}


# --- a CPU quota, as Lambda gives a function a share of a vCPU ---------------------------------------

CFS_PERIOD_US = 100_000  # the kernel's default CFS period; Lambda does not document its own


def cpu_cgroup_root() -> tuple[Path, int] | None:
    """(mount point, cgroup version) of a hierarchy with the cpu controller, or None."""
    try:
        with open("/proc/mounts") as mounts:
            entries = [line.split() for line in mounts]
    except OSError:
        return None
    for _, mount, fstype, _options, *_ in entries:
        if fstype == "cgroup2" and "cpu" in (Path(mount) / "cgroup.controllers").read_text().split():
            return Path(mount), 2
    for _, mount, fstype, options, *_ in entries:
        if fstype == "cgroup" and "cpu" in options.split(","):
            return Path(mount), 1
    return None


def make_cpu_quota_cgroup(name: str, share: float) -> Path:
    """A child cgroup whose processes together get `share` of one CPU (CFS bandwidth control).
    Raises OSError where this machine does not allow it (no cpu controller, not root, ...)."""
    found = cpu_cgroup_root()
    if found is None:
        raise OSError("no cgroup hierarchy with the cpu controller is mounted")
    root, version = found
    path = root / name
    path.mkdir(exist_ok=True)
    quota = max(1000, round(share * CFS_PERIOD_US))
    if version == 2:
        (root / "cgroup.subtree_control").write_text("+cpu")
        (path / "cpu.max").write_text(f"{quota} {CFS_PERIOD_US}")
    else:
        (path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        (path / "cpu.cfs_quota_us").write_text(str(quota))
    return path


def join_cgroup(path: str | Path) -> None:
    """Move this process into the cgroup; children started afterwards are in it too."""
    (Path(path) / "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroup(path: Path) -> None:
    """Remove a cgroup made by make_cpu_quota_cgroup, once its processes have exited."""
    try:
        path.rmdir()
    except FileNotFoundError:
        pass


def ms(value: float) -> str:
    """A duration in milliseconds, with the precision a table wants: 1,234 ms, 12.3 ms, 1.23 ms, 123 µs."""
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    return f"{value * 1000:.0f} µs"
