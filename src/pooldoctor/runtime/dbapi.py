"""The runtime guard for raw DB-API connections: install and remove the driver wrappers.

``install()`` patches every driver already imported and the others right after the program
imports them (:mod:`pooldoctor.runtime.loader`); ``uninstall()`` puts everything back. Both
are idempotent and never raise into the user's program. The wrappers themselves live in
:mod:`pooldoctor.runtime.drivers` (one module per driver, the shared logic in ``core``).

Drivers: sqlite3, PyMySQL, psycopg (3), psycopg2, mysqlclient (MySQLdb), mysql-connector-python.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..guard import GUARD
from .drivers import DRIVERS
from .drivers.core import sweep
from .loader import PatchSet


def _driver_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__package__}.drivers.{name}") for name in DRIVERS]


_SET = PatchSet("dbapi", _driver_modules)


def installed() -> list[str]:
    """The labels of the drivers patched right now."""
    return _SET.labels()


def install() -> None:
    """Wrap every importable driver's connect, now and when imported later (idempotent)."""
    _SET.install()
    if sweep not in GUARD.tick_hooks:
        GUARD.tick_hooks.append(sweep)


def uninstall() -> None:
    """Put every driver back as it was (idempotent)."""
    _SET.uninstall()
    if sweep in GUARD.tick_hooks:
        GUARD.tick_hooks.remove(sweep)
