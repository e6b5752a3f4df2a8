"""Hashtag recommendations: cleaned texts in, fastText's answers shaped for callers out."""

import os

from contract import DEFAULT_K, MAX_K, RecommendationRequest
from explanations import explain
from fasttext_process import Deadline, parse_answer
from served_models import ServedModel, ServedModels
from text_cleaning import clean_text, extract_hashtags, label_hashtag

HERE = os.path.dirname(os.path.abspath(__file__))
# What a request keeps of the time Lambda gives it for its answer, its log line and Lambda's own work.
DEADLINE_MARGIN_SECONDS = 0.5


class Recommender:
    """Recommends hashtags for texts with the default model, or another model of the deployment
    named in the request."""

    def __init__(self, models: ServedModels):
        self.models = models

    @classmethod
    def from_environment(cls) -> "Recommender":
        """Build from the environment (ServedModels.from_environment); nothing is started yet."""
        return cls(ServedModels.from_environment(HERE))

    def deadline(self, time_left: float | None = None) -> Deadline:
        """The deadline of every exchange of one request: PREDICT_TIMEOUT_SECONDS from now, or
        sooner when the function has less than that left (`time_left`, less a margin)."""
        seconds = self.models.timeout
        if time_left is not None:
            seconds = min(seconds, time_left - DEADLINE_MARGIN_SECONDS)
        return Deadline(seconds)

    def recommend(self, request: RecommendationRequest, deadline: Deadline | None = None) -> list[dict]:
        """Return one result per text, in order, asking fastText once for the whole batch (and once
        more for the texts left without a word each, when explanations are asked for), all by one
        deadline.

        Raises InvalidRequest for a model the deployment does not have, ModelUnavailable when the
        model cannot answer."""
        served = self.models.get(request.model)
        deadline = deadline or self.deadline()
        cleaned = [clean_text(text) for text in request.texts]
        # Most texts have no "#" and so no hashtags: skip the regex for them.
        used = [extract_hashtags(text) if "#" in text else [] for text in request.texts]
        answers = self._answers(served, cleaned, used, request, deadline)
        results = [_result(tags, answer, request) for tags, answer in zip(used, answers)]
        if request.explain:
            explain(self.models, served, cleaned, answers, results, deadline)
        return results

    def _answers(self, served: ServedModel, cleaned: list[str], used: list[list[str]], request, deadline) -> list[list]:
        """fastText's (label, probability) pairs for each cleaned text: as many as the result can use."""
        # An empty line still gets an answer from fastText (for the end-of-sentence token
        # alone); a text with no words gets no recommendations instead.
        asked = [line for line in cleaned if line]
        if not asked:
            return [[] for _ in cleaned]
        # k labels, or all the process gives when used hashtags are left out.
        limit = None if request.exclude_used or request.explain else request.k
        k = DEFAULT_K if limit is not None and limit <= DEFAULT_K else MAX_K
        found = iter(self.models.answer_lines(served, asked, deadline, k))
        answers = [parse_answer(next(found), limit) if line else [] for line in cleaned]
        if request.exclude_used:
            # The process answers with its MAX_K labels, which is all a request needs unless the
            # text carries many of its top hashtags: that rare text is asked of every label.
            self.models.ask_again_with_every_label(
                served, cleaned, answers,
                is_short=lambda i, answer: _may_fall_short(answer, MAX_K, used[i], request),
                read=lambda i, line: parse_answer(line),
                deadline=deadline,
            )
        return answers

    def health(self) -> dict:
        return self.models.health()

    def close(self) -> None:
        """Stop every model's fastText processes (a new request starts them again)."""
        self.models.close()


def _may_fall_short(answer: list, k: int, used: list[str], request: RecommendationRequest) -> bool:
    """Whether a full answer of `k` labels (more may follow, still usable) has fewer than the
    request's k unused labels."""
    if len(answer) < k or not _usable(answer[-1][1], request):
        return False
    skip = set(used)
    return sum(label_hashtag(label) not in skip for label, _ in answer) < request.k


def _result(used: list[str], answer: list[tuple[str, float]], request: RecommendationRequest) -> dict:
    skip = set(used) if request.exclude_used else set()
    recommended = []
    for label, probability in answer:
        if not _usable(probability, request) or len(recommended) == request.k:
            break
        hashtag = label_hashtag(label)
        if hashtag not in skip:
            recommended.append({"hashtag": hashtag, "probability": probability})
    return {"hashtags_already_used": used, "hashtags_recommended": recommended, "model": request.model}


def _usable(probability: float, request: RecommendationRequest) -> bool:
    """Whether a probability may be recommended: at least the threshold, and above 0 (at six
    decimals), since a hashtag the model gives no chance is noise even at threshold 0."""
    return probability >= request.threshold and probability > 0.0
