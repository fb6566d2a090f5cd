"""Remove the values from SQL text: literals become ``?``, identifiers and placeholders stay.

One regular-expression scan per dialect, left to right, so a token is always read whole: the
``1`` in ``t1`` belongs to an identifier, a ``--`` inside a string is not a comment, a ``'``
inside a dollar-quoted body does not open a string.

- strings: ``'..'`` with ``''`` inside; MySQL backslash escapes (``'it\\'s'``); PostgreSQL
  ``E'..'`` (backslash escapes), ``$$..$$`` and ``$tag$..$tag$`` bodies; prefixed forms
  (``N'..'``, ``X'..'``, ``B'..'``, ``U&'..'``, MySQL ``_utf8mb4'..'``); on MySQL ``".."``
  is a string too (elsewhere it quotes an identifier and is kept);
- numbers (``42``, ``-`` stays an operator, ``3.14``, ``.5``, ``1e-3``), hex and bit literals
  (``0x1F``, ``0b101``);
- kept: identifiers (``t1``, ``col_2``, ``"x9"``, `` `y7` ``), keywords, ``NULL``/``TRUE``,
  placeholders (``?``, ``%s``, ``%(name)s``, ``:name``, ``$1``), casts (``::int``);
- ``IN (?, ?, ?)`` and ``ARRAY[?, ?]`` become ``IN (?)`` and ``ARRAY[?]``; repeated ``VALUES``
  rows of literals become one row followed by ``, ...``;
- comments are removed (they can hold anything), except optimizer hints (``/*+ .. */``) and
  MySQL executable comments (``/*! .. */``), whose literals are redacted like code; on MySQL
  ``--`` starts a comment only before a space, as the server reads it;
- whitespace runs become one space.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

MARK = "?"

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?![\w$])"
_SQ_STD = r"'(?:[^']|'')*(?:'|\Z)"  # standard: only '' escapes a quote
_SQ_BACKSLASH = r"'(?:[^'\\]|\\.|'')*(?:'|\Z)"  # MySQL (and PostgreSQL E'')

_HINT = r"(?P<hint>/\*[+!].*?(?:\*/|\Z))"
_COMMENT = r"(?P<comment>/\*.*?(?:\*/|\Z)|--[^\n]*)"
# MySQL: "--" starts a comment only before a space or a control character (1--1 is 2)
_COMMENT_MYSQL = r"(?P<comment>/\*.*?(?:\*/|\Z)|--(?=[\x00-\x20]|\Z)[^\n]*)"
_COMMON_TAIL = [
    r"(?P<bq>`(?:[^`]|``)*(?:`|\Z))",
    r"(?P<param>\$\d+|%\(\w+\)s|%s|::?\w+)",
    r"(?P<hex>0[xX][0-9A-Fa-f]+(?![\w$])|0[bB][01]+(?![\w$]))",
    rf"(?P<num>{_NUM})",
    r"(?P<word>(?:[A-Za-z_]|[^\x00-\x7f\s])[\w$]*|\d+[A-Za-z_$][\w$]*)",  # not \xa0 etc.
    r"(?P<ws>\s+)",
]


def _pattern(dialect: str) -> re.Pattern[str]:
    parts = [_HINT, _COMMENT_MYSQL if dialect == "mysql" else _COMMENT]
    if dialect == "mysql":
        parts.append(r"(?P<comment2>\#[^\n]*)")
        parts.append(rf"(?P<str>(?:_[A-Za-z0-9]+|[nNxXbB])?{_SQ_BACKSLASH})")
        parts.append(r'(?P<dqstr>"(?:[^"\\]|\\.|"")*(?:"|\Z))')
    else:
        if dialect == "postgresql":
            parts.append(r"(?P<dollar>\$(?P<tag>(?:[A-Za-z_][\w]*)?)\$.*?(?:\$(?P=tag)\$|\Z))")
            parts.append(rf"(?P<estr>[eE]{_SQ_BACKSLASH})")
        parts.append(rf"(?P<str>(?:[nNxXbB]|[uU]&)?{_SQ_STD})")
        parts.append(r'(?P<ident>"(?:[^"]|"")*(?:"|\Z))')
    parts += _COMMON_TAIL
    return re.compile("|".join(parts), re.DOTALL)


_LITERALS = {"str", "dqstr", "estr", "dollar", "hex", "num"}
_PLACEHOLDER = r"(?:\?|\$\d+|%\(\w+\)s|%s|:\w+)"
_IN_LIST = re.compile(
    rf"\b(IN)\s*\(\s*{_PLACEHOLDER}(?:\s*,\s*{_PLACEHOLDER})*\s*\)", re.IGNORECASE)
_ARRAY = re.compile(r"\b(ARRAY)\s*\[\s*\?(?:\s*,\s*\?)*\s*\]", re.IGNORECASE)
_ROWS = re.compile(r"(\((?:\s*\?\s*,)*\s*\?\s*\))(?:\s*,\s*\((?:\s*\?\s*,)*\s*\?\s*\))+")
_SPACE = re.compile(r"\s+")


def _replacer(dialect: str) -> Callable[[re.Match[str]], str]:
    def repl(m: re.Match[str]) -> str:
        kind = m.lastgroup
        if kind == "tag":  # the dollar group's inner tag never ends a match
            kind = "dollar"
        if kind in _LITERALS:
            return MARK
        if kind in ("comment", "comment2"):
            return " "
        if kind == "ws":
            return " "
        if kind == "hint":
            return _hint(m.group(0), dialect)
        return m.group(0)

    return repl


_VERSION = re.compile(r"\d*")


def _hint(text: str, dialect: str) -> str:
    """``/*+ hint */`` or ``/*!50100 code */`` with the literals of the body redacted."""
    body = text[3:-2] if text.endswith("*/") else text[3:]
    version = _VERSION.match(body)
    head = text[:3] + (version.group(0) if version and text[2] == "!" else "")
    return f"{head} {redact(body[len(head) - 3:], dialect)} */"


_PATTERNS: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = {}


def _dialect_key(dialect: str | None) -> str:
    d = (dialect or "").lower()
    if d.startswith(("mysql", "mariadb")):
        return "mysql"
    if d.startswith(("postgres", "psycopg", "asyncpg", "pg8000")):
        return "postgresql"
    return "sql"  # SQLite and anything else: standard quoting


def _collapse_rows(m: re.Match[str]) -> str:
    rows = re.findall(r"\([^()]*\)", m.group(0))
    return m.group(1) + ", ..." if len(set(_SPACE.sub("", r) for r in rows)) == 1 else m.group(0)


@functools.lru_cache(maxsize=4096)
def redact(sql: str, dialect: str | None = None) -> str:
    """``sql`` with every literal replaced by ``?`` (see the module's docstring).

    ``dialect`` is a SQLAlchemy dialect or driver name (``postgresql``, ``mysql``, ``mariadb``,
    ``sqlite``...); it decides how strings are quoted. Results are cached.
    """
    key = _dialect_key(dialect)
    got = _PATTERNS.get(key)
    if got is None:
        got = _PATTERNS[key] = (_pattern(key), _replacer(key))
    pattern, repl = got
    out = pattern.sub(repl, sql)
    out = _IN_LIST.sub(r"\1 (?)", out)
    if "?" in out:
        out = _ARRAY.sub(r"\1[?]", out)
        out = _ROWS.sub(_collapse_rows, out)
    return _SPACE.sub(" ", out).strip()


_QUOTED = re.compile(
    r"(?<![\w'\"])(?:'(?P<s>(?:[^'\\]|\\.|'')*)'|\"(?P<d>(?:[^\"\\]|\\.|\"\")*)\")",
    re.DOTALL)
_NAME = re.compile(r"[\w$.`]+")
_WORDS = re.compile(r"[A-Za-z_][\w$]*")


def redact_message(text: str, statement: str = "") -> str:
    """A server error message without the values it quotes.

    Only the first line is kept (PostgreSQL puts values in DETAIL lines). A quoted part stays
    when it names something of ``statement`` (the redacted SQL: a table, a column, a
    constraint written in it); any other quoted part becomes ``?``.
    """
    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    words = set(_WORDS.findall(statement))

    def repl(m: re.Match[str]) -> str:
        body = m.group("s") if m.group("s") is not None else m.group("d")
        if _NAME.fullmatch(body) and body.replace("`", "").split(".")[-1] in words:
            return m.group(0)
        return MARK

    return _QUOTED.sub(repl, first)
