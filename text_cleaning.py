"""Text cleaning, the hashtag grammar and tag normalisation, shared by the endpoint and training.

Whatever the model was trained on must be exactly what the endpoint sends to fastText, so
both sides call `clean_text` from here and nowhere else; and a label the model was trained
on must read back as the hashtag the endpoint recommends, so both sides spell tags with
`normalize_tag` and recognise them with `extract_hashtags`.

The hashtag grammar: `#`, not glued to a letter, digit or one of `_ # & + . -` before it,
then a body of letters, digits (any script), `_`, `+`, `#`, `.` and `-` that starts with a
letter, digit, `_` or `.` and holds at least one letter or digit. Trailing `.` and `-` are
sentence punctuation, not part of the tag. So `#c++`, `#c#`, `#.net`, `#node.js`, `#go`,
`#r`, `#machine-learning` and `#日本語` are hashtags, `... with #python.` yields `#python`,
and `C#` or `a#b` (glued to a word) and `&#39;` (an HTML entity) are not.
"""

import functools
import html
import re

# No `<` inside a tag: with `<[^>]*>` a run of `<` without `>` backtracks quadratically.
_HTML_TAG = re.compile(r"<[^<>]*>")
# A token fastText sees: letters and digits, with `.` between them (`node.js`, `3.11`), a
# leading `.` when nothing word-like precedes it (`.net`), and trailing `+` or `#` (`c++`,
# `c#`). Everything else (other punctuation, underscores, symbols, control characters, lone
# surrogates) separates tokens; without underscores no token can spell fastText's `__label__`.
# (The dot is matched before the look-behinds check what precedes it: most positions hold no
# dot, and there the look-behinds then cost nothing.)
_TOKEN = re.compile(r"(?:\.(?<![^\W_]\.)(?<!\.\.))?[^\W_]+(?:\.[^\W_]+)*(?:[+#]++(?![^\W_]))?")
_HASHTAG = re.compile(r"(?<![\w#&+.-])#([\w.][\w.+#-]*)")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


def clean_text(text: str) -> str:
    """Return `text` as one line of lower-case, space-separated tokens."""
    text = html.unescape(_HTML_TAG.sub(" ", text))
    return " ".join(_TOKEN.findall(text.lower()))


def normalize_tag(tag: str) -> str:
    """A tag as a model label: without its leading `#`, in lower case.

    Lower case character by character where a character's lower case is one character
    (`İ` stays `İ` rather than becoming `i` plus a combining dot), so a hashtag stays a
    hashtag and normalising twice changes nothing.
    """
    tag = tag[1:] if tag.startswith("#") else tag
    lowered = tag.lower()
    if len(lowered) == len(tag):
        return lowered
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in tag)


@functools.cache  # one entry per label of the model: each request looks up k or more of them
def label_hashtag(label: str) -> str:
    """The hashtag a model label reads as."""
    return "#" + normalize_tag(label)


def extract_hashtags(text: str) -> list[str]:
    """Return the hashtags in the raw `text`, normalised, deduplicated in order of appearance."""
    found = {}
    for match in _HASHTAG.finditer(text):
        body = match.group(1).rstrip(".-")
        if _LETTER_OR_DIGIT.search(body):
            found.setdefault("#" + normalize_tag(body), None)
    return list(found)


def tag_problem(label: str) -> str | None:
    """Why `label` cannot be a hashtag that reads back as itself, or None when it can."""
    if label != normalize_tag(label):
        return f"it is not normalised (lower case, no leading '#'): use {normalize_tag(label)!r}"
    if extract_hashtags(f"text #{label} text") != ["#" + label]:
        return ("a hashtag is letters and digits with '_', '+', '#', '.' or '-' inside, not "
                "starting with '+', '#' or '-' and not ending with '.' or '-'")
    return None
