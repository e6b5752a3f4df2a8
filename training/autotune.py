"""Hyperparameter search: model size versus validation P@1 / R@5.

    python -m training.autotune [--configs NAME ...] [--fasttext-autotune SECONDS] [--budget-mib 10]

Two searches, both printing one table row per configuration tried:

- an explicit grid (GRID below: fastText supervised + quantize parameters), each
  configuration trained, quantized and scored like training/train.py does;
- with --fasttext-autotune SECONDS, fastText's own search
  (`-autotune-validation valid -autotune-modelsize 10M -autotune-duration SECONDS`,
  optimising f1 of the top prediction, which ranks models like P@1), scored the same way.

The winner (best P@1 within the size budget, then R@5) is printed as a preset; it
becomes `default` in training/presets.py by hand, so the setup trains once with fixed
parameters. Results also go to OUT/results.json (default build/autotune).
"""

import argparse
import json
import re
import subprocess
import time
from pathlib import Path

from training import fasttext_cli as ft
from training import metrics as mt
from training.dataset import read_examples
from training.progress import logger
from training.validation import PREDICT_K

MIB = 2**20
Q = {"retrain": True, "qnorm": True}

# name -> (supervised parameters, quantize parameters). Ordered cheapest first.
GRID: dict[str, tuple[dict, dict]] = {
    "ova-d100-e25-lr0.25-c150k": (
        {"loss": "ova", "dim": 100, "epoch": 25, "lr": 0.25, "wordNgrams": 2, "bucket": 2000000},
        {"cutoff": 150000, "epoch": 5, "lr": 0.1, **Q}),
    "ova-d100-e30-lr0.1-c150k": (
        {"loss": "ova", "dim": 100, "epoch": 30, "lr": 0.1, "wordNgrams": 2, "bucket": 2000000},
        {"cutoff": 150000, "epoch": 5, "lr": 0.05, **Q}),
    "ova-d100-e25-lr0.25-wng3-c150k": (
        {"loss": "ova", "dim": 100, "epoch": 25, "lr": 0.25, "wordNgrams": 3, "bucket": 2000000},
        {"cutoff": 150000, "epoch": 5, "lr": 0.1, **Q}),
    "ova-d100-e25-lr0.25-char3-5-c150k": (
        {"loss": "ova", "dim": 100, "epoch": 25, "lr": 0.25, "wordNgrams": 2, "minn": 3, "maxn": 5, "bucket": 2000000},
        {"cutoff": 150000, "epoch": 5, "lr": 0.1, **Q}),
    "ova-d100-e30-lr0.1-wng3-c150k": (
        {"loss": "ova", "dim": 100, "epoch": 30, "lr": 0.1, "wordNgrams": 3, "bucket": 2000000},
        {"cutoff": 150000, "epoch": 5, "lr": 0.05, **Q}),
    "ova-d200-e25-lr0.25-c80k": (
        {"loss": "ova", "dim": 200, "epoch": 25, "lr": 0.25, "wordNgrams": 2, "bucket": 2000000},
        {"cutoff": 80000, "epoch": 5, "lr": 0.1, **Q}),
}


log = logger("autotune")


class Search:
    def __init__(self, train: Path, valid: Path, out: Path, threads: int, budget_bytes: int):
        self.binary = ft.fasttext_binary()
        self.out = out
        self.threads = threads
        self.budget = budget_bytes
        out.mkdir(parents=True, exist_ok=True)
        self.train_file, self.valid_file, self.valid_text = out / "train.txt", out / "valid.txt", out / "valid.text.txt"
        train_examples, valid_examples = list(read_examples(train)), list(read_examples(valid))
        ft.write_training_file(train_examples, self.train_file)
        ft.write_training_file(valid_examples, self.valid_file)
        ft.write_text_file(valid_examples, self.valid_text)
        self.gold = [ex.labels for ex in valid_examples]
        self.results: list[dict] = []

    def score(self, model: Path) -> dict:
        return mt.headline(self.gold, ft.predict_prob(self.binary, model, self.valid_text, PREDICT_K))

    def run_config(self, name: str, params: dict, qparams: dict | None) -> dict:
        prefix = self.out / re.sub(r"[^\w.-]", "_", name)
        bin_path, ftz_path = Path(f"{prefix}.bin"), Path(f"{prefix}.ftz")
        log(f"{name}: supervised {' '.join(ft.params_to_args(params))}")
        seconds = ft.train(self.binary, self.train_file, prefix, params, threads=self.threads, verbose=0, quiet=True)
        row = {"name": name, "params": params, "quantize": qparams, "train_seconds": seconds}
        row["unquantized"] = {**self.score(bin_path), "bytes": bin_path.stat().st_size}
        if qparams is not None:
            seconds = ft.quantize(self.binary, self.train_file, prefix, qparams, threads=self.threads,
                                  verbose=0, quiet=True)
            row["quantize_seconds"] = seconds
            row["quantized"] = {**self.score(ftz_path), "bytes": ftz_path.stat().st_size}
        bin_path.unlink(missing_ok=True)  # unquantized models (and their .vec) are big
        Path(f"{prefix}.vec").unlink(missing_ok=True)
        self.add(row)
        return row

    def run_fasttext_autotune(self, seconds: int, modelsize: str) -> dict:
        prefix = self.out / "fasttext-autotune"
        cmd = [self.binary, "supervised", "-input", self.train_file, "-output", prefix,
               "-autotune-validation", self.valid_file, "-autotune-modelsize", modelsize,
               "-autotune-duration", str(seconds), "-autotune-predictions", "1", "-loss", "ova",
               "-thread", str(self.threads), "-verbose", "2"]
        log(f"fastText autotune for {seconds} s (model size <= {modelsize})")
        started = time.monotonic()
        result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"fastText autotune failed: {result.stderr[-2000:]}")
        best = re.findall(r"Best selected args.*", result.stdout + result.stderr, flags=re.S)
        model = Path(f"{prefix}.ftz")
        row = {"name": "fasttext-autotune", "params": {"autotune-duration": seconds, "modelsize": modelsize},
               "selected_args": best[0][:2000] if best else "", "quantize": {"by": "autotune"},
               "train_seconds": time.monotonic() - started, "quantize_seconds": 0.0,
               "quantized": {**self.score(model), "bytes": model.stat().st_size}}
        self.add(row)
        return row

    def add(self, row: dict) -> None:
        self.results.append(row)
        log(format_row(row, self.budget))
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2) + "\n")


def final(row: dict) -> dict:
    return row.get("quantized") or row["unquantized"]


def format_row(row: dict, budget: int) -> str:
    f, u = final(row), row.get("unquantized")
    fits = "yes" if f["bytes"] <= budget else "NO"
    before = f"{u['p_at_1']:.3f}/{u['r_at_5']:.3f} {u['bytes'] / MIB:7.1f}" if u else " " * 19
    return (f"{row['name']:<34} {before} | {f['p_at_1']:.3f}  {f['p_at_5']:.3f}  {f['r_at_5']:.3f} "
            f"{f['bytes'] / MIB:6.2f}  {fits:<4} {row['train_seconds'] + row.get('quantize_seconds', 0):6.0f}")


HEADER = (f"{'configuration':<34} {'unquantized':<19} | {'P@1':<6} {'P@5':<6} {'R@5':<6} {'MiB':>5}  {'fits':<4} {'sec':>6}\n"
          f"{'':<34} {'P@1/R@5     MiB':<19} | (shipped model)")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=ft.DEFAULT_TRAIN)
    parser.add_argument("--valid", type=Path, default=ft.DEFAULT_VALID)
    parser.add_argument("--out", type=Path, default=ft.ROOT / "build" / "autotune")
    parser.add_argument("--configs", nargs="*", help=f"grid configurations to run (default: all): {', '.join(GRID)}")
    parser.add_argument("--fasttext-autotune", type=int, default=0, metavar="SECONDS",
                        help="also run fastText's own autotune for this long (0: skip)")
    parser.add_argument("--modelsize", default="10M", help="fastText autotune's -autotune-modelsize")
    parser.add_argument("--budget-mib", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    names = args.configs if args.configs is not None else list(GRID)
    unknown = [n for n in names if n not in GRID]
    if unknown:
        raise SystemExit(f"unknown configurations {unknown}; known: {', '.join(GRID)}")
    search = Search(args.train, args.valid, args.out, args.threads, int(args.budget_mib * MIB))
    print(HEADER, flush=True)
    for name in names:
        print(format_row(search.run_config(name, *GRID[name]), search.budget), flush=True)
    if args.fasttext_autotune:
        print(format_row(search.run_fasttext_autotune(args.fasttext_autotune, args.modelsize), search.budget), flush=True)

    fitting = [r for r in search.results if final(r)["bytes"] <= search.budget]
    print("\nAll configurations, best P@1 first:\n" + HEADER)
    for row in sorted(search.results, key=lambda r: (-final(r)["p_at_1"], -final(r)["r_at_5"])):
        print(format_row(row, search.budget))
    if fitting:
        best = max(fitting, key=lambda r: (final(r)["p_at_1"], final(r)["r_at_5"]))
        print(f"\nWinner within {args.budget_mib:g} MiB: {best['name']}")
        print(json.dumps({"train": best["params"], "quantize": best["quantize"]}, indent=2))
        if best["name"] == "fasttext-autotune":
            print(best.get("selected_args", ""))
    else:
        print(f"\nNo configuration fits in {args.budget_mib:g} MiB")
    return search.results


if __name__ == "__main__":
    main()
