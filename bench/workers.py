"""One measurement per fresh process: `python bench/workers.py '{"kind": ..., ...}'`.

bench/run.py starts each of these with a JSON configuration and reads back the JSON
result it writes to cfg["out"]. The CPU affinity (cfg["cpus"]) is set first, before
anything starts a fastText child, so every child inherits it (Lambda below 1769 MB
gives a function one vCPU); so is the CPU-quota cgroup (cfg["cgroup"]) when bench/cost.py
gives one, to run as a Lambda function of a given memory size runs.

kinds: the keys of WORKERS below; what each measures and how: bench/README.md.
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from support import LambdaContext, rest_event  # benchlib has put tests/ on the path


def use_runtime(cfg: dict) -> None:
    """Import the runtime from cfg["runtime"], pointed at the model and binary under test."""
    os.environ["MODEL_PATH"] = cfg["model"]
    os.environ["FASTTEXT_BINARY"] = str(benchlib.FASTTEXT)
    os.environ.pop("MODEL_S3_URI", None)
    sys.path.insert(0, cfg["runtime"])


def handler_worker(cfg: dict) -> dict:
    use_runtime(cfg)
    import handler  # after the environment is set: it reads it at import

    texts = benchlib.load_texts(cfg["texts"])
    context = LambdaContext()
    # What the Lambda runtime does per invocation: decode the event JSON, call the handler,
    # encode its response as JSON. The caller's side (building the request) is not timed.
    events = [json.dumps(rest_event({"text": t})) for t in texts]

    def call(raw_event: str) -> tuple[float, dict]:
        t0 = time.perf_counter()
        response = handler.tagRecommendations(json.loads(raw_event), context)
        json.dumps(response)
        return time.perf_counter() - t0, response

    for i in range(cfg["warmup"]):
        call(events[i % len(events)])

    durations, answers, errors = [], {}, 0
    for i in range(cfg["requests"]):
        j = i % len(events)
        elapsed, response = call(events[j])
        durations.append(elapsed)
        if response["statusCode"] != 200:
            errors += 1
        elif j < cfg["agree_texts"] and j not in answers:
            answers[j] = [r["hashtag"][1:] for r in json.loads(response["body"])["hashtags_recommended"]]

    batches = {}
    for size in cfg["batch_sizes"]:
        bodies = []
        for start in range(0, len(texts), size):
            window = texts[start:start + size]
            if len(window) < size:
                window += texts[:size - len(window)]
            body = json.dumps({"texts": window})
            if len(body.encode("utf-8")) <= handler.MAX_BODY_BYTES:
                bodies.append(json.dumps(rest_event(body)))
        for i in range(3):
            call(bodies[i % len(bodies)])
        batch_durations, batch_errors = [], 0
        started = time.perf_counter()
        i = 0
        while i < cfg["batch_min_requests"] or time.perf_counter() - started < cfg["batch_seconds"]:
            elapsed, response = call(bodies[i % len(bodies)])
            batch_durations.append(elapsed)
            batch_errors += response["statusCode"] != 200
            i += 1
        wall = time.perf_counter() - started
        batches[str(size)] = {
            "requests": i,
            "seconds": wall,
            "requests_per_s": i / wall,
            "texts_per_s": i * size / wall,
            "errors": batch_errors,
            "latency": benchlib.summarize(batch_durations),
            "billed_ms_mean": billed_ms_mean(batch_durations),
        }

    process = handler.recommender.models.default.top
    result = {
        "durations": durations,
        "errors": errors,
        "fasttext_starts": process.starts,
        "answers": answers,
        "batches": batches,
    }
    process.close()
    return result


def billed_ms_mean(seconds: list[float]) -> float:
    """Lambda bills each invocation's duration rounded up to the next millisecond."""
    return sum(math.ceil(s * 1000) for s in seconds) / len(seconds)


def floor_worker(cfg: dict) -> dict:
    use_runtime(cfg)
    import fasttext  # fasttext-predict: the in-process binding, benchmark-only

    from text_cleaning import clean_text

    texts = benchlib.load_texts(cfg["texts"])
    model = fasttext.load_model(cfg["model"])

    def call(text: str):
        t0 = time.perf_counter()
        line = clean_text(text)
        labels = model.predict(line, k=5)[0] if line else ()
        return time.perf_counter() - t0, labels

    for i in range(cfg["warmup"]):
        call(texts[i % len(texts)])
    durations, answers = [], {}
    for i in range(cfg["requests"]):
        j = i % len(texts)
        elapsed, labels = call(texts[j])
        durations.append(elapsed)
        if j < cfg["agree_texts"] and j not in answers:
            answers[j] = [label[len("__label__"):] for label in labels]
    return {"durations": durations, "errors": 0, "answers": answers}


def seed_worker(cfg: dict) -> dict:
    """A new `fasttext predict-prob` per request, the text on its stdin, read with communicate()."""
    use_runtime(cfg)
    from contract import MAX_K
    from fasttext_process import parse_answer
    from text_cleaning import clean_text

    texts = benchlib.load_texts(cfg["texts"])
    command = [str(benchlib.FASTTEXT), "predict-prob", cfg["model"], "-", str(MAX_K)]

    def call(text: str):
        t0 = time.perf_counter()
        line = clean_text(text)
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, _ = proc.communicate((line + "\n").encode("utf-8"))
        answer = parse_answer(out.decode("utf-8").strip()) if proc.returncode == 0 else None
        return time.perf_counter() - t0, answer

    for i in range(cfg["warmup"]):
        call(texts[i % len(texts)])
    durations, errors = [], 0
    for i in range(cfg["requests"]):
        elapsed, answer = call(texts[i % len(texts)])
        durations.append(elapsed)
        errors += answer is None
    return {"durations": durations, "errors": errors}


def pipe_worker(cfg: dict) -> dict:
    """The long-lived child alone: already-cleaned lines written to a bare `fasttext predict-prob
    MODEL - 5` (the DEFAULT_K labels of the process a plain request asks), answers read with
    blocking os.read in 64 KiB chunks, nothing parsed. What the handler's design cannot go below;
    the handler's latency minus this is Python's share."""
    use_runtime(cfg)
    from contract import DEFAULT_K
    from text_cleaning import clean_text

    lines = [clean_text(t) for t in benchlib.load_texts(cfg["texts"])]
    lines = [(line + "\n").encode("utf-8") for line in lines if line]
    proc = subprocess.Popen([str(benchlib.FASTTEXT), "predict-prob", cfg["model"], "-", str(DEFAULT_K)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    stdin, stdout = proc.stdin.fileno(), proc.stdout.fileno()

    def call(line: bytes) -> float:
        t0 = time.perf_counter()
        os.write(stdin, line)
        answer = os.read(stdout, 1 << 16)
        while not answer.endswith(b"\n"):
            answer += os.read(stdout, 1 << 16)
        return time.perf_counter() - t0

    for i in range(cfg["warmup"]):
        call(lines[i % len(lines)])
    durations = [call(lines[i % len(lines)]) for i in range(cfg["requests"])]
    proc.stdin.close()
    proc.wait()
    return {"durations": durations, "errors": 0}


_COLD_CHILD = """\
import time
_t_code = time.perf_counter()
import handler
_t_imported = time.perf_counter()
_response = handler.tagRecommendations({event!r}, None)
_t_answered = time.perf_counter()
import os
os.write({fd}, ("%r %r %r %d\\n" % (_t_code, _t_imported, _t_answered, _response["statusCode"])).encode())
os.close({fd})
handler.recommender.close()
"""


def make_package(runtime: Path, directory: Path) -> Path:
    """A Lambda-like package directory: what package-files.txt ships from `runtime`, copied in."""
    directory.mkdir(parents=True)
    for source in benchlib.package_files(runtime):
        shutil.copy2(source, directory / source.name)
    return directory


def cold_worker(cfg: dict) -> dict:
    texts = benchlib.load_texts(1)
    event = rest_event({"text": texts[0]})
    base_env = dict(os.environ, MODEL_PATH=cfg["model"], FASTTEXT_BINARY=str(benchlib.FASTTEXT))
    base_env.pop("MODEL_S3_URI", None)
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    python = sys.executable

    def bare() -> float:
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t0

    def first_answer(package: Path, env: dict) -> dict:
        read_fd, write_fd = os.pipe()
        code = _COLD_CHILD.format(event=event, fd=write_fd)
        with tempfile.TemporaryFile() as stderr:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [python, "-c", code], cwd=package, env=env, pass_fds=(write_fd,),
                stdout=subprocess.DEVNULL, stderr=stderr,
            )
            os.close(write_fd)
            with os.fdopen(read_fd, "rb") as reader:
                line = reader.readline()
            t_answer = time.perf_counter()
            proc.wait(timeout=60)
            if not line:
                stderr.seek(0)
                raise RuntimeError("cold-start child gave no answer: " + stderr.read().decode(errors="replace")[-2000:])
        t_code, t_imported, t_answered, status = line.split()
        return {
            "total": t_answer - t0,
            "interpreter": float(t_code) - t0,
            "import": float(t_imported) - float(t_code),
            "first_request": float(t_answered) - float(t_imported),
            "status": int(status),
        }

    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        cached_pkg = make_package(Path(cfg["runtime"]), Path(tmp) / "cached")
        nopyc_pkg = make_package(Path(cfg["runtime"]), Path(tmp) / "nopyc")
        nopyc_env = dict(base_env, PYTHONDONTWRITEBYTECODE="1")
        variants = {"cached": (cached_pkg, base_env), "nopyc": (nopyc_pkg, nopyc_env)}
        # Untimed first round: writes the cached variant's __pycache__, fills the page cache.
        bare()
        for package, env in variants.values():
            first_answer(package, env)
        runs = {"bare": [], "cached": [], "nopyc": []}
        for _ in range(cfg["reps"]):
            runs["bare"].append(bare())
            for name, (package, env) in variants.items():
                runs[name].append(first_answer(package, env))
        if any((nopyc_pkg / "__pycache__").glob("*")):
            raise RuntimeError("the no-.pyc variant wrote bytecode; its figures would be wrong")

    def median(values):
        return benchlib.percentile(sorted(values), 50) * 1000

    result = {"reps": cfg["reps"], "bare_ms": median(runs["bare"]), "bare": benchlib.summarize(runs["bare"])}
    for name in variants:
        rows = runs[name]
        result[name] = {
            "total": benchlib.summarize([r["total"] for r in rows]),
            "interpreter_ms": median([r["interpreter"] for r in rows]),
            "import_ms": median([r["import"] for r in rows]),
            "first_request_ms": median([r["first_request"] for r in rows]),
            "overhead_ms": median([r["total"] for r in rows]) - result["bare_ms"],
            "errors": sum(r["status"] != 200 for r in rows),
        }
    return result


_MEMORY_CHILD = """\
import json, sys
import handler

def hwm_kib(pid):
    with open("/proc/%s/status" % pid) as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

out = []
for line in sys.stdin:
    response = handler.tagRecommendations(json.loads(line), None)
    out.append({"status": response["statusCode"], "python_kib": hwm_kib("self"),
                "fasttext_kib": hwm_kib(handler.recommender.models.default.top.pid)})
handler.recommender.close()
print(json.dumps(out))
"""


def memory_worker(cfg: dict) -> dict:
    """Peak memory the way Lambda's "Max Memory Used" counts it: the handler's Python and its
    fastText child, each VmHWM (peak resident set), in a fresh interpreter from a package
    directory without .pyc. Steps: one text (idle after the first request), then the longest
    validation texts, 100 in a batch with k=50 (the largest answer a request can ask for)."""
    use_runtime(cfg)
    from handler import MAX_BODY_BYTES

    texts = benchlib.load_texts()
    # The longest texts that still fit 100 to a request body.
    budget = MAX_BODY_BYTES // 100 - 16
    longest = [t for t in sorted(texts, key=len, reverse=True) if len(json.dumps(t).encode()) <= budget][:100]
    bodies = [{"text": texts[0]}, {"texts": longest, "k": 50}]
    events = "".join(json.dumps(rest_event(b)) + "\n" for b in bodies)
    env = dict(os.environ, MODEL_PATH=cfg["model"], FASTTEXT_BINARY=str(benchlib.FASTTEXT), PYTHONDONTWRITEBYTECODE="1")
    env.pop("MODEL_S3_URI", None)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        package = make_package(Path(cfg["runtime"]), Path(tmp) / "task")
        proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD], cwd=package, env=env, input=events,
                              capture_output=True, text=True, timeout=120, check=True)
    idle, batch = json.loads(proc.stdout.splitlines()[-1])
    return {
        "idle": idle,
        "batch": batch,
        "batch_texts": len(longest),
        "batch_mean_chars": sum(map(len, longest)) / len(longest),
        "request_bytes": len(json.dumps(bodies[1]).encode()),
    }


WORKERS = {"handler": handler_worker, "floor": floor_worker, "pipe": pipe_worker, "seed": seed_worker,
           "cold": cold_worker, "memory": memory_worker}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    if cfg.get("cgroup"):
        benchlib.join_cgroup(cfg["cgroup"])
    cpus = benchlib.parse_cpus(cfg.get("cpus"))
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    load_before = benchlib.load_average()
    started = time.perf_counter()
    result = WORKERS[cfg["kind"]](cfg)
    result.update(
        kind=cfg["kind"],
        cpus=sorted(os.sched_getaffinity(0)),
        load_before=load_before,
        load_after=benchlib.load_average(),
        wall_s=time.perf_counter() - started,
    )
    with open(cfg["out"], "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
