"""Evaluation metrics, defined the way fastText's `test` command defines them.

- precision@k = correct labels among the top k / (k * number of examples)
- recall@k    = correct labels among the top k / total number of gold labels
"""

from collections import Counter
from collections.abc import Sequence

Prediction = list[tuple[str, float]]


def at_k(gold: Sequence[Sequence[str]], predictions: Sequence[Prediction], k: int) -> dict:
    """Micro precision@k and recall@k over all examples (fastText's definitions)."""
    if len(gold) != len(predictions):
        raise ValueError(f"{len(gold)} examples but {len(predictions)} predictions")
    if not gold:
        raise ValueError("no examples to evaluate")
    correct = 0
    n_gold = 0
    for labels, predicted in zip(gold, predictions):
        wanted = set(labels)
        n_gold += len(wanted)
        correct += sum(1 for label, _ in predicted[:k] if label in wanted)
    return {
        "precision": correct / (k * len(gold)),
        "recall": correct / n_gold if n_gold else 0.0,
        "correct": correct,
        "examples": len(gold),
        "gold_labels": n_gold,
    }


def headline(gold: Sequence[Sequence[str]], predictions: Sequence[Prediction]) -> dict:
    """P@1, R@1, P@5, R@5 as a flat dict."""
    one, five = at_k(gold, predictions, 1), at_k(gold, predictions, 5)
    return {"p_at_1": one["precision"], "r_at_1": one["recall"], "p_at_5": five["precision"], "r_at_5": five["recall"]}


def per_label(gold: Sequence[Sequence[str]], predictions: Sequence[Prediction], labels: Sequence[str],
              k: int = 5, threshold: float = 0.0) -> list[dict]:
    """Precision and recall of each label, predicting it when it is in the top k with p >= threshold."""
    support, predicted, correct = Counter(), Counter(), Counter()
    for wanted, answer in zip(gold, predictions):
        wanted = set(wanted)
        support.update(wanted)
        for label, prob in answer[:k]:
            if prob < threshold:
                break
            predicted[label] += 1
            if label in wanted:
                correct[label] += 1
    rows = []
    for label in labels:
        p = correct[label] / predicted[label] if predicted[label] else 0.0
        r = correct[label] / support[label] if support[label] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append({"label": label, "support": support[label], "predicted": predicted[label],
                     "precision": p, "recall": r, "f1": f1})
    return rows


def threshold_curve(gold: Sequence[Sequence[str]], predictions: Sequence[Prediction],
                    thresholds: Sequence[float], k: int = 50) -> list[dict]:
    """Micro precision/recall when every label in the top k with p >= threshold is predicted."""
    n_gold = sum(len(set(labels)) for labels in gold)
    rows = []
    for t in thresholds:
        n_pred = n_correct = 0
        for wanted, answer in zip(gold, predictions):
            wanted = set(wanted)
            for label, prob in answer[:k]:
                if prob < t:
                    break
                n_pred += 1
                n_correct += label in wanted
        rows.append({
            "threshold": t,
            "precision": n_correct / n_pred if n_pred else 1.0,
            "recall": n_correct / n_gold if n_gold else 0.0,
            "labels_per_text": n_pred / len(gold) if gold else 0.0,
        })
    return rows


def calibration(gold: Sequence[Sequence[str]], predictions: Sequence[Prediction], k: int = 5, bins: int = 10) -> dict:
    """Expected calibration error of the top-k answers: |mean p - fraction correct| per equal-width bin,
    weighted by the bin's share of the (text, label) pairs."""
    rows = [[0, 0.0, 0] for _ in range(bins)]
    for wanted, answer in zip(gold, predictions):
        wanted = set(wanted)
        for label, p in answer[:k]:
            row = rows[min(int(p * bins), bins - 1)]
            row[0] += 1
            row[1] += p
            row[2] += label in wanted
    n = sum(r[0] for r in rows)
    table = [{"low": i / bins, "high": (i + 1) / bins, "count": c, "mean_p": s / c if c else 0.0,
              "correct": hits / c if c else 0.0} for i, (c, s, hits) in enumerate(rows)]
    ece = sum(r["count"] / n * abs(r["mean_p"] - r["correct"]) for r in table) if n else 0.0
    return {"ece": ece, "bins": table}
