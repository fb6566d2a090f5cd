"""pytest plugin for ``scripts/sqla_compat.py``: SQLAlchemy's own tests with the guard on.

Loaded with ``-p sqla_compat_plugin`` (the folder of this file on ``PYTHONPATH``). It installs
the guard globally before any test module is imported and re-installs the class-level
listeners before each test, because some of SQLAlchemy's teardowns clear every listener of
``Pool`` or ``Engine`` (``Pool.dispatch._clear()``, ``testing.teardown_events``). At the end it
writes what the guard saw to ``$POOLDOCTOR_COMPAT_STATS`` (JSON), to prove it was exercised.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

STATS_ENV = "POOLDOCTOR_COMPAT_STATS"

_seen = {"checkouts": 0, "checkins": 0, "connects": 0}


class _Counter:
    """An observer counting the guard's hook calls (the pools themselves come and go)."""

    def on_checkout(self, info: Any, hold: Any) -> None:
        _seen["checkouts"] += 1

    def on_checkin(self, info: Any, hold: Any, held_s: float) -> None:
        _seen["checkins"] += 1

    def on_connect(self, info: Any) -> None:
        _seen["connects"] += 1


def pytest_configure(config: pytest.Config) -> None:
    import pooldoctor
    from pooldoctor.guard import GUARD

    pooldoctor.instrument(log=False, exit_check=False)
    GUARD.observers.append(_Counter())


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    from pooldoctor.runtime.sqlalchemy import ensure_global_listeners

    ensure_global_listeners()


def pytest_unconfigure(config: pytest.Config) -> None:
    import gc

    from pooldoctor.guard import GUARD
    from pooldoctor.runtime import sqlalchemy as pdsa

    gc.collect()
    GUARD.drain()
    findings: dict[str, int] = {}
    sites: dict[str, list[str]] = {}
    for f in GUARD.collector.findings():
        findings[f.code] = findings.get(f.code, 0) + f.count
        if f.site is not None:
            sites.setdefault(f.code, []).append(f"{f.site.short()} x{f.count}")
    stats = {
        "guard_active": GUARD.active,
        "pools": len(pdsa.all_infos()),
        "internal_errors": GUARD.internal_errors,
        "holds_left": len(GUARD.ledger),
        "findings": findings,
        "sites": sites,
        **_seen,
    }
    path = os.environ.get(STATS_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(stats, fh)
