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
