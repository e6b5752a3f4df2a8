"""Explanations: the words behind each recommended hashtag, as the model itself says by answering
each text again without each of its words."""

from fasttext_process import Deadline, probabilities_of
from served_models import ServedModel, ServedModels
from text_cleaning import label_hashtag

# Each text is asked again without each of its first 200 distinct words; a request asks at most
# 1,000 such texts, of at most 500,000 words all together (0.3 to 0.5 s at worst with the default
# model on this build's shared CPUs, bench/explain.py), far from the timeout.
MAX_EXPLAINED_WORDS = 200
MAX_EXPLAINED_TEXTS = 1_000
MAX_EXPLAINED_TOKENS = 500_000
MAX_EXPLAINED_BY = 5  # words given per recommended hashtag


def explain(models: ServedModels, served: ServedModel, cleaned: list[str], answers: list[list],
            results: list[dict], deadline: Deadline) -> None:
    """Give each recommended hashtag the words whose leaving out lowers its probability most.

    The model's own process answers every text again without each of its distinct words, in
    one batch: the first MAX_EXPLAINED_WORDS of each text, within the request's budget of
    MAX_EXPLAINED_TEXTS texts of MAX_EXPLAINED_TOKENS words (a result says how many of its
    words were not left out). A hashtag missing from such an answer is below the process's
    MAX_K labels, so that text is asked again of the process that answers with every label:
    each effect is the model's, exactly.
    """
    left_out, lines = _texts_without_each_word(cleaned, answers, results)
    if not lines:
        return
    found = [probabilities_of(answer, labels)
             for answer, (_, labels, _) in zip(models.answer_lines(served, lines, deadline), left_out)]
    k = served.answering.k  # the MAX_K labels models.answer_lines answers with
    # A label missing from a full answer is below the process's top k: ask for every label.
    models.ask_again_with_every_label(
        served, lines, found,
        is_short=lambda i, pair: pair[1] >= k and len(pair[0]) < len(left_out[i][1]),
        read=lambda i, line: probabilities_of(line, left_out[i][1]),
        deadline=deadline,
    )
    for result in results:
        for recommended in result["hashtags_recommended"]:
            recommended["explained_by"] = []
    for (result, labels, word), (reduced, _) in zip(left_out, found):
        for recommended, label in zip(result["hashtags_recommended"], labels):
            # Absent from an answer with every label: the model gives it 0 there.
            effect = round(recommended["probability"] - reduced.get(label, 0.0), 6)
            if effect > 0:
                recommended["explained_by"].append((effect, word))
    for result in results:
        for recommended in result["hashtags_recommended"]:
            # Most influential first; among equal effects, the word seen first (sort is stable).
            ranked = sorted(recommended["explained_by"], key=lambda pair: -pair[0])[:MAX_EXPLAINED_BY]
            recommended["explained_by"] = [{"word": word, "effect": effect} for effect, word in ranked]


def _texts_without_each_word(cleaned: list[str], answers: list[list], results: list[dict]) -> tuple[list, list]:
    """(result, labels of its hashtags, word) for each word left out, and the text without it."""
    left_out, lines = [], []
    texts_left, tokens_left = MAX_EXPLAINED_TEXTS, MAX_EXPLAINED_TOKENS
    for line, answer, result in zip(cleaned, answers, results):
        if not result["hashtags_recommended"]:
            continue
        label_of = {label_hashtag(label): label for label, _ in answer}
        labels = [label_of[r["hashtag"]] for r in result["hashtags_recommended"]]
        tokens = line.split(" ")
        words = list(dict.fromkeys(tokens))
        explained = min(len(words), MAX_EXPLAINED_WORDS, texts_left, tokens_left // len(tokens))
        texts_left, tokens_left = texts_left - explained, tokens_left - explained * len(tokens)
        if explained < len(words):
            result["words_not_explained"] = len(words) - explained
        for word in words[:explained]:
            left_out.append((result, labels, word))
            lines.append(" ".join(token for token in tokens if token != word))
    return left_out, lines
