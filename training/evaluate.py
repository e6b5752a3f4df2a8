"""Evaluate a fastText model on its validation set, optionally against a TF-IDF baseline.

    python -m training.evaluate --model model.bin [--baseline] [--train FILE --valid FILE]

Without --train/--valid, the model is scored on the data it was trained and validated on, as
its OUTPUT-stem.metrics.json records it (the same files, drops and split); a model without
one is scored on the bundled Debian split. A model that knows none of the validation set's
tags is refused rather than scored 0.

The baseline is TF-IDF (word 1-2 grams) + one-vs-rest logistic regression (scikit-learn,
a dev-only dependency) trained on the same training split with the same cleaning
(text_cleaning.clean_text). Both are scored with fastText's P@k/R@k definitions.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from training import fasttext_cli as ft
from training import metrics as mt
from training import prepare
from training.baseline import baseline_predictions
from training.dataset import Example
from training.progress import logger
from training.train import output_paths
from training.validation import PREDICT_K

log = logger("evaluate")


def evaluate_fasttext(model: Path, examples: list[Example]) -> dict:
    binary = ft.fasttext_binary()
    with tempfile.TemporaryDirectory(prefix="fasttext-eval-") as tmp:
        text_file = Path(tmp) / "valid.text.txt"
        ft.write_text_file(examples, text_file)
        predictions = ft.predict_prob(binary, model, text_file, PREDICT_K)
    answered = {label for answer in predictions for label, _ in answer}
    if not answered & {label for ex in examples for label in ex.labels}:
        raise SystemExit(f"error: none of the validation set's tags is among {model}'s answers: it was trained "
                         f"on other data; name its validation file with --valid")
    return mt.headline([ex.labels for ex in examples], predictions)


def data_source(model: Path, train: Path | None, valid: Path | None) -> dict:
    """The data to score on: the files given, else those the model's metrics record, else the bundled split."""
    metrics = output_paths(model)["metrics"]
    if train is None and valid is None and metrics.is_file():
        source = json.loads(metrics.read_text(encoding="utf-8")).get("data")
        if source:
            log(f"scoring on the data recorded in {metrics}")
            return source
    if valid is None and train is None:
        log(f"{metrics} records no data: scoring on the bundled Debian split")
    return {"train": str(train or ft.DEFAULT_TRAIN), "valid": str(valid) if valid else None if train else
            str(ft.DEFAULT_VALID), "format": None, "columns": {"text": None, "tags": None, "group": None},
            "min_tag_count": 1, "split_seed": prepare.SPLIT_SEED}


def evaluate_baseline(train: list[Example], valid: list[Example], c: float = 10.0) -> dict:
    gold, predictions = baseline_predictions(train, valid, c=c)
    return mt.headline(gold, predictions)


def format_table(rows: dict[str, dict]) -> str:
    keys = ["p_at_1", "r_at_1", "p_at_5", "r_at_5"]
    width = max(len(name) for name in rows) + 2
    lines = [f"{'model':<{width}}" + "".join(f"{k.replace('_at_', '@').upper():>8}" for k in keys)]
    for name, m in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{m[k]:>8.4f}" for k in keys))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("model.bin"))
    parser.add_argument("--train", type=Path, help="training data of the baseline (and the split when no --valid)")
    parser.add_argument("--valid", type=Path, help="validation data")
    parser.add_argument("--baseline", action="store_true", help="also train and score the TF-IDF + LR baseline")
    parser.add_argument("--C", type=float, default=10.0, help="baseline logistic regression C")
    args = parser.parse_args(argv)

    rows = {}
    source = data_source(args.model, args.train, args.valid)
    train, valid, notes = prepare.load(source)
    for note in notes:
        log(note)
    prepare.require_examples(train, valid)
    log(f"scoring {args.model} on {len(valid)} validation examples")
    rows[f"fastText {args.model.name} ({args.model.stat().st_size / 2**20:.2f} MiB)"] = evaluate_fasttext(args.model, valid)
    if args.baseline:
        started = time.monotonic()
        rows[f"TF-IDF 1-2g + OvR LR (C={args.C:g})"] = evaluate_baseline(train, valid, c=args.C)
        log(f"baseline trained and scored in {time.monotonic() - started:.0f} s")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
