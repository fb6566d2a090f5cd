"""Database URLs: parse them with clear errors and never show a password.

``dialect+driver://user:password@host:port/database?key=value`` is parsed here, without
SQLAlchemy (importing it costs a command a third of a second): the same grammar as SQLAlchemy's
``make_url``, plus ``postgres://`` read as PostgreSQL (as libpq does) and a clear message for a
password typed with a raw ``@``. :meth:`DatabaseURL.to_sqlalchemy` builds SQLAlchemy's URL for
the commands that need an engine.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote

MASK = "***"

# The patterns are compiled at their first use (re's cache): a command that masks nothing
# does not pay for compiling them.
# scheme://user:password@host: the password runs to the LAST '@' of the word (an unencoded
# '@' in a password must not leave its tail visible); a '"' ends it (JSON around the URL)
_URL_PASSWORD = (
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s\"]*:)(?P<pw>[^\s\"]+)(?=@)")
# password=... (conninfo, query strings) and 'password': ... (a printed dict)
_KV_PASSWORD = (
    r"(?P<head>(?P<qs>(?<=[?&]))?\b(?:password|passwd|pwd)(?:\s*=|['\"]\s*:)\s*)"
    r"(?:'(?P<sq>[^']*)'|\"(?P<dq>[^\"]*)\"|"
    r"(?P<pw>(?(qs)[^'\"\s&]+|[^'\"\s]+)))"  # unquoted: to a space (and '&' in a query)
)
# SQLAlchemy's grammar (sqlalchemy.engine.url._parse_url): the password runs to the first '@'
_URL = (
    r"""
    (?P<name>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """
)
ENCODE_HINT = ("a raw '@', ':' or '/' in the user or password must be percent-encoded "
               "('@' as %40, ':' as %3A, '/' as %2F; urllib.parse.quote_plus does it)")
# libpq reads postgres:// as postgresql:// (Heroku and many hosting services write it)
ALIASES = {"postgres": "postgresql"}


def _kv_sub(m: re.Match[str]) -> str:
    q = "'" if m.group("sq") is not None else '"' if m.group("dq") is not None else ""
    return m.group("head") + q + MASK + q


def _mask_unparsed(text: str) -> tuple[str, str]:
    """A URL that cannot be parsed: hide what sits between the first ':' of the user part
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


@dataclasses.dataclass(frozen=True)
class DatabaseURL:
    """The parts of a database URL (the same names as SQLAlchemy's ``URL``)."""

    drivername: str
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: Mapping[str, str | tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def get_backend_name(self) -> str:
        return self.drivername.partition("+")[0]

    def get_driver_name(self) -> str:
        """The driver named in the URL ('' when the dialect's default is meant)."""
        return self.drivername.partition("+")[2]

    def set(self, **changes: Any) -> DatabaseURL:
        return dataclasses.replace(self, **changes)

    def render_as_string(self, hide_password: bool = True) -> str:
        """Render as SQLAlchemy does (same quoting, query keys sorted)."""
        s = self.drivername + "://"
        if self.username is not None:
            s += quote(self.username, safe=" +")
            if self.password is not None:
                s += ":" + (MASK if hide_password else quote(self.password, safe=" +"))
            s += "@"
        if self.host is not None:
            s += f"[{self.host}]" if ":" in self.host else self.host
        if self.port is not None:
            s += f":{self.port}"
        if self.database is not None:
            s += "/" + quote(self.database, safe=" +/")
        if self.query:
            s += "?" + "&".join(
                f"{quote_plus(k)}={quote_plus(v)}" for k in sorted(self.query)
                for v in _values(self.query[k]))
        return s

    def __str__(self) -> str:
        return self.render_as_string(hide_password=True)

    def to_sqlalchemy(self) -> Any:
        """SQLAlchemy's ``URL`` of the same parts (imports SQLAlchemy)."""
        from sqlalchemy.engine import URL

        return URL.create(self.drivername, username=self.username, password=self.password,
                          host=self.host, port=self.port, database=self.database,
                          query=dict(self.query))


def _values(v: str | tuple[str, ...]) -> tuple[str, ...]:
    return (v,) if isinstance(v, str) else v


def _from_object(url: Any) -> DatabaseURL:
    """A SQLAlchemy ``URL`` (or anything with its attributes) as a :class:`DatabaseURL`."""
    query = {k: v if isinstance(v, str) else tuple(v) for k, v in dict(url.query).items()}
    return DatabaseURL(str(url.drivername), url.username, url.password, url.host, url.port,
                       url.database, query)


def _bad(text: str, why: str) -> BadURL:
    """``why`` is ours (no user text but a masked port)."""
    return BadURL(f"bad database url {_mask_unparsed(text)[0]!r}: {why}")


def parse_url(url: str | DatabaseURL | Any) -> DatabaseURL:
    """Parse a database URL, raising :class:`BadURL` with a masked, one-line message.

    ``url`` may also be a SQLAlchemy ``URL`` (its parts are copied, nothing is imported).
    """
    if isinstance(url, DatabaseURL):
        return url
    if not isinstance(url, str):
        if hasattr(url, "drivername") and hasattr(url, "query"):
            return _from_object(url)
        raise BadURL(f"a database url is text, not {type(url).__name__}")
    m = re.fullmatch(_URL, url, re.X | re.S)
    if m is None:
        return _raise_shape(url)
    g = m.groupdict()
    host = g["ipv4host"] or g["ipv6host"]
    userinfo = g["username"] is not None
    # a raw '@' of the password ends it early: its tail shows up after the first '@'
    rest = url.partition("://")[2]
    if (userinfo and "@" in rest.partition("@")[2]) or (
            host and "@" in (g["port"] or "") + (g["database"] or "")):
        raise _bad(url, ENCODE_HINT)
    port: int | None = None
    if g["port"]:
        if not g["port"].isdigit():
            why = f"port {mask_text(g['port'])!r} is not a number"
            raise _bad(url, f"{why}; {ENCODE_HINT}" if g["password"] is not None else why)
        port = int(g["port"])
    query: dict[str, str | tuple[str, ...]] = {}
    for key, value in parse_qsl(g["query"] or ""):
        old = query.get(key)
        query[key] = value if old is None else (*_values(old), value)
    name = g["name"]
    backend, plus, driver = name.partition("+")
    name = ALIASES.get(backend.lower(), backend) + plus + driver
    return DatabaseURL(
        name,
        unquote(g["username"]) if userinfo else None,
        unquote(g["password"]) if g["password"] is not None else None,
        host or None,
        port,
        unquote(g["database"]) if g["database"] is not None else None,
        query,
    )


def _raise_shape(url: str) -> DatabaseURL:
    why = "expected dialect+driver://user:password@host:port/database" + (
        "" if "://" in url else " (no '://')")
    if "://" in url and "@" in url.partition("://")[2]:
        why += f"; {ENCODE_HINT}"
    raise _bad(url, why)


def mask_url(url: str | DatabaseURL | Any) -> str:
    """Render a URL with its password replaced by ``***`` (also in query arguments)."""
    if isinstance(url, DatabaseURL):
        return mask_text(url.render_as_string(hide_password=True))
    if not isinstance(url, str) and hasattr(url, "render_as_string"):  # SQLAlchemy's URL
        return mask_text(url.render_as_string(hide_password=True))
    text = str(url)
    try:
        u = parse_url(text)
    except BadURL:
        return _mask_unparsed(text)[0]
    return mask_text(u.render_as_string(hide_password=True))


def mask_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask passwords inside free text: URLs, ``password=...`` pairs and known secrets."""
    text = re.sub(_URL_PASSWORD, lambda m: m.group("head") + MASK, text)
    text = re.sub(_KV_PASSWORD, _kv_sub, text, flags=re.IGNORECASE)
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text
