"""Which libraries the guard wraps, each loaded only when the program imports it.

Three families over one lazy loader (:mod:`.loader`): the SQLAlchemy wiring
(:mod:`.sqlalchemy`), the pool and async-driver adapters (:mod:`.adapters`) and the raw
DB-API drivers (:mod:`.dbapi`). ``install()`` imports none of these libraries itself.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

from ..guard import GUARD
from . import loader
from .adapters import ADAPTERS
from .adapters.protocol import all_stats, forget_objects
from .adapters.raw import RAW
from .adapters.raw import sweep as adapter_sweep

SA_WIRING = "pooldoctor.runtime.sqlalchemy"
_repair = False


def _adapter_modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__package__}.adapters.{name}") for name in ADAPTERS]


ADAPTER_SET = loader.PatchSet("adapters", _adapter_modules)


def _sqlalchemy_imported(_: ModuleType) -> None:
    sa = importlib.import_module(SA_WIRING)
    sa.set_repair_mode(_repair)
    sa.install_global()


def set_repair_mode(repair: bool) -> None:
    """fork_safety='repair': applied now if SQLAlchemy is wired, else when it is."""
    global _repair
    _repair = repair
    sa = sys.modules.get(SA_WIRING)
    if sa is not None:
        sa.set_repair_mode(repair)


def install(drivers: bool = True) -> None:
    """Guard every pool and driver of the process, the ones imported later too."""
    loader.when_imported("sqlalchemy", _sqlalchemy_imported)
    RAW.enabled = drivers  # raw async connections are drivers' connections too
    ADAPTER_SET.install()
    if adapter_sweep not in GUARD.tick_hooks:
        GUARD.tick_hooks.append(adapter_sweep)
    if drivers:
        from . import dbapi

        dbapi.install()


def uninstall() -> None:
    """Undo every wiring, adapter and driver patch (idempotent)."""
    loader.forget(_sqlalchemy_imported)
    sa = sys.modules.get(SA_WIRING)
    if sa is not None:
        sa.uninstall()
    ADAPTER_SET.uninstall()
    forget_objects()
    if adapter_sweep in GUARD.tick_hooks:
        GUARD.tick_hooks.remove(adapter_sweep)
    dbapi = sys.modules.get(f"{__package__}.dbapi")
    if dbapi is not None:
        dbapi.uninstall()


def adapters_installed() -> list[str]:
    """The labels of the adapters patched right now."""
    return ADAPTER_SET.labels()


def pool_infos() -> list[dict[str, Any]]:
    """The figures of every guarded pool, SQLAlchemy's (when wired) and the adapters', in the
    order the guard first saw them."""
    infos: list[Any] = list(all_stats())
    sa = sys.modules.get(SA_WIRING)
    if sa is not None:
        infos += sa.all_infos()
    infos.sort(key=lambda i: i.started)
    pids = [os.getpid()]  # merge_pools counts processes by pid, not by pool or engine
    return [{**i.to_dict(), "pids": pids} for i in infos]
