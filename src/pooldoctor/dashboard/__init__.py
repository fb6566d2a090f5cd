"""The live dashboard: a small Starlette app (JSON API + one page) over the guard's figures.

- in a guarded process (``pooldoctor run --dashboard PORT``): its pools, holds and findings;
- standalone (``pooldoctor dashboard``): holds published by guarded processes on this machine
  and, with ``--server URL``, the server's connections and their attribution.

See docs/dashboard.md. Needs the ``dashboard`` extra (starlette, uvicorn).
"""

from __future__ import annotations

from .auth import check_bind
from .data import Dashboard

__all__ = ["Dashboard", "check_bind", "create_app"]


def create_app(dash: Dashboard, token: str | None = None, loopback: bool = True) -> object:
    """The ASGI app for ``dash`` (imports Starlette only when called)."""
    from .app import create_app as _create

    return _create(dash, token=token, loopback=loopback)
