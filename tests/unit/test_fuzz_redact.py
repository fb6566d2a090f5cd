"""Property tests of the SQL redaction on generated statements and on arbitrary text.

Generated statements mix identifiers (with digits 0-3 only), keywords, placeholders,
operators and literals. Every literal carries the letter ``Q`` (never used elsewhere) or is a
number made of digits 7-9 (never used elsewhere), so "no literal survives" is a plain check:
no ``Q`` and no 7, 8 or 9 in the result. Identifiers must all come back.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pooldoctor.audit.redact import redact

DIALECTS = ["postgresql", "mysql", "sqlite"]

ident = st.from_regex(r"\A[a-pr-z_][a-pr-z_0-3]{0,6}[0-3]?\Z").filter(
    lambda s: s.upper() not in {"IN", "ARRAY", "VALUES", "E", "N", "X", "B", "U"}
    and not re.fullmatch(r"[ex]\d*|_\w*|[bnu]", s))
keyword = st.sampled_from(["SELECT", "FROM", "WHERE", "AND", "OR", "NULL", "TRUE", "IS", "NOT",
                           "AS", "ORDER BY", "LIMIT", "=", "<>", "<", "+", "*", ",", "(", ")",
                           "-", "/", "||", "::int", "::text"])
placeholder = st.sampled_from(["?", "%s", "%(name_1)s", ":p1", "$1", "$2"])
body = st.text(alphabet=st.sampled_from(list("abcQ019789 '\"\\-/*#$;\n\t")), max_size=12)
number = st.from_regex(r"\A(?:[7-9]{1,5}|[7-9]*\.[7-9]{1,3}|[7-9]{1,3}[eE][+-]?[7-9])\Z")


def quoted(dialect: str) -> st.SearchStrategy[str]:
    def std(v: str) -> str:
        return "'Q" + v.replace("'", "''") + "'"

    def backslash(v: str) -> str:
        return "'Q" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"

    forms: list[st.SearchStrategy[str]] = [body.map(std if dialect != "mysql" else backslash)]
    if dialect == "mysql":
        forms.append(body.map(lambda v: '"Q' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'))
        forms.append(st.sampled_from(["0x7F", "0b101", "x'7F'", "_utf8mb4'Qz'"]))
    if dialect == "postgresql":
        forms.append(body.map(lambda v: "E'Q" + v.replace("\\", "\\\\").replace("'", "\\'")
                              + "'"))
        forms.append(body.map(lambda v: "$$Q" + v.replace("$", "") + "$$"))
        forms.append(body.map(lambda v: "$t1$Q" + v.replace("$", "") + "$t1$"))
        forms.append(st.sampled_from(["U&'Qd'", "B'Q'", "X'7F'"]))
    return st.one_of(*forms)


def comment(dialect: str) -> st.SearchStrategy[str]:
    plain = body.map(lambda v: "/* Q" + v.replace("*/", "") + " */")
    line = body.map(lambda v: "-- Q" + v.replace("\n", " ") + "\n")
    if dialect == "mysql":
        return st.one_of(plain, line, body.map(lambda v: "# Q" + v.replace("\n", " ") + "\n"))
    return st.one_of(plain, line)


@st.composite
def statement(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    dialect = draw(st.sampled_from(DIALECTS))
    names: list[str] = []
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["ident", "ident", "kw", "ph", "lit", "num", "comment"]))
        if kind == "ident":
            name = draw(ident)
            names.append(name)
            parts.append(name)
        elif kind == "kw":
            parts.append(draw(keyword))
        elif kind == "ph":
            parts.append(draw(placeholder))
        elif kind == "lit":
            parts.append(draw(quoted(dialect)))
        elif kind == "num":
            parts.append(draw(number))
        else:
            parts.append(draw(comment(dialect)))
    return dialect, " ".join(parts), names


def no_literal(out: str) -> bool:
    return "Q" not in out and not re.search(r"[7-9]", out)


@settings(max_examples=400, deadline=None)
@given(statement())
def test_no_literal_survives_and_identifiers_stay(case: tuple[str, str, list[str]]) -> None:
    dialect, sql, names = case
    out = redact(sql, dialect)
    assert no_literal(out), (sql, out)
    words = re.findall(r"[A-Za-z_][A-Za-z_0-9$]*", out)
    for name in names:
        assert name in words, (name, sql, out)


@settings(max_examples=300, deadline=None)
@given(statement())
def test_redaction_is_idempotent(case: tuple[str, str, list[str]]) -> None:
    dialect, sql, _ = case
    once = redact(sql, dialect)
    assert redact(once, dialect) == once


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200), st.sampled_from([*DIALECTS, None, "mariadb", "oracle"]))
def test_arbitrary_text_never_fails(text: str, dialect: str | None) -> None:
    out = redact(text, dialect)
    assert isinstance(out, str)
    assert redact(out, dialect) == out  # idempotent on anything

