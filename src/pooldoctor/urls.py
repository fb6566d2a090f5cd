"""Database URLs: parse them with clear errors and never show a password."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"

# scheme://user:password@host: the password runs to the LAST '@' of the word (an unencoded
# '@' in a password must not leave its tail visible); a '"' ends it (JSON around the URL)
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s\"]*:)(?P<pw>[^\s\"]+)(?=@)")
# password=... (conninfo, query strings) and 'password': ... (a printed dict)
_KV_PASSWORD = re.compile(
    r"(?P<head>(?P<qs>(?<=[?&]))?\b(?:password|passwd|pwd)(?:\s*=|['\"]\s*:)\s*)"
    r"(?:'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|"
    r"(?P<pw>(?(qs)[^'\"\s&]+|[^'\"\s]+)))",  # unquoted: to a space (and '&' in a query)
    re.IGNORECASE,
)


def _kv_sub(m: re.Match[str]) -> str:
    q = "'" if m.group("sq") is not None else '"' if m.group("dq") is not None else ""
    return m.group("head") + q + MASK + q


def _mask_unparsed(text: str) -> tuple[str, str]:
    """A URL SQLAlchemy cannot parse: hide what sits between the first ':' of the user part
    and the last '@' (with or without a scheme). Returns (masked text, password found)."""
    head, at, tail = text.rpartition("@")
    if not at:
        return mask_text(text), ""
    start = head.find("://")
    start = start + 3 if start >= 0 else 0
    user, colon, pw = head[start:].partition(":")
    if not colon:
        return mask_text(text), ""
    return mask_text(head[:start] + user + ":" + MASK + "@" + tail, (pw,)), pw


class BadURL(ValueError):
    """A database URL that cannot be used; the message never holds the password."""


def parse_url(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL, raising :class:`BadURL` with a masked, one-line message."""
    if isinstance(url, URL):
        return url
    try:
        u = make_url(url)
    except (ArgumentError, ValueError) as e:
        masked, pw = _mask_unparsed(str(url))
        raise BadURL(f"bad database url {masked!r}: {mask_text(str(e), (pw,))}") from None
    if u.host and "@" in u.host:  # an unencoded '@' in the password: the rest looks like a host
        raise BadURL(f"bad database url {_mask_unparsed(url)[0]!r}: '@' in the host; write an "
                     "'@' of the user or password as %40")
    return u


def mask_url(url: str | URL | Any) -> str:
    """Render a URL with its password replaced by ``***`` (also in query arguments)."""
    if isinstance(url, URL):
        return mask_text(url.render_as_string(hide_password=True))
    text = str(url)
    try:
        u = make_url(text)
    except Exception:
        return _mask_unparsed(text)[0]
    if u.host and "@" in u.host:  # an unencoded '@' in the password
        return _mask_unparsed(text)[0]
    return mask_text(u.render_as_string(hide_password=True))


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask passwords inside free text: URLs, ``password=...`` pairs and known secrets."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    text = _KV_PASSWORD.sub(_kv_sub, text)
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text
