"""Generated functions: the flow check never crashes and never reports a function that closes
its connection in `finally` or with `with`, whatever the statements around it."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from pooldoctor.lint import lint_source

SIMPLE = ["conn.execute('x')", "work()", "pass", "x = 1", "log.info('x')", "return 1",
          "raise ValueError()", "conn.commit()"]


def block(depth: int) -> st.SearchStrategy[list[str]]:
    leaf = st.lists(st.sampled_from(SIMPLE), min_size=1, max_size=3)
    if depth == 0:
        return leaf

    def wrap(kind: str, inner: list[str], other: list[str]) -> list[str]:
        body = textwrap.indent("\n".join(inner), "    ")
        alt = textwrap.indent("\n".join(other), "    ")
        return {
            "if": [f"if flag:\n{body}\nelse:\n{alt}"],
            "for": [f"for item in items:\n{body}\n    if item:\n        break"],
            "while": [f"while flag:\n{body}\n    continue"],
            "try": [f"try:\n{body}\nexcept ValueError:\n{alt}"],
            "with": [f"with lock:\n{body}"],
        }[kind]

    compound = st.builds(wrap, st.sampled_from(["if", "for", "while", "try", "with"]),
                         block(depth - 1), block(depth - 1))
    return st.lists(st.one_of(leaf, compound), min_size=1, max_size=3).map(
        lambda parts: [line for part in parts for line in part])


def function(body: list[str], protected: bool) -> str:
    head = "import sqlite3\ndef f(p, flag, items, lock, log):\n    conn = sqlite3.connect(p)\n"
    inner = textwrap.indent("\n".join(body), "        " if protected else "    ")
    if protected:
        return f"{head}    try:\n{inner}\n    finally:\n        conn.close()\n"
    return f"{head}{inner}\n"


@settings(max_examples=150, deadline=None)
@given(block(2))
def test_close_in_finally_is_always_closed(body: list[str]) -> None:
    assert lint_source(function(body, protected=True)) == []


@settings(max_examples=150, deadline=None)
@given(block(2))
def test_without_a_close_it_is_always_reported(body: list[str]) -> None:
    issues = lint_source(function(body, protected=False))
    assert [(i.code, i.line) for i in issues] == [("PD201", 3)]
