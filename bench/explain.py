"""What explanations and named models cost (issue 16), in one warm process with the real model:

    .venv/bin/python bench/explain.py [--model model.bin] [--texts 300]

1. Time of a request with and without `"explain": true`, on validation texts (one text per
   request, then batches of 10), alternating so both see the same machine load; and a text of
   20,000 characters, the longest a request may send, where explanations are cut at 200 words.
2. Memory of a fastText child per model: VmRSS and VmHWM of the `predict-prob` process after a
   request, for the model and for a small model trained here (what each named model adds).
Prints a markdown section; the numbers go to docs/DEPLOYMENT.md and bench/RESULTS.md by hand.
"""

import argparse
import gzip
import os
import subprocess
import tempfile
import time
from pathlib import Path

import benchlib
from contract import MAX_K, parse_request
from explanations import MAX_EXPLAINED_TEXTS, MAX_EXPLAINED_TOKENS, MAX_EXPLAINED_WORDS
from fasttext_process import FastTextProcess
from recommender import Recommender
from text_cleaning import clean_text


def timed(recommender: Recommender, body: dict) -> float:
    request = parse_request(body)
    started = time.perf_counter()
    recommender.recommend(request)
    return time.perf_counter() - started


def compare(recommender: Recommender, bodies: list[dict]) -> tuple[dict, dict]:
    """Each body with and without explain, alternately: (summary without, summary with)."""
    plain, explained = [], []
    for body in bodies:
        plain.append(timed(recommender, body))
        explained.append(timed(recommender, {**body, "explain": True}))
    return benchlib.summarize(plain), benchlib.summarize(explained)


def status_kib(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def child_memory(model: Path) -> dict:
    """VmRSS/VmHWM of a fastText child (k=MAX_K, as the runtime starts it) after one answer."""
    process = FastTextProcess(str(benchlib.FASTTEXT), str(model), k=MAX_K, timeout=30.0)
    try:
        process.predict(["a python library to parse json files"])
        return {**status_kib(process.pid), "bytes": model.stat().st_size}
    finally:
        process.close()


def train_small_model(work: Path) -> Path:
    """A small model (dim 10, the first 1,000 validation texts, up to 3 of their tags) trained here."""
    with gzip.open(benchlib.VALID, "rt", encoding="utf-8") as rows:
        lines = []
        for row in rows:
            fields = row.rstrip("\n").split("\t")
            labels = " ".join("__label__" + tag for tag in fields[2].split()[:3])
            lines.append(f"{labels} {clean_text(fields[3])}\n")
            if len(lines) == 1000:
                break
    (work / "small.txt").write_text("".join(lines))
    subprocess.run([str(benchlib.FASTTEXT), "supervised", "-input", str(work / "small.txt"), "-output",
                    str(work / "small"), "-dim", "10", "-epoch", "5", "-loss", "ova", "-thread", "1",
                    "-verbose", "0"], check=True)
    return work / "small.bin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=benchlib.DEFAULT_MODEL)
    parser.add_argument("--texts", type=int, default=300)
    args = parser.parse_args()
    model = args.model.resolve()
    os.environ.update(MODEL_PATH=str(model), FASTTEXT_BINARY=str(benchlib.FASTTEXT), PREDICT_TIMEOUT_SECONDS="30")
    texts = benchlib.load_texts(args.texts)
    recommender = Recommender.from_environment()
    every_label_asks = []
    every_label = recommender.models.default.all_labels
    real = every_label.answer_lines
    every_label.answer_lines = lambda lines, deadline: every_label_asks.append(len(lines)) or real(lines, deadline)
    try:
        for text in texts[:20]:  # warm up: processes started, caches filled
            timed(recommender, {"text": text, "explain": True})
        every_label_asks.clear()
        one_plain, one_explained = compare(recommender, [{"text": t} for t in texts])
        batches = [{"texts": texts[i:i + 10]} for i in range(0, len(texts) - 9, 10)]
        batch_plain, batch_explained = compare(recommender, batches)
        words = [len(set(clean_text(t).split())) for t in texts]
        long_text = " ".join(texts)[:20_000]
        long_plain, long_explained = compare(recommender, [{"text": long_text}] * 5)
        long_words = len(set(clean_text(long_text).split()))
        (long_result,) = recommender.recommend(parse_request({"text": long_text, "explain": True}))
        long_explained_words = long_words - long_result.get("words_not_explained", 0)
        # As many such texts as a body of 256 KiB holds: the request budget is what bounds it.
        budget_plain, budget_explained = compare(recommender, [{"texts": [long_text] * 12}] * 3)
    finally:
        recommender.close()
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        small = train_small_model(Path(tmp))
        memory = {"default": child_memory(model), "small": child_memory(small)}

    w = print
    w("## Explanations and named models")
    w("")
    w(f"Model {model.name}, {benchlib.cpu_model()}, load {benchlib.load_average()}; one warm process, "
      f"in-process calls of Recommender.recommend (no HTTP, no handler), each request alternately "
      "without and with explain.")
    w("")
    w("| request | texts | without explain: median / p99 / mean | with explain: median / p99 / mean |")
    w("|---|---|---|---|")
    for name, count, plain, explained in [
        ("1 text", len(texts), one_plain, one_explained),
        ("batch of 10", len(batches), batch_plain, batch_explained),
        (f"1 text of 20,000 characters ({long_words} distinct words, {long_explained_words} explained)", 5,
         long_plain, long_explained),
        (f"batch of 12 such texts (the explain budget: {MAX_EXPLAINED_TOKENS:,} words, "
         f"{MAX_EXPLAINED_TEXTS:,} texts)", 3, budget_plain, budget_explained),
    ]:
        w(f"| {name} | {count} | {benchlib.ms(plain['p50_ms'])} / {benchlib.ms(plain['p99_ms'])} / "
          f"{benchlib.ms(plain['mean_ms'])} | {benchlib.ms(explained['p50_ms'])} / "
          f"{benchlib.ms(explained['p99_ms'])} / {benchlib.ms(explained['mean_ms'])} |")
    w("")
    w(f"The validation texts have {sum(words) / len(words):.0f} distinct words on average (max {max(words)}; "
      f"{sum(n > MAX_EXPLAINED_WORDS for n in words)} of {len(words)} over {MAX_EXPLAINED_WORDS}). Texts without "
      f"a word that had to be asked of the every-label process: {sum(every_label_asks)} in "
      f"{len(every_label_asks)} requests.")
    w("")
    w("| fastText child (k=50) | model file | VmRSS | VmHWM |")
    w("|---|---|---|---|")
    for name, m in memory.items():
        w(f"| {name} | {m['bytes'] / 2**20:.1f} MiB | {m['VmRSS'] / 1024:.1f} MiB | {m['VmHWM'] / 1024:.1f} MiB |")


if __name__ == "__main__":
    main()
