"""Statement text for display: literals masked, whitespace folded, length bounded."""

from __future__ import annotations

import re

from ..urls import mask_text

QUERY_CHARS = 1000  # what the probes fetch of each statement
TAIL_CHARS = 600  # and of its end, where statement tags are (read before masking)

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


def read_tags(query: str | None, tail: str | None) -> tuple[str | None, dict[str, str] | None]:
    """(the statement without its tag comments, its tags) from the head and the tail the
    probe read: tags come from the raw text, before any masking."""
    from ..sqlcomment import parse, strip_tags

    if isinstance(tail, (bytes, bytearray)):
        tail = tail.decode("utf-8", "replace")
    if isinstance(query, (bytes, bytearray)):
        query = query.decode("utf-8", "replace")
    tags = parse(tail if tail is not None else query)
    if not tags:
        return query, None
    if query is not None and tail is not None and query.endswith(tail):
        query = strip_tags(query)  # the whole statement was read: show it without the tags
    return query, tags


def truncate(text: str | None, width: int) -> str:
    if not text:
        return ""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"
