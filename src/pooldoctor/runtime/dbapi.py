"""The runtime guard for raw DB-API connections: install and remove the driver wrappers.

``install()`` patches every driver already imported and puts a finder on ``sys.meta_path``
that patches the others right after their import; ``uninstall()`` puts everything back. Both
are idempotent and never raise into the user's program. The wrappers themselves live in
:mod:`pooldoctor.runtime.drivers` (one module per driver, the shared logic in ``core``).

Drivers: sqlite3, PyMySQL, psycopg (3), psycopg2, mysqlclient (MySQLdb), mysql-connector-python.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from types import ModuleType
from typing import Any

from ..guard import GUARD
from .drivers import DRIVERS
from .drivers.core import Patcher, rebind, sweep

_lock = threading.RLock()
_installed = False
_patchers: dict[str, Patcher] = {}  # driver module name -> its patches
_watch: dict[str, ModuleType] = {}  # module to wait for -> the driver module that patches it
_finder: _PostImportFinder | None = None


def _driver_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__package__}.drivers.{name}") for name in DRIVERS]


def installed() -> list[str]:
    """The labels of the drivers patched right now."""
    with _lock:
        return sorted(_patchers)


def _patch(driver: ModuleType, rebind_now: bool = True) -> None:
    label: str = driver.LABEL
    with _lock:
        if not _installed or label in _patchers:
            return
        p = Patcher()
        try:
            driver.patch(p)
        except Exception:
            p.undo()
            GUARD.internal_error(f"patching {label}")
            return
        _patchers[label] = p
        if rebind_now:
            rebind(p.rebinds)
    from . import sqltags

    if sqltags.enabled:  # statement tags on raw connections (runtime/rawtags.py)
        from . import rawtags

        rawtags.install(label)


def install() -> None:
    """Wrap every importable driver's connect, now and when imported later (idempotent)."""
    global _installed, _finder
    try:
        with _lock:
            if _installed:
                return
            _installed = True
            for driver in _driver_modules():
                if driver.MODULE in sys.modules:
                    _patch(driver, rebind_now=False)
                else:
                    _watch[driver.MODULE] = driver
            rebind([pair for p in _patchers.values() for pair in p.rebinds])
            if _watch and _finder is None:
                _finder = _PostImportFinder()
                sys.meta_path.insert(0, _finder)
            if sweep not in GUARD.tick_hooks:
                GUARD.tick_hooks.append(sweep)
    except Exception:
        GUARD.internal_error("dbapi install")


def uninstall() -> None:
    """Put every driver back as it was (idempotent)."""
    global _installed, _finder
    try:
        with _lock:
            if _finder is not None:
                try:
                    sys.meta_path.remove(_finder)
                except ValueError:
                    pass
                _finder = None
            _watch.clear()
            rebind([(new, old) for p in _patchers.values() for old, new in p.rebinds])
            for p in _patchers.values():
                p.undo()
            _patchers.clear()
            if sweep in GUARD.tick_hooks:
                GUARD.tick_hooks.remove(sweep)
            _installed = False
    except Exception:
        GUARD.internal_error("dbapi uninstall")


# --------------------------------------------------------------------------- import hook


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched module it borrows the real spec and wraps its
    loader so the driver is patched as soon as the module has run."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        driver = _watch.get(fullname)
        if driver is None:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                    return spec
                spec.loader = _PatchingLoader(spec.loader, driver)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, driver: ModuleType) -> None:
        self.loader = loader
        self.driver = driver

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the module sees its real loader (importlib.resources and friends use it)
        spec = module.__spec__
        if spec is not None:
            spec.loader = self.loader
        module.__loader__ = self.loader
        self.loader.exec_module(module)
        try:
            with _lock:
                _watch.pop(self.driver.MODULE, None)
            _patch(self.driver)
        except Exception:
            GUARD.internal_error("dbapi import hook")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)
