"""Statement text for display: literals masked, whitespace folded, length bounded."""

from __future__ import annotations

import re

from ..urls import mask_text

QUERY_CHARS = 1000  # what the probes fetch of each statement

_STRING = re.compile(r"(?:[EeBbXxNn])?'(?:[^'\\]|''|\\.)*'")
_DOLLAR = re.compile(r"\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$", re.DOTALL)
_NUMBER = re.compile(r"(?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_SPACE = re.compile(r"\s+")


def mask_literals(sql: str) -> str:
    """Replace string and number literals with ``?`` (identifiers and ``$1`` stay)."""
    sql = _DOLLAR.sub("?", sql)
    sql = _STRING.sub("?", sql)
    return _NUMBER.sub("?", sql)


def clean_query(sql: str | None, mask: bool = True) -> str | None:
    """The statement as shown: masked (by default) and on one line."""
    if sql is None:
        return None
    if isinstance(sql, (bytes, bytearray)):
        sql = sql.decode("utf-8", "replace")
    text = _SPACE.sub(" ", str(sql)).strip()
    return mask_literals(text) if mask else mask_text(text)


def truncate(text: str | None, width: int) -> str:
    if not text:
        return ""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
