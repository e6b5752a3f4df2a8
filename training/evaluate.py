"""Evaluate a fastText model on the validation split, optionally against a TF-IDF baseline.

    python -m training.evaluate --model model.bin [--baseline] [--valid data/valid.tsv.gz]

The baseline is TF-IDF (word 1-2 grams) + one-vs-rest logistic regression (scikit-learn,
a dev-only dependency) trained on the same training split with the same cleaning
(text_cleaning.clean_text). Both are scored with fastText's P@k/R@k definitions.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from text_cleaning import clean_text
from training import fasttext_cli as ft
from training import metrics as mt
from training.dataset import read_examples

PREDICT_K = 50


def log(message: str) -> None:
    print(f"[evaluate {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def evaluate_fasttext(model: Path, valid: Path) -> dict:
    binary = ft.fasttext_binary()
    examples = list(read_examples(valid))
    with tempfile.TemporaryDirectory(prefix="fasttext-eval-") as tmp:
        text_file = Path(tmp) / "valid.text.txt"
        ft.write_text_file(examples, text_file)
        predictions = ft.predict_prob(binary, model, text_file, PREDICT_K)
    return mt.headline([ex.labels for ex in examples], predictions)


def baseline_predictions(train: Path, valid: Path, c: float = 10.0, jobs: int = 2) -> tuple[list, list]:
    """Top-PREDICT_K (label, probability) answers of TF-IDF + one-vs-rest logistic regression."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    train_examples = list(read_examples(train))
    valid_examples = list(read_examples(valid))
    # The analyzer splits on whitespace only: the tokens are exactly clean_text's tokens.
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                 token_pattern=None, tokenizer=str.split, lowercase=False)
    x_train = vectorizer.fit_transform(clean_text(ex.text) for ex in train_examples)
    x_valid = vectorizer.transform(clean_text(ex.text) for ex in valid_examples)
    # Canonical CSR (sorted, no duplicates) up front: joblib hands workers read-only memmaps,
    # where scikit-learn could not sort the indices in place.
    x_train.sum_duplicates()
    x_valid.sum_duplicates()
    binarizer = MultiLabelBinarizer()
    y_train = binarizer.fit_transform(ex.labels for ex in train_examples)
    log(f"baseline: {x_train.shape[1]} TF-IDF features, {y_train.shape[1]} labels; fitting {y_train.shape[1]} "
        f"logistic regressions (C={c})")
    model = OneVsRestClassifier(LogisticRegression(C=c, solver="liblinear", max_iter=1000), n_jobs=jobs)
    model.fit(x_train, y_train)
    probs = model.predict_proba(x_valid)
    top = np.argsort(-probs, axis=1)[:, :PREDICT_K]
    classes = binarizer.classes_
    predictions = [[(classes[j], float(probs[i, j])) for j in row] for i, row in enumerate(top)]
    return [ex.labels for ex in valid_examples], predictions


def evaluate_baseline(train: Path, valid: Path, c: float = 10.0) -> dict:
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
    parser.add_argument("--train", type=Path, default=ft.DEFAULT_TRAIN)
    parser.add_argument("--valid", type=Path, default=ft.DEFAULT_VALID)
    parser.add_argument("--baseline", action="store_true", help="also train and score the TF-IDF + LR baseline")
    parser.add_argument("--C", type=float, default=10.0, help="baseline logistic regression C")
    args = parser.parse_args(argv)

    rows = {}
    log(f"scoring {args.model} on {args.valid}")
    rows[f"fastText {args.model.name} ({args.model.stat().st_size / 2**20:.2f} MiB)"] = evaluate_fasttext(args.model, args.valid)
    if args.baseline:
        started = time.monotonic()
        rows[f"TF-IDF 1-2g + OvR LR (C={args.C:g})"] = evaluate_baseline(args.train, args.valid, c=args.C)
        log(f"baseline trained and scored in {time.monotonic() - started:.0f} s")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
