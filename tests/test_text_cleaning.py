
import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import ROOT
from text_cleaning import clean_text, extract_hashtags, normalize_tag, tag_problem

LABELS = ROOT / "data" / "labels.txt"


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
        ("C++, C# and C on .NET with Node.js in 3D", "c++ c# and c on .net with node.js in 3d"),
        ("a+b 2+2 c++17 f#", "a b 2 2 c 17 f#"),
        ("e.g. version 3.11, etc...and (.net)", "e.g version 3.11 etc and .net"),
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
        ("short tags #r, #Go and #ai/#ux", ["#r", "#go", "#ai", "#ux"]),
        ("#C++ #c# #.NET #Node.js #asp.net-core #c#-4.0", ["#c++", "#c#", "#.net", "#node.js", "#asp.net-core", "#c#-4.0"]),
        ("hyphens #works-with-audio and #c-sharp.", ["#works-with-audio", "#c-sharp"]),
        ("a sentence ends with #python. Then #node.js!", ["#python", "#node.js"]),
        ("unicode #café #Ärzte #日本語", ["#café", "#ärzte", "#日本語"]),
        ("dotted capital I stays one character: #İstanbul", ["#İstanbul"]),
        ("not a tag: a#bcd, x#yz, C# code, &#39;quoted&#39;, x.#y, 1+#2", []),
        ("no letters or digits: # #- #... #+ #_", []),
        ("glued #abc#def", ["#abc#def"]),
        ("trailing hyphen #abc- here", ["#abc"]),
        ("fixes #12.", ["#12"]),
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


@pytest.mark.parametrize(
    "tag, label",
    [("#Python", "python"), ("C++", "c++"), ("#.NET", ".net"), ("İİİ", "İİİ"), ("ΑΣ", "ας"), ("日本語", "日本語")],
)
def test_normalize_tag(tag, label):
    assert normalize_tag(tag) == label


@pytest.mark.parametrize("label", ["c++", "c#", ".net", "node.js", "go", "r", "machine-learning", "snake_case", "İİİ"])
def test_tags_sites_use_round_trip(label):
    assert tag_problem(label) is None
    assert extract_hashtags(f"Question about #{label}.") == ["#" + label]


@pytest.mark.parametrize(
    "label, problem",
    [("C++", "not normalised"), ("#go", "not normalised"), ("-x", "a hashtag is"), ("a.", "a hashtag is"),
     ("+1", "a hashtag is"), ("two words", "a hashtag is"), ("i\u0307", "a hashtag is"), ("", "a hashtag is")],
)
def test_tags_that_cannot_round_trip_are_named(label, problem):
    assert problem in tag_problem(label)


TAG_CHARS = st.characters(codec="utf-8", exclude_categories=["Cs"])


@given(st.text(TAG_CHARS, max_size=12))
def test_any_extracted_hashtag_is_normalised_and_reads_back_as_itself(body):
    for hashtag in extract_hashtags(f"x #{body} y"):
        label = hashtag[1:]
        assert normalize_tag(label) == label
        assert tag_problem(label) is None
        assert extract_hashtags(f"pasted back {hashtag}.") == [hashtag]


@given(st.text(TAG_CHARS, min_size=1, max_size=12))
def test_normalising_twice_changes_nothing(tag):
    assert normalize_tag(normalize_tag(tag)) == normalize_tag(tag)
