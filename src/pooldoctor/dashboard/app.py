"""The Starlette app: ``/`` (the page), ``/static/*`` and a JSON API under ``/api/``."""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .auth import Gate
from .data import DEFAULT_POINTS, Dashboard, code_page

_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'",
}


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=_HEADERS)


def _points(request: Request) -> int | None:
    """``?points=N``: chart samples per pool (default 600; ``all`` for the whole history)."""
    v = request.query_params.get("points")
    if v == "all":
        return None
    return int(v) if v and v.isdigit() else DEFAULT_POINTS


def create_app(dash: Dashboard, token: str | None = None, loopback: bool = True) -> Starlette:
    """The dashboard app over ``dash``; ``token`` is required of every request when set;
    ``loopback`` (bound to 127.0.0.1/::1) also checks the Host header against DNS rebinding."""
    index = (resources.files(__package__) / "static" / "index.html").read_text("utf-8")

    def page(request: Request) -> Response:
        return HTMLResponse(index, headers=_HEADERS)

    def state(request: Request) -> Response:
        return _json(dash.state(_points(request)))

    def pools(request: Request) -> Response:
        return _json(dash.pools(_points(request)))

    def holds(request: Request) -> Response:
        return _json(dash.holds())

    def findings(request: Request) -> Response:
        return _json(dash.findings())

    def server(request: Request) -> Response:
        if dash.server is None:
            return _json({"error": "no server: start the dashboard with --server URL"}, 404)
        return _json(dash.server.data())

    def code(request: Request) -> Response:
        page_ = code_page(request.path_params["code"])
        if page_ is None:
            return _json({"error": f"unknown finding code {request.path_params['code']!r}"}, 404)
        return _json(page_)

    static = StaticFiles(packages=[(__package__, "static")])
    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/state", state),
            Route("/api/pools", pools),
            Route("/api/holds", holds),
            Route("/api/findings", findings),
            Route("/api/server", server),
            Route("/api/codes/{code}", code),
            Mount("/static", app=static, name="static"),
        ],
        middleware=[Middleware(Gate, token=token, loopback=loopback)],
    )
    app.state.dashboard = dash
    return app
