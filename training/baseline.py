"""The TF-IDF baseline every learner is measured against: word 1-2 grams (sublinear tf, min_df 2) and
one-vs-rest logistic regression (scikit-learn, a training-only dependency) on the cleaned lines, in the
stronger of two settings on the validation part: C=10 with an intercept, and C=100 without one (the
stronger on sites' exports with many rare tags), so that "above the baseline" means something."""

from training.prepare import Part
from training.progress import logger
from training.validation import PREDICT_K

log = logger("baseline")
SETTINGS = ({"C": 10.0, "fit_intercept": True}, {"C": 100.0, "fit_intercept": False})


def baseline_predictions(train: Part, valid: Part, jobs: int = 2) -> tuple[str, list]:
    """(the stronger setting's name, its top-PREDICT_K (label, probability) answers of each validation text)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import MultiLabelBinarizer

    from training import metrics as mt
    from training.validation import criterion

    # The analyzer splits on whitespace only: the tokens are exactly clean_text's tokens.
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                 token_pattern=None, tokenizer=str.split, lowercase=False)
    x_train, x_valid = vectorizer.fit_transform(train.lines), vectorizer.transform(valid.lines)
    # Canonical CSR (sorted, no duplicates) up front: joblib hands workers read-only memmaps,
    # where scikit-learn could not sort the indices in place.
    x_train.sum_duplicates()
    x_valid.sum_duplicates()
    binarizer = MultiLabelBinarizer()
    y_train = binarizer.fit_transform(train.gold)
    best = None
    for setting in SETTINGS:
        name = (f"TF-IDF 1-2 grams + LR (C={setting['C']:g}, "
                f"{'with' if setting['fit_intercept'] else 'no'} intercept)")
        log(f"{name}: {x_train.shape[1]} features, {y_train.shape[1]} labels")
        predictions = _fitted_answers(x_train, y_train, x_valid, binarizer.classes_, setting, jobs)
        value = criterion(mt.headline(valid.gold, predictions))
        if best is None or value > best[0]:
            best = (value, name, predictions)
    return best[1], best[2]


def _fitted_answers(x_train, y_train, x_valid, classes, setting: dict, jobs: int) -> list:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    model = OneVsRestClassifier(LogisticRegression(solver="liblinear", max_iter=1000, **setting), n_jobs=jobs)
    probs = model.fit(x_train, y_train).predict_proba(x_valid)
    top = np.argsort(-probs, axis=1)[:, :PREDICT_K]
    return [[(classes[j], float(probs[i, j])) for j in row] for i, row in enumerate(top)]
