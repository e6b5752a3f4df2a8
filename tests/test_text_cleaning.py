from pathlib import Path

import pytest

from text_cleaning import clean_text, extract_hashtags

LABELS = Path(__file__).resolve().parent.parent / "data" / "labels.txt"


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("<p>Hello <b>World</b></p>", "hello world"),
        ("Fish &amp; Chips &lt;b&gt;", "fish chips b"),
        ("What's up, doc?!", "what s up doc"),
        ("line one\nline two\r\nthree\rfour\tfive\x0bsix\x0cseven", "line one line two three four five six seven"),
        ("nul\x00byte and\x1fcontrol\x85next\u2028sep", "nul byte and control next sep"),
        ("  spaced    out  ", "spaced out"),
        ("__label__evil text", "label evil text"),
        ("-k 5 --help", "k 5 help"),
        ("Ünïcödé ÉCOLE café", "ünïcödé école café"),
        ("emoji 🎉 ok", "emoji ok"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("#python and #c-sharp", "python and c sharp"),
        ("", ""),
        ("!!! ??? ...", ""),
    ],
)
def test_clean_text(raw, cleaned):
    assert clean_text(raw) == cleaned


def test_clean_text_is_always_one_line_of_tokens():
    cleaned = clean_text("a\n" * 50 + "<br/>b\r\n\x00c")
    assert "\n" not in cleaned and "\r" not in cleaned and "\x00" not in cleaned
    assert cleaned == " ".join(["a"] * 50 + ["b", "c"])


@pytest.mark.parametrize(
    "raw, hashtags",
    [
        ("I love #Python and #python3 #PYTHON", ["#python", "#python3"]),
        ("#doctor in #medicine, then #doctor again", ["#doctor", "#medicine"]),
        ("too short #ab but #abc ok", ["#abc"]),
        ("hyphens #works-with-audio and #c-sharp.", ["#works-with-audio", "#c-sharp"]),
        ("unicode #café #Ärzte #日本語", ["#café", "#ärzte", "#日本語"]),
        ("not a tag: a#bcd, x#yz", []),
        ("glued #abc#def", []),
        ("trailing hyphen #abc- here", []),
        ("underscores #snake_case", ["#snake_case"]),
        ("at start\n#newline works", ["#newline"]),
        ("", []),
    ],
)
def test_extract_hashtags(raw, hashtags):
    assert extract_hashtags(raw) == hashtags


def test_every_label_pasted_back_is_recognised_as_used():
    labels = [line.split("\t")[0] for line in LABELS.read_text().splitlines()]
    assert len(labels) > 100
    for label in labels:
        text = f"Some text #{label} more text"
        assert extract_hashtags(text) == ["#" + label], label


def test_tags_are_matched_without_spanning_a_stray_angle_bracket():
    assert clean_text("if a <b> then <c") == "if a then c"
