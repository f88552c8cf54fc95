"""plain(): user and file text shows literally in Streamlit's Markdown (CommonMark escapes)."""
from __future__ import annotations

import re
import string

import pytest

from dashboard.text import plain, unescape

HOSTILE = [
    "[Sign in again](https://evil.example) ![b](https://evil.example/beacon.png)",
    "<img src=https://evil.example/x.png onerror=alert(1)>",
    "**bold** _it_ `code` ~~strike~~ # heading",
    "- item\n1. item\n> quote\n\n---",
    "$\\frac{1}{2}$ :red[coloured] :material/warning: www.evil.example user@evil.example",
    "back\\slash \\[ already escaped \\]",
    "&lt;entity&gt; &#x3C;",
    "ünïcödé, tabs\tand spaces",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_round_trips_to_the_original_text(text):
    assert unescape(plain(text)) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_no_ascii_punctuation_is_left_unescaped(text):
    # remove every escaped pair: what remains must hold no punctuation Markdown could act on
    rest = re.sub(r"\\[!-/:-@\[-`{-~]", "", plain(text))
    assert not set(rest) & set(string.punctuation)


def test_plain_accepts_any_object():
    assert unescape(plain(ValueError("a [b](c)"))) == "a [b](c)"
    assert plain(3) == "3"



def test_problems_beyond_five_are_listed_once_as_plain_text_with_a_count_of_those_not_kept():
    from streamlit.testing.v1 import AppTest

    def page():
        from dashboard.text import show_problems

        problems = ["[a](https://evil.example).txt: bad"] + [f"f{i}.txt: bad" for i in range(1, 8)]
        show_problems("Skipped: ", problems, total=10, more="files skipped")

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert [w.value for w in at.warning][0] == "Skipped: \\[a\\]\\(https\\:\\/\\/evil\\.example\\)\\.txt\\: bad"
    assert len(at.warning) == 5 and at.expander[0].label == "5 more files skipped"
    assert at.text[0].value.splitlines() == ["f5.txt: bad", "f6.txt: bad", "f7.txt: bad", "... and 2 more"]
