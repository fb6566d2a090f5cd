"""Database URLs: parse them with clear errors and never show a password."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"

# scheme://user:password@host  (password may contain anything but '@' followed by host)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")
_KV_PASSWORD = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd)\s*=\s*)(?P<q>['\"]?)(?P<pw>[^'\"\s&;,)]+)(?P=q)",
    re.IGNORECASE,
)


class BadURL(ValueError):
    """A database URL that cannot be used; the message never holds the password."""


def parse_url(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL, raising :class:`BadURL` with a masked, one-line message."""
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as e:
        raise BadURL(f"bad database url {mask_text(str(url))!r}: {mask_text(str(e))}") from None


def mask_url(url: str | URL | Any) -> str:
    """Render a URL with its password replaced by ``***`` (also in query arguments)."""
    if isinstance(url, URL):
        return mask_text(url.render_as_string(hide_password=True))
    text = str(url)
    try:
        return mask_text(make_url(text).render_as_string(hide_password=True))
    except Exception:
        return mask_text(text)


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask passwords inside free text: URLs, ``password=...`` pairs and known secrets."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    text = _KV_PASSWORD.sub(lambda m: m.group("head") + m.group("q") + MASK + m.group("q"), text)
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text
