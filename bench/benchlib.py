"""Shared pieces of the benchmark: paths, logging, the worker runner, texts, what ships, statistics,
machine and model facts, CPU-quota cgroups. The method: bench/README.md.

Only the standard library, so every benchmark process starts the same way. Events and the Lambda
context are the tests' own (tests/support.py); the runtime's limits come from the runtime, imported
only where a worker has chosen which copy of it to measure.
"""

import gzip
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench"
DEFAULT_MODEL = ROOT / "model.bin"
FASTTEXT = ROOT / "fasttext"
VALID = ROOT / "data" / "valid.tsv.gz"
TEXT_SEED = 20261125
# Appended, not prepended: a worker puts the runtime it measures (--runtime) in front of it.
sys.path.append(str(ROOT / "tests"))
sys.path.append(str(ROOT))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_worker(kind: str, cpus: str, args, tmp: Path, **extra) -> dict:
    """One measurement in a fresh process (bench/workers.py), configured by `args` and `extra`."""
    out = tmp / f"{kind}-{cpus}.json"
    cfg = {
        "kind": kind, "cpus": cpus, "model": str(args.model), "runtime": str(args.runtime), "out": str(out),
        "texts": None, "warmup": args.warmup, "requests": args.requests, "agree_texts": 200,
        "batch_sizes": [1, 10, 100], "batch_seconds": args.batch_seconds, "batch_min_requests": 20,
        "reps": args.cold_reps, **extra,
    }
    # The handler logs one JSON line per request to stdout, as on Lambda; keep them out of the way.
    with open(tmp / f"{kind}-{cpus}.log", "wb") as logs:
        proc = subprocess.run([sys.executable, str(HERE / "workers.py"), json.dumps(cfg)], stdout=logs,
                              stderr=subprocess.PIPE, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker (cpus {cpus}) failed:\n{proc.stderr.decode(errors='replace')[-3000:]}")
    return json.loads(out.read_text())


def package_files(runtime: Path) -> list[Path]:
    """The files of `runtime` that package-files.txt ships (its patterns, `!` ones excluding)."""
    shipped: dict[str, Path] = {}
    for line in (ROOT / "package-files.txt").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        if pattern.startswith("!"):
            for name in [n for n in shipped if pattern == "!**" or Path(n).match(pattern[1:])]:
                del shipped[name]
        else:
            shipped.update({str(p.relative_to(runtime)): p for p in runtime.glob(pattern) if p.is_file()})
    return sorted(shipped.values())
def load_texts(limit: int | None = None) -> list[str]:
    """Raw descriptions from the validation split, in a fixed shuffled order.

    Read straight from the data file (`package<TAB>source<TAB>labels<TAB>text`), not through
    training code. Texts the handler would refuse (blank, over MAX_TEXT_CHARS) are skipped.
    """
    from contract import MAX_TEXT_CHARS

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
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
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
