"""`"explain": true`: the words behind each recommended hashtag, checked against the fastText binary
itself (a one-shot `predict-prob ... -1` on the text with and without the word)."""

import gzip
import subprocess
from pathlib import Path

from contract import parse_request
from explanations import MAX_EXPLAINED_BY, MAX_EXPLAINED_TEXTS, MAX_EXPLAINED_TOKENS, MAX_EXPLAINED_WORDS
from fasttext_process import parse_answer
from recommender import Recommender
from support import ROOT, call, function_url_event, recommender_for, rest_event
from text_cleaning import clean_text


def every_label(binary: Path, model: Path, lines: list[str]) -> list[dict[str, float]]:
    """{hashtag: probability} of every label for each cleaned line, from a one-shot run of the binary."""
    out = subprocess.run(
        [str(binary), "predict-prob", str(model), "-", "-1"],
        input="".join(line + "\n" for line in lines), capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    return [{"#" + label: p for label, p in parse_answer(line)} for line in out.splitlines()]


def without(cleaned: str, word: str) -> str:
    return " ".join(token for token in cleaned.split(" ") if token != word)


def assert_explanations_are_the_binarys(binary: Path, model: Path, text: str, result: dict) -> None:
    """Every stated effect is the drop of the hashtag's probability, from the binary, when every
    occurrence of the word is left out; the words are the text's, best first, at most 5, each > 0;
    and no word of the text left out of the explanation lowers it more than the last one given."""
    cleaned = clean_text(text)
    words = list(dict.fromkeys(cleaned.split(" ")))[:MAX_EXPLAINED_WORDS]
    full, *reduced = every_label(binary, model, [cleaned] + [without(cleaned, w) for w in words])
    drops = {w: r for w, r in zip(words, reduced)}
    for recommended in result["hashtags_recommended"]:
        hashtag, explained = recommended["hashtag"], recommended["explained_by"]
        assert recommended["probability"] == full[hashtag]
        assert len(explained) <= MAX_EXPLAINED_BY
        effects = [e["effect"] for e in explained]
        assert effects == sorted(effects, reverse=True) and all(e > 0 for e in effects)
        for entry in explained:
            assert entry["word"] in words
            assert entry["effect"] == round(full[hashtag] - drops[entry["word"]][hashtag], 6)
        all_effects = sorted((round(full[hashtag] - r[hashtag], 6) for r in reduced), reverse=True)
        assert effects == [e for e in all_effects if e > 0][:MAX_EXPLAINED_BY]


def test_without_explain_answers_carry_no_explanation(app):
    _, body = call(app, rest_event({"text": "python pip module"}))
    assert all("explained_by" not in r for r in body["hashtags_recommended"])
    assert call(app, rest_event({"text": "python pip module", "explain": False}))[1] == body


def test_explain_gives_the_words_behind_each_hashtag_as_the_binary_says(app, lambda_env):
    text = "My python script: pip installs the module, an http server serves it"
    status, body = call(app, rest_event({"text": text, "explain": True}))
    assert status == 200
    top = body["hashtags_recommended"][0]
    assert top["hashtag"] == "#python" and top["explained_by"][0]["word"] in {"python", "pip", "module", "script"}
    assert_explanations_are_the_binarys(lambda_env["binary"], lambda_env["model"], text, body)
    assert "words_not_explained" not in body


def test_explain_with_a_batch_k_threshold_and_exclude_used(app, lambda_env):
    texts = ["sound music player #audio", "compiler library header template", "!!!", "http proxy mp3 mixer"]
    status, body = call(app, function_url_event({"texts": texts, "k": 2, "threshold": 0.05, "exclude_used": True,
                                                 "explain": True}))
    assert status == 200
    results = body["results"]
    assert results[2]["hashtags_recommended"] == []
    assert "#audio" not in [r["hashtag"] for r in results[0]["hashtags_recommended"]]
    for text, result in zip(texts, results):
        assert len(result["hashtags_recommended"]) <= 2
        assert all(r["probability"] >= 0.05 for r in result["hashtags_recommended"])
        assert_explanations_are_the_binarys(lambda_env["binary"], lambda_env["model"], text, result)
    # The hashtags are those of the same request without explain.
    _, plain = call(app, rest_event({"texts": texts, "k": 2, "threshold": 0.05, "exclude_used": True}))
    for explained, result in zip(results, plain["results"]):
        assert [{"hashtag": r["hashtag"], "probability": r["probability"]} for r in explained["hashtags_recommended"]] \
            == result["hashtags_recommended"]


def test_explain_asks_the_models_process_once_more_for_the_whole_batch(app, monkeypatch):
    process = app.recommender.models.default.answering
    rounds = []
    real = process.answer_lines
    monkeypatch.setattr(process, "answer_lines", lambda lines, deadline: rounds.append(lines) or real(lines, deadline))
    texts = ["python pip module python", "sound music"]
    call(app, rest_event({"texts": texts, "explain": True}))
    assert len(rounds) == 2 and rounds[0] == texts
    assert rounds[1] == ["pip module", "python module python", "python pip python", "music", "sound"]


def test_a_text_with_more_distinct_words_than_explained_says_how_many_were_left(app, lambda_env):
    words = [f"word{i}" for i in range(MAX_EXPLAINED_WORDS + 30)]
    text = "python " + " ".join(words)
    status, body = call(app, rest_event({"text": text, "explain": True}))
    assert status == 200
    assert body["words_not_explained"] == 1 + len(words) - MAX_EXPLAINED_WORDS  # python and 199 words explained
    explained = {e["word"] for r in body["hashtags_recommended"] for e in r["explained_by"]}
    assert explained <= {"python", *words[: MAX_EXPLAINED_WORDS - 1]}


def test_a_hashtag_below_the_processes_top_labels_is_asked_of_every_label(many_labels_model, fasttext_binary):
    """Recommended hashtags beyond the process's top MAX_K labels (exclude_used leaves out many used
    ones) fall out of the top answers of most reduced texts: their effect is still exact."""
    recommender = recommender_for(many_labels_model, fasttext_binary)
    try:
        ranked = every_label(fasttext_binary, many_labels_model, ["w00 w01 w02 w03"])[0]
        used = sorted(ranked, key=ranked.get, reverse=True)[:45]
        text = "w00 w01 w02 w03 " + " ".join(used)
        asked = []
        every_label_process = recommender.models.default.all_labels
        real = every_label_process.answer_lines
        every_label_process.answer_lines = lambda lines, deadline: asked.append(lines) or real(lines, deadline)
        (result,) = recommender.recommend(parse_request({"text": text, "k": 10, "exclude_used": True, "explain": True}))
        assert asked, "no text without a word needed every label: nothing tested"
        assert_explanations_are_the_binarys(fasttext_binary, many_labels_model, text, result)
    finally:
        recommender.close()


def unseen_texts(count: int) -> list[str]:
    """Descriptions from the validation split (the model never trained on them), spread over it."""
    with gzip.open(ROOT / "data" / "valid.tsv.gz", "rt", encoding="utf-8") as f:
        texts = [line.rstrip("\n").split("\t")[3] for line in f]
    return texts[:: len(texts) // count][:count]


def test_on_the_real_model_the_first_word_lowers_the_top_hashtag_by_its_effect(fasttext_binary, shipped_model,
                                                                               monkeypatch):
    """Done when (issue 16): for unseen texts, the first word explaining the top hashtag, left out of
    the text, lowers that hashtag's probability by its stated effect, per the binary itself."""
    model = shipped_model
    monkeypatch.setenv("MODEL_PATH", str(model))
    monkeypatch.setenv("FASTTEXT_BINARY", str(fasttext_binary))
    recommender = Recommender.from_environment()
    try:
        texts = unseen_texts(20)
        results = recommender.recommend(parse_request({"texts": texts, "explain": True}))
    finally:
        recommender.close()
    checked = 0
    for text, result in zip(texts, results):
        top = result["hashtags_recommended"][0]
        if not top["explained_by"]:
            continue  # no word lowers it (it is as probable without any one of them)
        first = top["explained_by"][0]
        cleaned = clean_text(text)
        full, reduced = every_label(fasttext_binary, model, [cleaned, without(cleaned, first["word"])])
        assert top["probability"] == full[top["hashtag"]]
        assert round(full[top["hashtag"]] - reduced[top["hashtag"]], 6) == first["effect"] > 0
        checked += 1
    assert checked >= 15, f"only {checked} of 20 texts had a word explaining their top hashtag"


def test_a_batch_explains_within_the_requests_budget_and_says_what_it_left(app):
    words = "python pip module script sound music player mp3 http server browser proxy compiler linker header"
    assert len(words.split()) == 15
    status, body = call(app, rest_event({"texts": [words] * 100, "explain": True}))
    assert status == 200
    left = [r.get("words_not_explained", 0) for r in body["results"]]
    full = MAX_EXPLAINED_TEXTS // 15
    assert left == [0] * full + [15 - MAX_EXPLAINED_TEXTS % 15] + [15] * (99 - full)
    assert all(r["explained_by"] for r in body["results"][0]["hashtags_recommended"])
    assert all(r["explained_by"] == [] for r in body["results"][-1]["hashtags_recommended"])


def test_long_texts_explain_within_the_requests_word_budget(app):
    tokens = 3000
    text = " ".join(["python pip module sound music player"] * (tokens // 6)) + " " + " ".join(
        f"w{i}" for i in range(MAX_EXPLAINED_WORDS))
    length = len(clean_text(text).split(" "))
    status, body = call(app, rest_event({"texts": [text, text], "explain": True}))
    assert status == 200
    distinct = 6 + MAX_EXPLAINED_WORDS
    first = min(MAX_EXPLAINED_WORDS, MAX_EXPLAINED_TOKENS // length)
    second = min(MAX_EXPLAINED_WORDS, (MAX_EXPLAINED_TOKENS - first * length) // length)
    assert [r["words_not_explained"] for r in body["results"]] == [distinct - first, distinct - second]
