"""Statement tags in the sqlcommenter format: write one, read any.

A tag is a comment appended to a statement: ``SELECT 1 /*key='value',key2='value2'*/``, keys
sorted, keys and values URL-encoded, values single-quoted (the sqlcommenter specification, which
OpenTelemetry's database conventions follow). The reader also takes the comments Django's and
OpenTelemetry's sqlcommenter write (``%%`` for ``%`` when the driver did not interpolate) and
Rails' query log tags in both formats (``/*application='x',pid='1'*/`` and the legacy
``/*application:x,pid:1*/``). Pure functions: no driver, no framework.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

_PAIR = re.compile(r"\s*([^=,'\s]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*(?:,|$)")
_LEGACY = re.compile(r"\s*([A-Za-z_][\w.]*):([^,]*)(?:,|$)")


def quote_value(value: str) -> str:
    """URL-encode a key or a value (``/`` and ``:`` kept: they are common in sites)."""
    return quote(value, safe="/:")


def format_comment(pairs: Mapping[str, str]) -> str:
    """``/*k='v',...*/`` with keys sorted; empty values are left out."""
    body = ",".join(f"{quote_value(k)}='{quote_value(v)}'"
                    for k, v in sorted(pairs.items()) if v)
    return f"/*{body}*/" if body else ""


def append(sql: str, comment: str) -> str:
    """``sql`` with ``comment`` appended (before a final ``;``; on a new line after a ``--``)."""
    if not comment:
        return sql
    body = sql.rstrip()
    semicolon = body.endswith(";")
    if semicolon:
        body = body[:-1].rstrip()
    last_line = body.rsplit("\n", 1)[-1]
    sep = "\n" if "--" in last_line else " "
    return f"{body}{sep}{comment}{';' if semicolon else ''}"


def _last_comment(sql: str) -> tuple[int, str] | None:
    """(start, body) of the comment that ends ``sql`` (a final ``;`` allowed), or None."""
    end = len(sql.rstrip().rstrip(";").rstrip())
    if end < 4 or sql[end - 2:end] != "*/":
        return None
    start = sql.rfind("/*", 0, end - 2)
    if start < 0:
        return None
    return start, sql[start + 2:end - 2]


def trailing_comments(sql: str) -> list[str]:
    """The bodies of the comments at the end of ``sql``, first to last."""
    out: list[str] = []
    rest = sql
    for _ in range(8):  # a handful of tools at most
        last = _last_comment(rest)
        if last is None:
            break
        out.append(last[1])
        rest = rest[: last[0]]
    out.reverse()
    return out


def parse_body(body: str) -> dict[str, str]:
    """The pairs of one comment body: sqlcommenter ``k='v'``, else Rails legacy ``k:v``."""
    text = body.strip()
    if not text:
        return {}
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if m is None or m.end() == pos:
            break
        pairs[_decode(m.group(1))] = _decode(m.group(2).replace("\\'", "'"))
        pos = m.end()
    if pairs and pos >= len(text):
        return pairs
    if "='" not in text and "'" not in text:
        legacy: dict[str, str] = {}
        pos = 0
        while pos < len(text):
            m = _LEGACY.match(text, pos)
            if m is None or m.end() == pos:
                return {}
            legacy[m.group(1)] = m.group(2).strip()
            pos = m.end()
        return legacy
    return pairs if pos >= len(text) else {}


def parse(sql: str | None) -> dict[str, str]:
    """Every tag the statement's trailing comments carry (a later comment wins a key)."""
    if not sql or "*/" not in sql:
        return {}
    tags: dict[str, str] = {}
    for body in trailing_comments(sql):
        tags.update(parse_body(body))
    return tags


def strip_tags(sql: str) -> str:
    """``sql`` without its trailing tag comments (for display)."""
    rest = sql
    for _ in range(8):
        last = _last_comment(rest)
        if last is None or not parse_body(last[1]):
            break
        rest = rest[: last[0]].rstrip()
    return rest


def _decode(text: str) -> str:
    # Python sqlcommenters double every % for drivers that interpolate; when the driver did
    # not (no parameters), the server shows %%
    return unquote(text.replace("%%", "%"))
