"""Evaluate a fastText model on its validation set, optionally against a TF-IDF baseline.

    python -m training.evaluate --model model.bin [--baseline] [--train FILE --valid FILE]

Without --train/--valid, the model is scored on the data it was trained and validated on, as
its OUTPUT-stem.metrics.json records it (the same files, drops and split); a model without
one is scored on the bundled Debian split. A model that knows none of the validation set's
tags is refused rather than scored 0, and so is a model refitted on the very rows it would be
scored on (its metrics say so): name a --valid file of rows it has not seen.

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
from training.errors import TrainingError, exit_with
from training.prepare import Part
from training.progress import logger
from training.train import output_paths
from training.validation import PREDICT_K

log = logger("evaluate")


def evaluate_fasttext(model: Path, part: Part) -> dict:
    binary = ft.fasttext_binary()
    with tempfile.TemporaryDirectory(prefix="fasttext-eval-") as tmp:
        text_file = Path(tmp) / "valid.text.txt"
        ft.write_lines(part.lines, text_file)
        predictions = ft.predict_prob(binary, model, text_file, PREDICT_K)
    answered = {label for answer in predictions for label, _ in answer}
    if not answered & {label for labels in part.gold for label in labels}:
        raise TrainingError(f"none of the validation set's tags is among {model}'s answers: it was trained "
                            f"on other data; name its validation file with --valid")
    return {**mt.headline(part.gold, predictions), "ece_top5": mt.calibration(part.gold, predictions)["ece"]}


def data_source(model: Path, train: Path | None, valid: Path | None) -> dict:
    """The data to score on: the files given, else those the model's metrics record, else the bundled split.
    TrainingError when the model was refitted on the rows that would be scored."""
    metrics = output_paths(model)["metrics"]
    recorded = json.loads(metrics.read_text(encoding="utf-8")) if metrics.is_file() else {}
    if valid is None and recorded.get("refit", {}).get("done"):
        raise TrainingError(f"{model} was refitted on every row of {recorded['data']['train']}, its validation "
                            f"rows too ({metrics}): scoring it there measures rows it was trained on. Name rows it "
                            f"has not seen with --valid, or train with --no-refit")
    if train is None and valid is None and recorded.get("data"):
        log(f"scoring on the data recorded in {metrics}")
        return recorded["data"]
    if valid is None and train is None:
        log(f"{metrics} records no data: scoring on the bundled Debian split")
    return {"train": str(train or ft.DEFAULT_TRAIN), "valid": str(valid) if valid else None if train else
            str(ft.DEFAULT_VALID), "format": None, "columns": {"text": None, "tags": None, "group": None},
            "min_tag_count": 1, "split_seed": prepare.SPLIT_SEED}


def format_table(rows: dict[str, dict]) -> str:
    keys = ["p_at_1", "r_at_1", "p_at_5", "r_at_5", "ece_top5"]
    width = max(len(name) for name in rows) + 2
    lines = [f"{'model':<{width}}" + "".join(f"{k.replace('_at_', '@').upper():>8}" for k in keys)]
    for name, m in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{m[k]:>8.4f}" if k in m else f"{'-':>8}" for k in keys))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("model.bin"))
    parser.add_argument("--train", type=Path, help="training data of the baseline (and the split when no --valid)")
    parser.add_argument("--valid", type=Path, help="validation data")
    parser.add_argument("--baseline", action="store_true", help="also train and score the TF-IDF + LR baseline")
    args = parser.parse_args(argv)
    try:
        return evaluate(args)
    except TrainingError as e:
        raise exit_with(e) from None


def evaluate(args: argparse.Namespace) -> dict:
    rows = {}
    split = prepare.load(data_source(args.model, args.train, args.valid))
    for note in split.notes:
        log(note)
    prepare.require_examples(split)
    log(f"scoring {args.model} on {len(split.valid)} validation examples")
    rows[f"fastText {args.model.name} ({args.model.stat().st_size / 2**20:.2f} MiB)"] = evaluate_fasttext(
        args.model, split.valid)
    if args.baseline:
        started = time.monotonic()
        name, predictions = baseline_predictions(split.train, split.valid)
        rows[name] = {**mt.headline(split.valid.gold, predictions),
                      "ece_top5": mt.calibration(split.valid.gold, predictions)["ece"]}
        log(f"baseline trained and scored in {time.monotonic() - started:.0f} s")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
