"""The TF-IDF baseline every learner is measured against: word 1-2 grams (sublinear tf, min_df 2)
and one-vs-rest logistic regression (scikit-learn, a training-only dependency), on the tokens
clean_text makes."""

from text_cleaning import clean_text
from training.dataset import Example
from training.progress import logger
from training.validation import PREDICT_K

log = logger("baseline")


def baseline_predictions(train_examples: list[Example], valid_examples: list[Example], c: float = 10.0,
                         jobs: int = 2) -> tuple[list, list]:
    """Top-PREDICT_K (label, probability) answers of TF-IDF + one-vs-rest logistic regression."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

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
