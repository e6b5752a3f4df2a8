"""Hashtag recommendations: request validation, cleaning, and fastText's answers shaped for callers."""

import contextlib
import functools
import os
from dataclasses import dataclass

from fasttext_process import FASTTEXT_VERSION, FastTextError, FastTextProcess, probabilities_of, read_model_header
from model_source import (
    BundledModel,
    ModelSourceError,
    S3Model,
    file_sha256,
    model_from_environment,
    named_models_from_environment,
    valid_model_name,
)
from text_cleaning import clean_text, extract_hashtags, normalize_tag

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_K = 50
DEFAULT_K = 5
MAX_TEXTS = 100
MAX_TEXT_CHARS = 20_000
DEFAULT_TIMEOUT_SECONDS = 5.0
ALL_LABELS = -1  # fastText's k for every label of the model
DEFAULT_MODEL = "default"  # the name of model.bin (or MODEL_PATH, MODEL_S3_URI) in requests and answers
# Explanations: each text is asked again without each of its first 200 distinct words; a request
# asks at most 1,000 such texts, of at most 500,000 words all together (0.3 to 0.5 s at worst with
# the default model on this build's shared CPUs, bench/explain.py), far from the timeout.
MAX_EXPLAINED_WORDS = 200
MAX_EXPLAINED_TEXTS = 1_000
MAX_EXPLAINED_TOKENS = 500_000
MAX_EXPLAINED_BY = 5  # words given per recommended hashtag
_OPTION_FIELDS = {"k", "threshold", "exclude_used", "explain", "model"}


class ModelUnavailable(Exception):
    """The model cannot answer right now: the binary or the model file is missing or unusable, a
    model in S3 cannot be fetched or fails its checksum, or fastText died or did not answer in
    time. The next request tries again."""


class InvalidRequest(Exception):
    """The request cannot be answered as sent; `code` and the message tell the caller what to fix."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class RecommendationRequest:
    texts: list[str]
    batch: bool
    k: int = DEFAULT_K
    threshold: float = 0.0
    exclude_used: bool = False
    explain: bool = False
    model: str = DEFAULT_MODEL


def parse_request(body: object) -> RecommendationRequest:
    """Validate a decoded JSON request body, raising InvalidRequest on the first problem."""
    if not isinstance(body, dict):
        raise InvalidRequest("invalid_body", 'the request body must be a JSON object such as {"text": "..."}')
    unknown = sorted(set(body) - _OPTION_FIELDS - {"text", "texts"})
    if unknown:
        raise InvalidRequest(
            "unknown_field",
            f"unknown field {unknown[0]!r}; allowed fields are text or texts, k, threshold, exclude_used, explain, model",
        )
    if ("text" in body) == ("texts" in body):
        raise InvalidRequest("missing_text", 'send exactly one of "text" (a string) or "texts" (a list of strings)')
    if "text" in body:
        texts, batch = [_valid_text(body["text"], "text")], False
    else:
        texts, batch = _valid_texts(body["texts"]), True
    return RecommendationRequest(
        texts=texts,
        batch=batch,
        k=_valid_k(body.get("k", DEFAULT_K)),
        threshold=_valid_threshold(body.get("threshold", 0.0)),
        exclude_used=_valid_exclude_used(body.get("exclude_used", False)),
        explain=_valid_explain(body.get("explain", False)),
        model=_valid_model(body["model"]) if "model" in body else DEFAULT_MODEL,
    )


def _valid_text(text: object, field: str) -> str:
    if not isinstance(text, str):
        raise InvalidRequest("invalid_text", f"{field} must be a string")
    if not text.strip():
        raise InvalidRequest("empty_text", f"{field} must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidRequest(
            "text_too_long", f"{field} has {len(text)} characters; the limit is {MAX_TEXT_CHARS}", status=413
        )
    return text


def _valid_texts(texts: object) -> list[str]:
    if not isinstance(texts, list):
        raise InvalidRequest("invalid_texts", "texts must be a list of strings")
    if not 1 <= len(texts) <= MAX_TEXTS:
        raise InvalidRequest("invalid_texts", f"texts must hold 1 to {MAX_TEXTS} strings, not {len(texts)}")
    return [_valid_text(text, f"texts[{i}]") for i, text in enumerate(texts)]


def _valid_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidRequest("invalid_k", f"k must be an integer from 1 to {MAX_K}")
    return k


def _valid_threshold(threshold: object) -> float:
    # The comparison also turns away NaN, infinities and integers too big for a float.
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise InvalidRequest("invalid_threshold", "threshold must be a number from 0 to 1")
    return float(threshold)


def _valid_exclude_used(exclude_used: object) -> bool:
    if not isinstance(exclude_used, bool):
        raise InvalidRequest("invalid_exclude_used", "exclude_used must be true or false")
    return exclude_used


def _valid_explain(explain: object) -> bool:
    if not isinstance(explain, bool):
        raise InvalidRequest("invalid_explain", "explain must be true or false")
    return explain


def _valid_model(name: object) -> str:
    if not isinstance(name, str) or not valid_model_name(name):
        raise InvalidRequest(
            "invalid_model", "model must be a model's name: 1 to 64 letters, digits, _ or - (see GET /health)"
        )
    return name


class ServedModel:
    """One model of the deployment and its long-lived fastText process (started on first use, then
    kept), with a second process that answers with every label, started on the first need of it."""

    def __init__(self, name: str, source: BundledModel | S3Model, process: FastTextProcess):
        self.name = name
        self.source = source
        self.process = process
        self._all_labels: FastTextProcess | None = None
        self._digest_cache: tuple[tuple, str] | None = None

    def predict(self, lines: list[str], limit: int | None = None) -> list[list[tuple[str, float]]]:
        self.source.local_path()
        return self.process.predict(lines, limit)

    def answer_lines(self, lines: list[str]) -> list[str]:
        self.source.local_path()
        return self.process.answer_lines(lines)

    def predict_all_labels(self, lines: list[str]) -> list[list[tuple[str, float]]]:
        return self._all_labels_process().predict(lines)

    def all_label_lines(self, lines: list[str]) -> list[str]:
        return self._all_labels_process().answer_lines(lines)

    def _all_labels_process(self) -> FastTextProcess:
        if self._all_labels is None:
            p = self.process
            self._all_labels = FastTextProcess(p.binary_path, p.model_path, k=ALL_LABELS, timeout=p.timeout)
        return self._all_labels

    def close(self) -> None:
        self.process.close()
        if self._all_labels is not None:
            self._all_labels.close()

    def summary(self) -> dict:
        """Name, checksum, labels, whether it is fetched and its process runs; read from the file
        when this container has it (a model in S3 not fetched yet: its expected checksum, labels
        unknown). Starts and downloads nothing."""
        path, fetched = self.process.model_path, self.source.fetched
        sha256, labels = getattr(self.source, "expected_sha256", None), None
        if fetched and os.path.isfile(path):
            sha256 = self.digest()
            with contextlib.suppress(FastTextError):  # not a model: it fails when asked, with why
                labels = read_model_header(path).labels
        return {"name": self.name, "source": self.source.describe()["source"], "fetched": fetched,
                "sha256": sha256, "labels": labels, "running": self.process.running}

    def details(self) -> dict:
        """The model in full: its source, and its file's checksum, size and header once this
        container has the file (null until then). Starts and downloads nothing; raises
        FastTextError when the file it has is missing or no fastText model."""
        facts = {**self.source.describe(), "fetched": self.source.fetched,
                 "sha256": None, "bytes": None, "labels": None, "words": None, "dim": None}
        if self.source.fetched:
            path = self.process.model_path
            header = read_model_header(path)
            facts.update(sha256=self.digest(), bytes=os.path.getsize(path),
                         labels=header.labels, words=header.words, dim=header.dim)
        return facts

    def digest(self) -> str:
        """sha256 of the model file, recomputed only when the file changes."""
        stat = os.stat(self.process.model_path)
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if self._digest_cache is None or self._digest_cache[0] != key:
            self._digest_cache = (key, file_sha256(self.process.model_path))
        return self._digest_cache[1]


class Recommender:
    """Recommends hashtags for texts with the default model, or another model of the deployment
    named in the request; each model answers from its own fastText process."""

    def __init__(
        self,
        process: FastTextProcess,
        model: BundledModel | S3Model | None = None,
        named: dict[str, BundledModel | S3Model] | None = None,
    ):
        self.default = ServedModel(DEFAULT_MODEL, model or BundledModel(process.model_path), process)
        self.models = {DEFAULT_MODEL: self.default}
        for name, source in (named or {}).items():
            child = FastTextProcess(process.binary_path, source.path, k=process.k, timeout=process.timeout)
            self.models[name] = ServedModel(name, source, child)

    @property
    def process(self) -> FastTextProcess:
        """The default model's process."""
        return self.default.process

    @property
    def model(self) -> BundledModel | S3Model:
        """Where the default model comes from."""
        return self.default.source

    @classmethod
    def from_environment(cls) -> "Recommender":
        """Build from the environment; nothing is started or downloaded until the first request.

        FASTTEXT_BINARY, PREDICT_TIMEOUT_SECONDS, and MODEL_PATH or MODEL_S3_URI (+ MODEL_SHA256);
        by default the fasttext binary and model.bin bundled next to this file. Named models:
        every NAME.bin in MODELS_DIR (default models/), and MODELS_S3_PREFIX with MODELS_SHA256.
        Relative paths are taken relative to this file's directory (the package root in Lambda).
        """
        model = model_from_environment(os.path.join(HERE, "model.bin"))
        process = FastTextProcess(
            binary_path=os.path.join(HERE, os.environ.get("FASTTEXT_BINARY") or "fasttext"),
            model_path=model.path,
            k=MAX_K,
            timeout=float(os.environ.get("PREDICT_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS),
        )
        named = named_models_from_environment(os.path.join(HERE, os.environ.get("MODELS_DIR") or "models"))
        named.pop(DEFAULT_MODEL, None)  # "default" always names the default model
        return cls(process, model, named)

    def recommend(self, request: RecommendationRequest) -> list[dict]:
        """Return one result per text, in order, asking fastText once for the whole batch (and once
        more for the texts left without a word each, when explanations are asked for).

        Raises InvalidRequest for a model the deployment does not have, ModelUnavailable when the
        model cannot answer."""
        served = self.models.get(request.model)
        if served is None:
            raise InvalidRequest(
                "unknown_model", f"no model named {request.model!r}; this deployment has {', '.join(self.models)}"
            )
        cleaned = [clean_text(text) for text in request.texts]
        # Most texts have no "#" and so no hashtags: skip the regex for them.
        used = [extract_hashtags(text) if "#" in text else [] for text in request.texts]
        try:
            answers = self._answers(served, cleaned, used, request)
            results = [self._result(tags, answer, request) for tags, answer in zip(used, answers)]
            if request.explain:
                self._explain(served, cleaned, answers, results)
        except (FastTextError, ModelSourceError) as e:
            raise ModelUnavailable(str(e)) from None
        return results

    def _answers(self, served: ServedModel, cleaned: list[str], used: list[list[str]], request) -> list[list]:
        """fastText's (label, probability) pairs for each cleaned text: as many as the result can use."""
        # An empty line still gets an answer from fastText (for the end-of-sentence token
        # alone); a text with no words gets no recommendations instead.
        asked = [line for line in cleaned if line]
        if not asked:
            return [[] for _ in cleaned]
        # k labels, or all the process gives when used hashtags are left out.
        limit = None if request.exclude_used or request.explain else request.k
        found = iter(served.predict(asked, limit))
        answers = [next(found) if line else [] for line in cleaned]
        if request.exclude_used:
            self._ask_for_all_labels_where_short(served, answers, cleaned, used, request)
        return answers

    def _ask_for_all_labels_where_short(self, served, answers, cleaned, used, request) -> None:
        """Replace each answer that may leave fewer than k once used hashtags are left out by one
        with every label. The process answers with its MAX_K labels, which is all a request needs
        unless the text carries many of its top hashtags; that rare request asks the model's
        second process, which answers with all of them."""
        short = [i for i, answer in enumerate(answers) if self._may_fall_short(served, answer, used[i], request)]
        if short:
            for i, answer in zip(short, served.predict_all_labels([cleaned[i] for i in short])):
                answers[i] = answer

    @staticmethod
    def _may_fall_short(served: ServedModel, answer: list, used: list[str], request) -> bool:
        """Whether a full answer (more labels may follow, still usable) has fewer than k unused labels."""
        if len(answer) < served.process.k or not _usable(answer[-1][1], request):
            return False
        skip = set(used)
        return sum(_hashtag(label) not in skip for label, _ in answer) < request.k

    def _explain(self, served: ServedModel, cleaned: list[str], answers: list[list], results: list[dict]) -> None:
        """Give each recommended hashtag the words whose leaving out lowers its probability most.

        The model's own process answers every text again without each of its distinct words, in
        one batch: the first MAX_EXPLAINED_WORDS of each text, within the request's budget of
        MAX_EXPLAINED_TEXTS texts of MAX_EXPLAINED_TOKENS words (a result says how many of its
        words were not left out). A hashtag missing from such an answer is below the process's
        MAX_K labels, so that text is asked again of the process that answers with every label:
        each effect is the model's, exactly.
        """
        left_out, lines = [], []  # (result, labels of its hashtags, word), and the text without the word
        texts_left, tokens_left = MAX_EXPLAINED_TEXTS, MAX_EXPLAINED_TOKENS
        for line, answer, result in zip(cleaned, answers, results):
            if not result["hashtags_recommended"]:
                continue
            label_of = {_hashtag(label): label for label, _ in answer}
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
        if not lines:
            return
        found = [probabilities_of(answer, labels) for answer, (_, labels, _) in zip(served.answer_lines(lines), left_out)]
        # A label missing from a full answer is below the process's top MAX_K: ask for every label.
        short = [i for i, (reduced, held) in enumerate(found) if held >= served.process.k and len(reduced) < len(left_out[i][1])]
        if short:
            for i, answer in zip(short, served.all_label_lines([lines[i] for i in short])):
                found[i] = probabilities_of(answer, left_out[i][1])
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

    def close(self) -> None:
        """Stop every model's fastText processes (a new request starts them again)."""
        for served in self.models.values():
            served.close()

    @staticmethod
    def _result(used: list[str], answer: list[tuple[str, float]], request: RecommendationRequest) -> dict:
        skip = set(used) if request.exclude_used else set()
        recommended = []
        for label, probability in answer:
            if not _usable(probability, request) or len(recommended) == request.k:
                break
            hashtag = _hashtag(label)
            if hashtag not in skip:
                recommended.append({"hashtag": hashtag, "probability": probability})
        return {"hashtags_already_used": used, "hashtags_recommended": recommended, "model": request.model}

    def health(self) -> dict:
        """Describe the default model and binary, and list every model of the deployment, from
        what this container already has: no fastText process is started, nothing downloaded.

        Raises ModelUnavailable when the binary, or the default model file the container has,
        could not serve a request."""
        default = self.default
        try:
            default.process.check_binary()
            model = default.details()
        except FastTextError as e:
            raise ModelUnavailable(str(e)) from None
        running = default.process.running
        return {
            "status": "ok",
            "model": model,
            "models": [served.summary() for served in self.models.values()],
            "fasttext": {"version": FASTTEXT_VERSION, "pid": default.process.pid if running else None,
                         "starts": default.process.starts},
        }


@functools.cache  # one entry per label of the model: each request looks up k or more of them
def _hashtag(label: str) -> str:
    """The hashtag a model label reads as."""
    return "#" + normalize_tag(label)


def _usable(probability: float, request: RecommendationRequest) -> bool:
    """Whether a probability may be recommended: at least the threshold, and above 0 (at six
    decimals), since a hashtag the model gives no chance is noise even at threshold 0."""
    return probability >= request.threshold and probability > 0.0
