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


def calibration(gold: Sequence[Sequence[str]], predictions: Sequence[Prediction], k: int = 5,
                bins: int = 10) -> dict:
    """Expected calibration error of the top-k answers, and the reliability table behind it.

    Every (text, label) pair among each text's top k answers falls in one of `bins` equal-width
    bins of [0, 1] by its probability (1.0 in the last); ECE = sum over bins of
    n_bin / N * |mean probability - fraction of the pairs whose label is a gold label|.
    An empty bin has mean_p and accuracy None.
    """
    if len(gold) != len(predictions):
        raise ValueError(f"{len(gold)} examples but {len(predictions)} predictions")
    counts, prob_sums, correct = [0] * bins, [0.0] * bins, [0] * bins
    for labels, answer in zip(gold, predictions):
        wanted = set(labels)
        for label, prob in answer[:k]:
            b = min(max(int(prob * bins), 0), bins - 1)  # fastText may print 1.00001
            counts[b] += 1
            prob_sums[b] += prob
            correct[b] += label in wanted
    total = sum(counts)
    if not total:
        raise ValueError("no answers to measure calibration on")
    table, ece = [], 0.0
    for b in range(bins):
        n = counts[b]
        mean_p, accuracy = (prob_sums[b] / n, correct[b] / n) if n else (None, None)
        if n:
            ece += n / total * abs(mean_p - accuracy)
        table.append({"low": b / bins, "high": (b + 1) / bins, "count": n, "mean_p": mean_p, "accuracy": accuracy})
    return {"ece": ece, "pairs": total, "k": k, "bins": table}
