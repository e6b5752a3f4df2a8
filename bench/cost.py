"""Cost and speed per Lambda memory size: part of `make bench`, or alone:

    .venv/bin/python bench/cost.py            # measures, prints the markdown section
    .venv/bin/python bench/cost.py --quick    # smaller counts

The method (a CPU-quota cgroup per memory size, the prices): bench/README.md.
"""

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import benchlib

# AWS public list prices, us-east-1, in US dollars, first pricing tier, no free tier; as published
# on the AWS Lambda pricing page and the Amazon API Gateway pricing page (aws.amazon.com), recorded
# 2026-11-27. This build could not re-read those pages (no internet access here): check them
# before relying on the totals.
LAMBDA_PER_REQUEST = 0.20 / 1e6  # x86_64 and arm64 alike
LAMBDA_PER_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}  # first 6 / 7.5 billion GB-s a month
# A Lambda function URL (apiType=url) has no charge of its own: Lambda's request and compute alone.
API_GATEWAY_PER_REQUEST = {"REST": 3.50 / 1e6, "HTTP": 1.00 / 1e6, "URL": 0.0}  # first 333 / 300 million a month

FULL_VCPU_MB = 1769  # AWS: "at 1,769 MB, a function has the equivalent of one vCPU"
MEMORY_SIZES = [128, 256, 512, 768, 1024, 1536, 1769]
BATCH = 100
TEXTS = 2000  # validation texts the warm requests cycle through


def cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / FULL_VCPU_MB)


def gb(memory_mb: int) -> float:
    return memory_mb / 1024  # Lambda bills memory in GB of 1024 MB


def cost_per_request(memory_mb: int, billed_ms: float, architecture: str = "x86_64") -> float:
    """Lambda's part: the request plus its compute, billed_ms being the mean billed duration."""
    return LAMBDA_PER_REQUEST + gb(memory_mb) * billed_ms / 1000 * LAMBDA_PER_GB_SECOND[architecture]


def measure(args, tmp: Path) -> dict:
    """Per memory size: warm handler (1 text), batches of 100, cold start, under the CPU quota of
    that size; then the peak memory."""
    cpu = str(args.cpu)
    requests = 400 if args.quick else 2000
    reps = 3 if args.quick else 5
    sizes, method = {}, "cgroup"
    for memory_mb in MEMORY_SIZES:
        share = cpu_share(memory_mb)
        try:
            cgroup = benchlib.make_cpu_quota_cgroup(f"fasttext-bench-{os.getpid()}-{memory_mb}", share)
        except OSError as e:
            benchlib.log(f"cost: no CPU quota cgroup on this machine ({e}); scaling one-CPU times by {FULL_VCPU_MB}/memory")
            method = f"scaled (no cgroup: {e})"
            break
        benchlib.log(f"cost: {memory_mb} MB = {share:.3f} of a vCPU (cgroup {cgroup})")
        try:
            sizes[memory_mb] = measure_one(args, tmp, cpu, requests, reps, cgroup=str(cgroup))
        finally:
            benchlib.remove_cgroup(cgroup)
    if method != "cgroup":
        one_cpu = measure_one(args, tmp, cpu, requests, reps)
        sizes = {m: scaled(one_cpu, FULL_VCPU_MB / min(m, FULL_VCPU_MB)) for m in MEMORY_SIZES}
    benchlib.log("cost: peak memory of the handler and its fastText child")
    memory = benchlib.run_worker("memory", cpu, args, tmp)
    return {"method": method, "period_us": benchlib.CFS_PERIOD_US, "requests": requests, "reps": reps,
            "sizes": {str(m): r for m, r in sizes.items()}, "memory": memory}


def measure_one(args, tmp: Path, cpu: str, requests: int, reps: int, cgroup: str | None = None) -> dict:
    warm = benchlib.run_worker("handler", cpu, args, tmp, requests=requests, warmup=100, texts=TEXTS, batch_sizes=[BATCH],
                      batch_seconds=1.0 if args.quick else 3.0, batch_min_requests=5 if args.quick else 15,
                      cgroup=cgroup)
    cold = benchlib.run_worker("cold", cpu, args, tmp, reps=reps, cgroup=cgroup)
    durations = warm.pop("durations")
    batch = warm["batches"][str(BATCH)]
    return {
        "warm": benchlib.summarize(durations),
        "warm_billed_ms": sum(math.ceil(d * 1000) for d in durations) / len(durations),
        "warm_errors": warm["errors"],
        "batch": batch["latency"],
        "batch_billed_ms": batch["billed_ms_mean"],
        "batch_errors": batch["errors"],
        "cold_ms": cold["nopyc"]["total"]["p50_ms"],
        "cold_p99_ms": cold["nopyc"]["total"]["p99_ms"],
        "cold_errors": cold["nopyc"]["errors"],
        "load_after": warm["load_after"],
    }


def scaled(one_cpu: dict, factor: float) -> dict:
    """One-CPU figures stretched by `factor`: the CPU-bound assumption, for machines without cgroups."""
    out = json.loads(json.dumps(one_cpu))
    for key in ("warm", "batch"):
        out[key] = {k: (v * factor if k.endswith("_ms") else v) for k, v in out[key].items()}
    out["warm_billed_ms"] = math.ceil(one_cpu["warm"]["mean_ms"] * factor)
    out["batch_billed_ms"] = math.ceil(one_cpu["batch"]["mean_ms"] * factor)
    out["cold_ms"] *= factor
    out["cold_p99_ms"] *= factor
    return out


def dollars(value: float) -> str:
    return f"${value:.2f}" if value >= 0.1 else f"${value:.4f}"


def rows(result: dict) -> list[dict]:
    """Everything the tables show, per memory size."""
    out = []
    for memory_mb in MEMORY_SIZES:
        r = result["sizes"][str(memory_mb)]
        per_request = cost_per_request(memory_mb, r["warm_billed_ms"])
        per_batch = cost_per_request(memory_mb, r["batch_billed_ms"])
        out.append({
            "memory_mb": memory_mb,
            "share": cpu_share(memory_mb),
            **r,
            "million_requests": {
                "lambda": per_request * 1e6,
                "lambda_arm64": cost_per_request(memory_mb, r["warm_billed_ms"], "arm64") * 1e6,
                **{api: (per_request + price) * 1e6 for api, price in API_GATEWAY_PER_REQUEST.items()},
            },
            "million_texts": {
                "lambda": per_batch * 1e6 / BATCH,
                **{api: (per_batch + price) * 1e6 / BATCH for api, price in API_GATEWAY_PER_REQUEST.items()},
            },
            "cold_start_compute": gb(memory_mb) * r["cold_ms"] / 1000 * LAMBDA_PER_GB_SECOND["x86_64"],
        })
    return out


def report(result: dict, default_memory_mb: int | None = None) -> str:
    table = rows(result)
    mem = result["memory"]
    out = []
    w = out.append
    w("## Cost and speed per memory size")
    w("")
    if result["method"] == "cgroup":
        w(f"Each row ran in a CPU-quota cgroup of the memory size's share of one vCPU (one full vCPU at "
          f"{FULL_VCPU_MB:,} MB; {result['period_us'] // 1000} ms period), pinned to one CPU: {result['requests']} "
          f"warm requests of 1 text, batches of {BATCH} texts, {result['reps']} cold starts without .pyc "
          "(the method: [README.md](README.md)).")
    else:
        w(f"No CPU-quota cgroup could be made here ({result['method']}): the one-CPU figures are scaled by "
          f"{FULL_VCPU_MB:,} / memory, which assumes all the work is CPU-bound.")
    w("")
    w("| memory | CPU share | warm, 1 text: median / p99 / mean | billed (mean) | batch of 100: median | billed (mean) | cold start: first answer, median |")
    w("|---|---|---|---|---|---|---|")
    for r in table:
        mark = " (default)" if r["memory_mb"] == default_memory_mb else ""
        w(f"| {r['memory_mb']:,} MB{mark} | {r['share']:.3f} | {benchlib.ms(r['warm']['p50_ms'])} / {benchlib.ms(r['warm']['p99_ms'])} / "
          f"{benchlib.ms(r['warm']['mean_ms'])} | {r['warm_billed_ms']:.2f} ms | {benchlib.ms(r['batch']['p50_ms'])} | "
          f"{r['batch_billed_ms']:.1f} ms | {benchlib.ms(r['cold_ms'])} |")
    w("")
    w("US dollars, x86_64 unless marked; Lambda = requests + compute (memory in GB × billed duration, each "
      "invocation rounded up to the millisecond); REST / HTTP = that + API Gateway's price per request. "
      "No free tier, first pricing tier, us-east-1.")
    w("")
    w(f"| memory | per 1M requests (1 text): Lambda | Lambda arm64 | with REST API | with HTTP API | with function URL | per 1M texts in batches of {BATCH}: Lambda | with REST API | with HTTP API | with function URL | one cold start, compute |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        q, t = r["million_requests"], r["million_texts"]
        w(f"| {r['memory_mb']:,} MB | {dollars(q['lambda'])} | {dollars(q['lambda_arm64'])} | {dollars(q['REST'])} | "
          f"{dollars(q['HTTP'])} | {dollars(q['URL'])} | {dollars(t['lambda'])} | {dollars(t['REST'])} | "
          f"{dollars(t['HTTP'])} | {dollars(t['URL'])} | ${r['cold_start_compute'] * 1e6:.2f} per million |")
    w("")
    w(f"Prices (bench/cost.py): Lambda ${LAMBDA_PER_REQUEST * 1e6:.2f} per million requests, "
      f"${LAMBDA_PER_GB_SECOND['x86_64']} per GB-s x86_64, ${LAMBDA_PER_GB_SECOND['arm64']} per GB-s arm64; API Gateway "
      f"REST ${API_GATEWAY_PER_REQUEST['REST'] * 1e6:.2f} and HTTP API ${API_GATEWAY_PER_REQUEST['HTTP'] * 1e6:.2f} per "
      "million requests, a Lambda function URL nothing beyond Lambda's own charges; AWS's public list prices for us-east-1 as recorded on 2026-11-27, not re-read by this "
      "build. arm64 is priced at the x86_64 durations measured here (Graviton speed is not measured). "
      "Since August 2025 Lambda bills the initialisation phase too: a cold start's compute is in the last column.")
    w("")
    idle, batch = mem["idle"], mem["batch"]
    w(f"Peak memory (VmHWM), a fresh handler process and its fastText child, package without .pyc: after one "
      f"request {(idle['python_kib'] + idle['fasttext_kib']) / 1024:.1f} MiB (Python {idle['python_kib'] / 1024:.1f} + "
      f"fastText {idle['fasttext_kib'] / 1024:.1f}); after a batch of {mem['batch_texts']} long texts "
      f"({mem['batch_mean_chars']:,.0f} characters on average, {mem['request_bytes'] / 1024:.0f} KiB request) with k=50 "
      f"{(batch['python_kib'] + batch['fasttext_kib']) / 1024:.1f} MiB (Python {batch['python_kib'] / 1024:.1f} + "
      f"fastText {batch['fasttext_kib'] / 1024:.1f}). Lambda's own runtime client adds a few MiB to the Python "
      "process. Every size in the table has room for it; a bigger model needs more (model.bin is held in memory).")
    w("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=benchlib.DEFAULT_MODEL)
    parser.add_argument("--runtime", type=Path, default=benchlib.ROOT)
    parser.add_argument("--cpu", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="also write the raw results as JSON to this path")
    args = parser.parse_args()
    args.model, args.runtime = args.model.resolve(), args.runtime.resolve()
    args.warmup, args.requests, args.batch_seconds, args.cold_reps = 100, 0, 1.0, 3
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        result = measure(args, Path(tmp))
    print(report(result))
    benchlib.log(f"cost: done in {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
