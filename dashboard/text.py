"""Text from users and files, shown as plain text in Streamlit.

``st.error``, ``st.warning``, ``st.info``, ``st.success``, ``st.caption``, ``st.markdown`` and
``st.subheader`` render Markdown, and Streamlit has no plain-text mode for them. An uploaded file
named ``[Sign in again](https://evil.example) ![b](https://evil.example/beacon.png)`` would show a
link and make the browser fetch the "image". Anything that did not come from this code (file
names, paths, notes, reviewer names, column names, messages that quote them) goes through
:func:`plain` first.

CommonMark shows any ASCII punctuation character literally when a backslash precedes it, so
escaping all of them leaves no link, image, emphasis, heading, list, HTML, math (``$``) or
Streamlit directive (``:red[...]``) markup, and breaks bare-URL autolinks (``https\\://``,
``www\\.``). Never put the result inside backticks: code spans do not honour backslashes.
"""
from __future__ import annotations

import re

_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain(value: object) -> str:
    """``str(value)`` escaped so that Streamlit's Markdown shows it literally."""
    return _PUNCT.sub(r"\\\1", str(value))


def unescape(markdown: str) -> str:
    """What Markdown shows for escaped text: the inverse of :func:`plain` (used by the tests)."""
    return _ESCAPED.sub(r"\1", markdown)


#: Problems shown one warning each; the rest go in one closed list (a bad folder can hold thousands of files).
SHOWN_PROBLEMS = 5


def show_problems(prefix: str, problems: list[str], total: int | None = None, more: str = "records skipped") -> None:
    """The first :data:`SHOWN_PROBLEMS` as warnings (``prefix`` + the problem, plain), the others as plain
    text lines in an expander; ``total``: how many there were, when ``problems`` holds only the first ones."""
    import streamlit as st

    total = len(problems) if total is None else total
    for p in problems[:SHOWN_PROBLEMS]:
        st.warning(f"{prefix}{plain(p)}")
    if total > SHOWN_PROBLEMS:
        with st.expander(f"{total - SHOWN_PROBLEMS} more {more}"):
            rest = problems[SHOWN_PROBLEMS:]
            st.text("\n".join(rest + ([f"... and {total - len(problems)} more"] if total > len(problems) else [])))
