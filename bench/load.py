"""Load test: `serverless offline` on loopback, a bounded number of concurrent clients.

    .venv/bin/python bench/load.py [--model model.bin] [--clients 16] [--seconds 30]

1. starts `serverless offline start` on free loopback ports, in its own process group
   (tests/support.py's OfflineServer), and waits until it answers;
2. sends each of --alone-texts texts alone, one after another, and keeps the answers;
3. --clients threads (stdlib http.client, keep-alive) send those texts, every
   --batch-every-th request as a batch of --batch-size texts: first --warmup-seconds
   (checked, not timed: serverless offline starts a new handler process for each
   concurrent request it cannot yet serve), then --seconds measured;
4. every response must be 200 and equal, text by text, to the answer that text got alone;
5. stops the server by its process group id.
"""

import argparse
import http.client
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib
from support import OfflineServer, live_processes_in_group  # benchlib has put tests/ on the path

PATH = "/dev/recommendations"
MAX_REQUESTS = 1_000_000  # a bound on top of the time limit


def service_directory(model: Path, runtime: Path, tmp: Path) -> Path:
    """The directory to serve from: the repository itself for its own model.bin and runtime,
    else a stand-in with the runtime modules, the binary and node_modules linked in and
    model.bin pointing at `model` (serverless.yml's MODEL_PATH is ./model.bin).

    osls only recognises a serverless.yml that is a regular file, so that one is copied."""
    if model.resolve() == benchlib.DEFAULT_MODEL.resolve() and runtime.resolve() == benchlib.ROOT:
        return benchlib.ROOT
    service = tmp / "service"
    service.mkdir()
    for name in ("serverless.yml", "serverless.params.js", "package.json", "requirements.txt", "package-files.txt"):
        if (benchlib.ROOT / name).exists():
            shutil.copy2(benchlib.ROOT / name, service / name)
    for source in benchlib.package_files(runtime):
        (service / source.name).symlink_to(source.resolve())
    (service / "fasttext").symlink_to(benchlib.FASTTEXT)
    (service / "node_modules").symlink_to(benchlib.ROOT / "node_modules")
    (service / "model.bin").symlink_to(model.resolve())
    return service


def request_once(port: int, body: str, timeout: float) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", PATH, body=body.encode("utf-8"), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Client:
    """One keep-alive connection, reconnecting after any error."""

    def __init__(self, port: int, timeout: float = 30):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request("POST", PATH, body=body, headers={"Content-Type": "application/json"})
            response = self.conn.getresponse()
            return response.status, response.read()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def compute_alone(port: int, texts: list[str]) -> dict[int, dict]:
    """Each text sent alone, sequentially: the answers every later response must equal."""
    client = Client(port)
    alone = {}
    try:
        for i, text in enumerate(texts):
            status, raw = client.post(json.dumps({"text": text}).encode("utf-8"))
            if status != 200:
                raise RuntimeError(f"text {i} sent alone got status {status}: {raw[:300]!r}")
            alone[i] = json.loads(raw)
    finally:
        client.close()
    return alone


def run_phase(port, texts, alone, clients, seconds, batch_every, batch_size, seed) -> dict:
    """`clients` threads for `seconds`; every response checked against the alone answers."""
    lock = threading.Lock()
    totals = {"requests": 0, "texts": 0, "errors": 0, "mismatches": 0}
    latencies: list[float] = []
    examples: list[str] = []
    deadline = time.perf_counter() + seconds

    def note(kind: str, detail: str) -> None:
        with lock:
            totals[kind] += 1
            if len(examples) < 5:
                examples.append(f"{kind}: {detail}")

    def worker(n: int) -> None:
        rng = random.Random(seed * 1000 + n)
        client = Client(port)
        local_latencies, sent = [], 0
        try:
            while time.perf_counter() < deadline and totals["requests"] < MAX_REQUESTS:
                sent += 1
                if batch_every and sent % batch_every == 0:
                    picks = [rng.randrange(len(texts)) for _ in range(batch_size)]
                    body = {"texts": [texts[i] for i in picks]}
                    expected = {"results": [alone[i] for i in picks]}
                else:
                    picks = [rng.randrange(len(texts))]
                    body = {"text": texts[picks[0]]}
                    expected = alone[picks[0]]
                payload = json.dumps(body).encode("utf-8")
                t0 = time.perf_counter()
                try:
                    status, raw = client.post(payload)
                except Exception as e:  # every failure is counted and reported
                    note("errors", f"{type(e).__name__}: {e}")
                    continue
                local_latencies.append(time.perf_counter() - t0)
                with lock:
                    totals["requests"] += 1
                    totals["texts"] += len(picks)
                if status != 200:
                    note("errors", f"status {status}: {raw[:200]!r}")
                    continue
                try:
                    answer = json.loads(raw)
                except ValueError:
                    note("errors", f"invalid JSON: {raw[:200]!r}")
                    continue
                if answer != expected:
                    note("mismatches", f"texts {picks}: got {raw[:200]!r}")
        finally:
            client.close()
            with lock:
                latencies.extend(local_latencies)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    wall = time.perf_counter() - started
    if any(t.is_alive() for t in threads):
        totals["errors"] += 1
        examples.append("errors: a client thread did not finish in time")
    return {
        **totals,
        "seconds": wall,
        "requests_per_s": totals["requests"] / wall,
        "texts_per_s": totals["texts"] / wall,
        "latency": benchlib.summarize(latencies),
        "examples": examples,
    }


def handler_processes(server: OfflineServer) -> int:
    """How many handler processes (invoke.py) serverless offline runs in its process group."""
    return sum("invoke.py" in cmd and not cmd.startswith("/bin/sh") for cmd in live_processes_in_group(server.pgid))


def run_load(model: Path, runtime: Path = benchlib.ROOT, clients: int = 16, seconds: float = 30,
             warmup_seconds: float = 5, alone_texts: int = 200, batch_every: int = 8, batch_size: int = 10,
             log=print) -> dict:
    texts = benchlib.load_texts(alone_texts)
    result = {"clients": clients, "alone_texts": len(texts), "batch_every": batch_every, "batch_size": batch_size,
              "load_before": benchlib.load_average()}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        service = service_directory(model, runtime, Path(tmp))
        log_path = Path(tmp) / "offline.log"
        started = time.perf_counter()
        server = OfflineServer(service, log_path)
        result["server_command"] = " ".join(server.process.args)
        result["service_dir"] = "repository" if service == benchlib.ROOT else "temporary stand-in"
        try:
            log(f"  serverless offline on 127.0.0.1:{server.port} (pgid {server.pgid}), waiting for it to answer")
            server.wait_until_ready(timeout=120)
            result["ready_s"] = time.perf_counter() - started
            log(f"  sending {len(texts)} texts alone, sequentially")
            t0 = time.perf_counter()
            alone = compute_alone(server.port, texts)
            result["alone_s"] = time.perf_counter() - t0
            log(f"  warm-up: {clients} clients for {warmup_seconds:g} s")
            result["warmup"] = run_phase(server.port, texts, alone, clients, warmup_seconds, batch_every, batch_size, 1)
            log(f"  measured: {clients} clients for {seconds:g} s")
            result["measured"] = run_phase(server.port, texts, alone, clients, seconds, batch_every, batch_size, 2)
            result["handler_processes"] = handler_processes(server)
        except BaseException:
            log_tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            log("  serverless offline log (tail):\n" + log_tail)
            raise
        finally:
            server.stop()
    result["load_after"] = benchlib.load_average()
    result["errors"] = result["warmup"]["errors"] + result["measured"]["errors"]
    result["mismatches"] = result["warmup"]["mismatches"] + result["measured"]["mismatches"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=benchlib.DEFAULT_MODEL)
    parser.add_argument("--runtime", type=Path, default=benchlib.ROOT,
                        help="directory holding the runtime modules to serve (default: the repository)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup-seconds", type=float, default=5)
    parser.add_argument("--alone-texts", type=int, default=200)
    parser.add_argument("--batch-every", type=int, default=8, help="every Nth request is a batch (0: never)")
    parser.add_argument("--batch-size", type=int, default=10)
    args = parser.parse_args()
    result = run_load(args.model, args.runtime, args.clients, args.seconds, args.warmup_seconds, args.alone_texts,
                      args.batch_every, args.batch_size)
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["errors"] == 0 and result["mismatches"] == 0 else 1)


if __name__ == "__main__":
    main()
