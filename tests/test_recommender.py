"""How recommender.py shapes fastText's answers, with real models that have more labels than
the tiny one: exclude_used still gives up to k, and hashtags the model gives no chance are noise."""

import random
import subprocess
from pathlib import Path

import pytest

from contract import MAX_K, parse_request
from fasttext_process import parse_answer
from support import MANY_LABELS, fasttext_children, recommender_for, train_supervised
from text_cleaning import clean_text


@pytest.fixture(scope="module")
def sparse_model(tmp_path_factory, fasttext_binary) -> Path:
    """80 labels, two per example: the model gives most labels no chance at all."""
    rng = random.Random(3)
    lines = []
    for _ in range(4000):
        labels = rng.sample(range(80), 2)
        words = [f"w{label:02d}" for label in labels] * 3
        rng.shuffle(words)
        lines.append(" ".join(f"__label__t{label:02d}" for label in labels) + " " + " ".join(words))
    return train_supervised(fasttext_binary, tmp_path_factory.mktemp("sparse"), lines, epoch=2)


@pytest.fixture
def many(many_labels_model, fasttext_binary):
    recommender = recommender_for(many_labels_model, fasttext_binary)
    yield recommender
    recommender.close()


def every_label(binary: Path, model: Path, text: str) -> list[tuple[str, float]]:
    """All labels for a text from a separate one-shot `fasttext predict-prob ... -1` run."""
    out = subprocess.run(
        [str(binary), "predict-prob", str(model), "-", "-1"],
        input=clean_text(text) + "\n", capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return parse_answer(out)


TEXT = "w00 w01 w02 w03 w04 w05 w06 w07 w08 w09 " + " ".join(f"#t{label:02d}" for label in range(0, 40, 2))


def unused_with_a_chance(binary: Path, model: Path, text: str, used: set[str]) -> list[dict]:
    """What exclude_used should answer, best first: every label not used in the text, above 0."""
    return [
        {"hashtag": "#" + label, "probability": p}
        for label, p in every_label(binary, model, text)
        if "#" + label not in used and p > 0
    ]


def test_exclude_used_fills_up_to_k_from_every_label_when_used_hashtags_fill_the_top(many, many_labels_model, fasttext_binary):
    (plain,) = many.recommend(parse_request({"text": TEXT, "k": MAX_K}))
    used = set(plain["hashtags_already_used"])
    assert len(used) == 20
    expected = unused_with_a_chance(fasttext_binary, many_labels_model, TEXT, used)[:MAX_K]
    # The case the issue found: the used hashtags in the process's top MAX_K would leave fewer than k.
    unused_in_top = [r for r in plain["hashtags_recommended"] if r["hashtag"] not in used]
    assert len(unused_in_top) < len(expected)
    (result,) = many.recommend(parse_request({"text": TEXT, "k": MAX_K, "exclude_used": True}))
    assert result["hashtags_recommended"] == expected


def test_exclude_used_asks_for_every_label_only_when_the_top_falls_short(many, many_labels_model, fasttext_binary):
    (result,) = many.recommend(parse_request({"text": "w00 w01 #t00", "k": 5, "exclude_used": True}))
    hashtags = [r["hashtag"] for r in result["hashtags_recommended"]]
    assert len(hashtags) == 5 and "#t00" not in hashtags
    # The common case: one process, answering with MAX_K labels.
    assert sorted(fasttext_children(many_labels_model).values()) == [str(MAX_K)]
    batch = many.recommend(parse_request({"texts": ["w00 #t00", TEXT], "k": MAX_K, "exclude_used": True}))
    for text, answer in zip(["w00 #t00", TEXT], batch, strict=True):
        used = set(answer["hashtags_already_used"])
        expected = unused_with_a_chance(fasttext_binary, many_labels_model, text, used)[:MAX_K]
        assert answer["hashtags_recommended"] == expected
    # A second process, answering with every label (k -1), started for the text that fell short...
    both = fasttext_children(many_labels_model)
    assert sorted(both.values()) == ["-1", str(MAX_K)]
    many.recommend(parse_request({"text": TEXT, "k": MAX_K, "exclude_used": True}))
    assert fasttext_children(many_labels_model) == both  # ...and kept alive, like the main process


def test_exclude_used_gives_fewer_than_k_only_when_the_model_has_no_more(many, many_labels_model, fasttext_binary):
    text = "w00 " + " ".join(f"#t{label:02d}" for label in range(MANY_LABELS) if label % 7)
    (result,) = many.recommend(parse_request({"text": text, "k": MAX_K, "exclude_used": True}))
    used = set(result["hashtags_already_used"])
    left = unused_with_a_chance(fasttext_binary, many_labels_model, text, used)
    assert 0 < len(left) < MAX_K
    assert result["hashtags_recommended"] == left


def test_hashtags_the_model_gives_no_chance_are_not_recommended(sparse_model, fasttext_binary):
    recommender = recommender_for(sparse_model, fasttext_binary)
    try:
        answer = every_label(fasttext_binary, sparse_model, "w00 w01 w02")
        assert any(p == 0.0 for _, p in answer), answer  # the premise: labels with no chance
        (result,) = recommender.recommend(parse_request({"text": "w00 w01 w02", "k": MAX_K, "threshold": 0}))
        assert result["hashtags_recommended"] == [
            {"hashtag": "#" + label, "probability": p} for label, p in answer if p > 0
        ]
        assert all(r["probability"] > 0 for r in result["hashtags_recommended"])
    finally:
        recommender.close()
