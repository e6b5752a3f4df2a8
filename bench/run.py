"""The benchmark, every measurement side by side in one run; what each is and how: bench/README.md.

    .venv/bin/python bench/run.py            # the full run (`make bench`), writes bench/RESULTS.md
    .venv/bin/python bench/run.py --quick    # smaller counts, for trying things out
"""

import argparse
import datetime
import json
import os
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path

import benchlib
import cost
import load
from benchlib import log, run_worker

TARGET_SPEEDUP_VS_SEED = 100
TARGET_RATIO_TO_FLOOR = 2.5  # issue 11 (was 3 in issue 5)
TARGET_COLD_OVERHEAD_MS = 300


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=benchlib.DEFAULT_MODEL, help="default: ./model.bin")
    parser.add_argument("--runtime", type=Path, default=benchlib.ROOT,
                        help="directory with the runtime modules to measure, e.g. a patched copy (default: the repository)")
    parser.add_argument("--cpu", type=int, default=0, help="the CPU the headline figures are pinned to (default 0)")
    parser.add_argument("--requests", type=int, default=10000, help="warm handler and floor requests (default 10000)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests first (default 300)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="handler, floor, pipe and seed take turns this many times, requests split between rounds (default 4)")
    parser.add_argument("--seed-requests", type=int, default=100, help="process-per-request iterations (default 100)")
    parser.add_argument("--cold-reps", type=int, default=15, help="cold start repetitions (default 15)")
    parser.add_argument("--batch-seconds", type=float, default=2.0, help="time per batch size (default 2 s)")
    parser.add_argument("--load-clients", type=int, default=16)
    parser.add_argument("--load-seconds", type=float, default=30)
    parser.add_argument("--load-warmup-seconds", type=float, default=5)
    parser.add_argument("--alone-texts", type=int, default=200, help="distinct texts in the load test (default 200)")
    parser.add_argument("--skip-load", action="store_true", help="leave out the serverless offline load test")
    parser.add_argument("--skip-unpinned", action="store_true", help="only the pinned (headline) figures")
    parser.add_argument("--skip-cost", action="store_true", help="leave out the cost per memory size (bench/cost.py)")
    parser.add_argument("--quick", action="store_true", help="small counts (a ~1 minute run); not for RESULTS.md")
    parser.add_argument("--results", default=str(benchlib.HERE / "RESULTS.md"),
                        help="where to write the markdown report ('-' for nowhere; default bench/RESULTS.md)")
    parser.add_argument("--json", help="also write the raw results as JSON to this path")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup, args.seed_requests, args.cold_reps, args.rounds = 1000, 100, 20, 5, 2
        args.batch_seconds, args.load_seconds, args.load_warmup_seconds, args.alone_texts = 0.5, 5, 2, 50
    args.model = args.model.resolve()
    args.runtime = args.runtime.resolve()
    if not args.model.is_file():
        sys.exit(f"model {args.model} does not exist: run `make model.bin`, or pass --model PATH")
    if not benchlib.FASTTEXT.is_file():
        sys.exit(f"fastText binary {benchlib.FASTTEXT} is missing: run `make fasttext`")
    return args


def fasttext_version(runtime: Path) -> str:
    """FASTTEXT_VERSION as fasttext_process.py states it (read, not imported: no runtime code here)."""
    match = re.search(r'^FASTTEXT_VERSION = "(.*)"', (runtime / "fasttext_process.py").read_text(), re.M)
    return match.group(1) if match else "?"


def combine(parts: list[dict]) -> dict:
    """One result from the rounds of one kind: durations pooled, errors summed, the rest from round 1."""
    combined = dict(parts[0])
    durations = [d for part in parts for d in part.pop("durations")]
    combined.pop("durations", None)
    combined["latency"] = benchlib.summarize(durations)
    combined["errors"] = sum(part["errors"] for part in parts)
    combined["rounds"] = len(parts)
    combined["load_after"] = parts[-1]["load_after"]
    return combined


def measure(args: argparse.Namespace) -> dict:
    """Warm handler, floor, bare pipe and seed in alternating rounds (so that all share whatever else the
    machine is doing), then the cold start; pinned first, then unpinned; then the load test."""
    modes = [("pinned", str(args.cpu))] + ([] if args.skip_unpinned else [("unpinned", "all")])
    results = {"modes": {}}
    rounds = args.rounds
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for mode, cpus in modes:
            parts = {"handler": [], "floor": [], "pipe": [], "seed": []}
            for r in range(rounds):
                log(f"{mode} (cpus {cpus}), round {r + 1}/{rounds}: warm handler"
                    + (" + batches" if r == 0 else "") + ", floor, bare pipe, seed design")
                parts["handler"].append(run_worker(
                    "handler", cpus, args, Path(tmp), requests=share(args.requests, rounds, r),
                    batch_sizes=[1, 10, 100] if r == 0 else []))
                parts["floor"].append(run_worker("floor", cpus, args, Path(tmp), requests=share(args.requests, rounds, r)))
                parts["pipe"].append(run_worker("pipe", cpus, args, Path(tmp), requests=share(args.requests, rounds, r)))
                parts["seed"].append(run_worker(
                    "seed", cpus, args, Path(tmp), requests=share(args.seed_requests, rounds, r), warmup=3))
            r = results["modes"][mode] = {kind: combine(p) for kind, p in parts.items()}
            log(f"{mode}: cold start, {args.cold_reps} repetitions")
            r["cold"] = run_worker("cold", cpus, args, Path(tmp))
        if not args.skip_cost:
            load_before = benchlib.load_average()
            results["cost"] = cost.measure(args, Path(tmp))
            results["cost"].update(load_before=load_before, load_after=benchlib.load_average())
    if not args.skip_load:
        log(f"load: serverless offline, {args.load_clients} clients, {args.load_seconds:g} s")
        results["load"] = load.run_load(
            args.model, args.runtime, args.load_clients, args.load_seconds, args.load_warmup_seconds,
            args.alone_texts, log=lambda m: log(m.strip()),
        )
    return results


def share(total: int, rounds: int, r: int) -> int:
    return total // rounds + (1 if r < total % rounds else 0)


def agreement(handler: dict, floor: dict) -> tuple[int, int, int]:
    """Texts whose top-5 hashtags agree as sets, and in order (labels of equal probability,
    common with one-vs-all loss, may come in either order), out of the texts compared."""
    common = set(handler["answers"]) & set(floor["answers"])
    same_set = sum(set(handler["answers"][k]) == set(floor["answers"][k]) for k in common)
    same_order = sum(handler["answers"][k] == floor["answers"][k] for k in common)
    return same_set, same_order, len(common)


def lat(summary: dict) -> str:
    return f"{benchlib.ms(summary['p50_ms'])} / {benchlib.ms(summary['p99_ms'])}"


def targets(results: dict, model: dict) -> list[tuple[str, str, str, bool | None]]:
    """(target, measured, unpinned figure, PASS?) for each target, on the pinned (headline) figures."""
    rows = []
    modes = results["modes"]

    def each(fn):
        return {mode: fn(r) for mode, r in modes.items()}

    speedup = each(lambda r: r["seed"]["latency"]["p50_ms"] / r["handler"]["latency"]["p50_ms"])
    rows.append((f"(a) warm handler median ≥ {TARGET_SPEEDUP_VS_SEED}× faster than the seed's process per request",
                 f"{speedup['pinned']:.0f}×", f"{speedup['unpinned']:.0f}×" if "unpinned" in speedup else "-",
                 speedup["pinned"] >= TARGET_SPEEDUP_VS_SEED))
    ratio = each(lambda r: r["handler"]["latency"]["p50_ms"] / r["floor"]["latency"]["p50_ms"])
    rows.append((f"(b) warm handler median within {TARGET_RATIO_TO_FLOOR}× of the in-process floor",
                 f"{ratio['pinned']:.2f}×", f"{ratio['unpinned']:.2f}×" if "unpinned" in ratio else "-",
                 ratio["pinned"] <= TARGET_RATIO_TO_FLOOR))
    cold = each(lambda r: r["cold"]["nopyc"]["overhead_ms"])
    ok = cold["pinned"] < TARGET_COLD_OVERHEAD_MS
    rows.append((f"(c) cold start overhead < {TARGET_COLD_OVERHEAD_MS} ms (no .pyc, as the zip ships)"
                 + ("" if model["is_default"] else " — NOT the default model"),
                 benchlib.ms(cold["pinned"]), benchlib.ms(cold["unpinned"]) if "unpinned" in cold else "-", ok))
    if "load" in results:
        ld = results["load"]
        ok = ld["errors"] == 0 and ld["mismatches"] == 0 and ld["measured"]["requests"] > 0
        rows.append(("(d) under load: zero errors, zero mismatched answers",
                     f"{ld['errors']} errors, {ld['mismatches']} mismatches in "
                     f"{ld['warmup']['requests'] + ld['measured']['requests']} requests", "(unpinned only)", ok))
    else:
        rows.append(("(d) under load: zero errors, zero mismatched answers", "not run (--skip-load)", "-", None))
    return rows


def report(results: dict, args: argparse.Namespace, meta: dict) -> str:
    """bench/RESULTS.md: one function per section."""
    sections = [header_section(results, args, meta), latency_section(results, args, meta)]
    if "load" in results:
        sections.append(load_section(results["load"], meta))
    if "cost" in results:
        sections.append(cost.report(results["cost"], default_memory_size()))
    sections.append(targets_section(results, meta))
    sections.append(f"The method: [README.md](README.md). Re-run: `make bench` (or `{meta['command']}`); "
                    "`--quick` for a short run, `--help` for the options.\n")
    return "\n".join(sections)


def header_section(results: dict, args: argparse.Namespace, meta: dict) -> str:
    m, md = meta["machine"], meta["model"]
    runtime = ", runtime from " + str(args.runtime) if args.runtime != benchlib.ROOT else ""
    before_load = f"; before the load test: {results['load']['load_before']}" if "load" in results else ""
    if "cost" in results:
        before_load = (f"; cost per memory size: {results['cost']['load_before']} before, "
                       f"{results['cost']['load_after']} after") + before_load
    return "\n".join([
        "# Benchmark results",
        "",
        f"- date: {meta['date']}",
        f"- command: `{meta['command']}` (git {meta['git']}{runtime})",
        f"- machine: {m['cpu_model']}, {m['cores_online']} cores online, kernel {m['kernel']}",
        f"- Python {m['python']} ({m['python_executable']})",
        f"- model: {md['path']}{' (the default model.bin)' if md['is_default'] else ' (NOT the default model.bin)'}, "
        f"{md['bytes'] / 2**20:.2f} MiB, sha256 {md['sha256'][:12]}…, {md['labels']} labels, {md['words']} words, "
        f"dim {md['dim']}",
        f"- texts: {meta['texts']} descriptions from data/valid.tsv.gz, fixed shuffled order",
        f"- load average (1/5/15 min) at start: {meta['load_start']}{before_load}; at end: {meta['load_end']} "
        "(the load test itself keeps both CPUs busy)",
        "",
    ])


def latency_section(results: dict, args: argparse.Namespace, meta: dict) -> str:
    modes = results["modes"]
    names = list(modes)
    head = {"pinned": f"pinned to CPU {args.cpu} (headline)",
            "unpinned": f"unpinned ({meta['machine']['cores_usable']} CPUs)"}
    out = ["## Latency and throughput", "", "| measurement | " + " | ".join(head[n] for n in names) + " |",
           "|---|" + "---|" * len(names)]

    def row(label, fn):
        out.append(f"| {label} | " + " | ".join(fn(modes[n]) for n in names) + " |")

    ms = benchlib.ms
    row(f"warm handler, 1 text, median / p99 (n={args.requests})", lambda r: lat(r["handler"]["latency"]))
    row(f"floor: fasttext-predict in process + cleaning, median / p99 (n={args.requests})",
        lambda r: lat(r["floor"]["latency"]))
    row(f"fastText child alone: bare pipe round trip, k=5, no parsing, median / p99 (n={args.requests})",
        lambda r: lat(r["pipe"]["latency"]))
    row("&nbsp;&nbsp;warm handler − bare pipe (Python's share), medians",
        lambda r: ms(r["handler"]["latency"]["p50_ms"] - r["pipe"]["latency"]["p50_ms"]))
    row(f"seed design: new fastText process per request, median / p99 (n={args.seed_requests})",
        lambda r: lat(r["seed"]["latency"]))
    row("warm handler: errors / fastText processes started",
        lambda r: f"{r['handler']['errors']} / {r['handler']['fasttext_starts']} per round")
    row("cold start: `python -c pass`, median", lambda r: ms(r["cold"]["bare_ms"]))
    for variant, label in (("nopyc", "no .pyc, as the zip ships"), ("cached", ".pyc cached")):
        row(f"cold start ({label}): first answer, median / p99 (n={args.cold_reps})",
            lambda r, v=variant: lat(r["cold"][v]["total"]))
        row(f"&nbsp;&nbsp;overhead = first answer − bare start ({label})",
            lambda r, v=variant: ms(r["cold"][v]["overhead_ms"]))
        row(f"&nbsp;&nbsp;of which: interpreter / import handler / first request ({label})",
            lambda r, v=variant: " / ".join(ms(r["cold"][v][k]) for k in ("interpreter_ms", "import_ms", "first_request_ms")))
    for size in ("1", "10", "100"):
        row(f"batch of {size}: requests/s (texts/s), median latency",
            lambda r, s=size: f"{r['handler']['batches'][s]['requests_per_s']:,.0f} "
                              f"({r['handler']['batches'][s]['texts_per_s']:,.0f}), "
                              f"{ms(r['handler']['batches'][s]['latency']['p50_ms'])}")
    same_set, same_order, total = agreement(modes["pinned"]["handler"], modes["pinned"]["floor"])
    out += ["", f"Sanity check: the handler (fastText {meta['fasttext_version']} CLI) and the floor (fasttext-predict) "
            f"give the same top-5 hashtags for {same_set} of {total} texts ({same_order} in the same order; labels of "
            "equal probability may come in either order).", ""]
    return "\n".join(out)


def load_section(ld: dict, meta: dict) -> str:
    ms = benchlib.ms
    out = ["## Load: serverless offline on loopback", "",
           f"{ld['clients']} concurrent keep-alive clients, unpinned: serverless offline runs one handler process per "
           f"concurrent request ({ld['handler_processes']} at the end) on this machine's "
           f"{meta['machine']['cores_usable']} CPUs, where Lambda would give each its own. {ld['alone_texts']} distinct "
           f"texts, every {ld['batch_every']}th request a batch of {ld['batch_size']}. {load_warmup_note(ld)}", "",
           "| | requests | texts | errors | mismatches | requests/s | texts/s | p50 | p90 | p99 | max |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for phase in ("warmup", "measured"):
        p, lt = ld[phase], ld[phase]["latency"]
        out.append(f"| {phase} ({p['seconds']:.0f} s) | {p['requests']:,} | {p['texts']:,} | {p['errors']} | "
                   f"{p['mismatches']} | {p['requests_per_s']:,.0f} | {p['texts_per_s']:,.0f} | {ms(lt['p50_ms'])} | "
                   f"{ms(lt['p90_ms'])} | {ms(lt['p99_ms'])} | {ms(lt['max_ms'])} |")
    out.append("")
    examples = ld["warmup"]["examples"] + ld["measured"]["examples"]
    if examples:
        out += ["First problems seen:", ""] + [f"- `{e[:300]}`" for e in examples[:5]] + [""]
    out += [f"Server: `{ld['server_command']}` ({ld['service_dir']}), ready after {ld['ready_s']:.1f} s.", ""]
    return "\n".join(out)


def targets_section(results: dict, meta: dict) -> str:
    out = ["## Targets", "", "| target | measured (pinned) | unpinned | result |", "|---|---|---|---|"]
    for label, measured, unpinned, ok in targets(results, meta["model"]):
        out.append(f"| {label} | {measured} | {unpinned} | {'PASS' if ok else ('MISS' if ok is False else 'n/a')} |")
    out.append("")
    return "\n".join(out)


def default_memory_size() -> int | None:
    """params.default.memorySize in serverless.yml (read as text: the bench does not parse YAML)."""
    match = re.search(r"^    memorySize: (\d+)", (benchlib.ROOT / "serverless.yml").read_text(), re.M)
    return int(match.group(1)) if match else None


def load_warmup_note(ld: dict) -> str:
    return (f"The first {ld['warmup']['seconds']:.0f} s (warm-up) are checked too but kept apart: it includes the "
            "cold starts of the handler processes serverless offline adds as concurrency grows.")


def print_summary(results: dict, meta: dict) -> None:
    print()
    for label, measured, unpinned, ok in targets(results, meta["model"]):
        print(f"{'PASS' if ok else ('MISS' if ok is False else 'n/a '):4s}  {label}: {measured} (unpinned: {unpinned})")


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, benchlib.ROOT)
                                                      if sys.executable.startswith(str(benchlib.ROOT)) else sys.executable,
                                                      os.path.relpath(__file__, benchlib.ROOT), *sys.argv[1:]]),
        "git": benchlib.git_commit(),
        "machine": benchlib.machine_facts(),
        "model": benchlib.model_facts(args.model),
        "texts": len(benchlib.load_texts()),
        "load_start": benchlib.load_average(),
        "fasttext_version": fasttext_version(args.runtime),
    }
    log(f"model {args.model} ({meta['model']['bytes'] / 2**20:.2f} MiB), load average {meta['load_start']}")
    results = measure(args)
    meta["load_end"] = benchlib.load_average()
    meta["wall_s"] = time.perf_counter() - started
    text = report(results, args, meta)
    print(text)
    print_summary(results, meta)
    log(f"done in {meta['wall_s']:.0f} s")
    if args.results != "-":
        Path(args.results).write_text(text)
        log(f"wrote {args.results}")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
