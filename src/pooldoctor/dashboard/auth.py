"""Who may look: loopback by default; any other address only with a token."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
COOKIE = "pooldoctor_dashboard"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def check_bind(host: str, token: str | None) -> None:
    """Refuse (ValueError, one line) to bind beyond loopback without a token."""
    if not host:
        raise ValueError("the dashboard needs a host to listen on, e.g. 127.0.0.1")
    if host not in LOOPBACK and not token:
        raise ValueError(f"refusing to serve the dashboard on {host} without --token: it shows "
                         "code paths, stacks and server connections; use --host 127.0.0.1 or "
                         "add --token (or POOLDOCTOR_DASHBOARD_TOKEN)")
    if token is not None and len(token) < 8:
        raise ValueError(f"the dashboard token is {len(token)} characters long; use at least 8")


def _host_name(value: str) -> str:
    """The host part of a Host header (``[::1]:8080`` -> ``[::1]``)."""
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Gate:
    """ASGI middleware: token check (header, cookie or ``?token=``) and, on loopback, a Host
    check against DNS rebinding. A valid ``?token=`` sets a cookie so the page's own requests
    (scripts, styles, API polls) pass without repeating it."""

    def __init__(self, app: ASGIApp, token: str | None, loopback: bool) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.loopback = loopback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        if self.loopback and _host_name(headers.get("host", "")) not in LOOPBACK_HOSTS:
            await _refuse(send, 403, "the dashboard answers only to 127.0.0.1, localhost or [::1]")
            return
        if self.token is None:
            await self.app(scope, receive, send)
            return
        via_query = self._query_token(scope)
        if self._ok(_bearer(headers.get("authorization", ""))) or self._ok(
                _cookie(headers.get("cookie", ""))):
            await self.app(scope, receive, send)
        elif self._ok(via_query):
            cookie = (f"{COOKIE}={via_query}; Path=/; HttpOnly; SameSite=Strict").encode()

            async def send_with_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"set-cookie", cookie)]
                await send(message)

            await self.app(scope, receive, send_with_cookie)
        else:
            await _refuse(send, 401, "this dashboard needs its token: open it with ?token=... "
                                     "or send 'Authorization: Bearer ...'")

    def _ok(self, given: str | None) -> bool:
        return bool(given) and self.token is not None and hmac.compare_digest(
            given.encode(), self.token)  # type: ignore[union-attr]

    @staticmethod
    def _query_token(scope: Scope) -> str | None:
        qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        values = qs.get("token")
        return values[0] if values else None


def _bearer(value: str) -> str | None:
    scheme, _, rest = value.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else None


def _cookie(value: str) -> str | None:
    for part in value.split(";"):
        name, _, v = part.strip().partition("=")
        if name == COOKIE:
            return v
    return None


async def _refuse(send: Send, status: int, text: str) -> None:
    body = ('{"error": "' + text + '"}').encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
