"""Text cleaning and hashtag extraction, shared by the endpoint and the training pipeline.

Whatever the model was trained on must be exactly what the endpoint sends to
fastText, so both sides call `clean_text` from here and nowhere else.
"""

import html
import re

# No `<` inside a tag: with `<[^>]*>` a run of `<` without `>` backtracks quadratically.
_HTML_TAG = re.compile(r"<[^<>]*>")
# A token fastText sees is a run of word characters; everything else (punctuation,
# underscores, symbols, control characters, lone surrogates) separates tokens.
# Underscores go too, so no cleaned text can spell fastText's `__label__` prefix.
_NOT_WORD = re.compile(r"[\W_]+")
_HASHTAG = re.compile(r"\B(#[\w-]{3,})\b(?![#\-\w])")


def clean_text(text: str) -> str:
    """Return `text` as one line of lower-case, space-separated word tokens."""
    text = html.unescape(_HTML_TAG.sub(" ", text))
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def extract_hashtags(text: str) -> list[str]:
    """Return the hashtags in the raw `text`, lower case, deduplicated in order of appearance."""
    return list(dict.fromkeys(tag.lower() for tag in _HASHTAG.findall(text)))
