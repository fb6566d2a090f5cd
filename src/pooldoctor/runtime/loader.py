"""Lazy loading: run a hook when the program imports a module, never import it ourselves.

One registry for every library the guard wraps (the DB-API drivers, the pool adapters, the
SQLAlchemy wiring). :func:`when_imported` runs the hook at once when the module is already
imported, else right after its import, from a finder on ``sys.meta_path`` that borrows the real
spec and wraps its loader. :class:`PatchSet` installs and removes a family of patch modules
(each with ``LABEL``, ``MODULE`` and ``patch(patcher)``) over it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

from ..guard import GUARD
from .drivers.core import Patcher, rebind

Hook = Callable[[ModuleType], None]

_lock = threading.RLock()
_hooks: dict[str, list[Hook]] = {}  # module name -> hooks waiting for its import
_finder: _PostImportFinder | None = None


def when_imported(name: str, hook: Hook) -> None:
    """Call ``hook(module)`` now if ``name`` is imported, else right after its import (once)."""
    module = sys.modules.get(name)
    if module is not None:
        hook(module)
        return
    global _finder
    with _lock:
        hooks = _hooks.setdefault(name, [])
        if hook not in hooks:
            hooks.append(hook)
        if _finder is None:
            _finder = _PostImportFinder()
            sys.meta_path.insert(0, _finder)


def forget(hook: Hook) -> None:
    """Stop waiting to call ``hook``; the finder goes when nothing is awaited."""
    global _finder
    with _lock:
        for name in list(_hooks):
            hooks = [h for h in _hooks[name] if h != hook]
            if hooks:
                _hooks[name] = hooks
            else:
                del _hooks[name]
        if not _hooks and _finder is not None:
            try:
                sys.meta_path.remove(_finder)
            except ValueError:
                pass
            _finder = None


def waiting() -> list[str]:
    """The module names a hook waits for."""
    with _lock:
        return sorted(_hooks)


def _imported(module: ModuleType) -> None:
    with _lock:
        hooks = _hooks.pop(module.__name__, [])
    for hook in hooks:
        try:
            hook(module)
        except Exception:
            GUARD.internal_error(f"import hook of {module.__name__}")


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: for a watched module it borrows the real spec and wraps its
    loader so the hooks run as soon as the module has run."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _hooks:
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
                spec.loader = _HookingLoader(spec.loader)
                return spec
        return None


class _HookingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

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
        _imported(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class PatchSet:
    """A family of patch modules (drivers, or pool adapters) installed lazily, as one."""

    def __init__(self, what: str, modules: Callable[[], Iterable[ModuleType]]) -> None:
        self.what = what
        self._modules = modules
        self._lock = threading.RLock()
        self.installed = False
        self.patchers: dict[str, Patcher] = {}  # label -> its patches
        self._hooks: list[Hook] = []

    def labels(self) -> list[str]:
        with self._lock:
            return sorted(self.patchers)

    def _patch(self, mod: ModuleType, rebind_now: bool = True) -> None:
        label: str = mod.LABEL
        with self._lock:
            if not self.installed or label in self.patchers:
                return
            p = Patcher()
            try:
                mod.patch(p)
            except Exception:
                p.undo()
                GUARD.internal_error(f"patching {label}")
                return
            self.patchers[label] = p
            if rebind_now:
                rebind(p.rebinds)

    def install(self) -> None:
        """Patch every module already imported; the others when the program imports them."""
        try:
            with self._lock:
                if self.installed:
                    return
                self.installed = True
                later = []
                for mod in self._modules():
                    if mod.MODULE in sys.modules:
                        self._patch(mod, rebind_now=False)
                    else:
                        later.append(mod)
                rebind([pair for p in self.patchers.values() for pair in p.rebinds])
                for mod in later:
                    hook = self._hook_for(mod)
                    self._hooks.append(hook)
                    when_imported(mod.MODULE, hook)
        except Exception:
            GUARD.internal_error(f"{self.what} install")

    def _hook_for(self, mod: ModuleType) -> Hook:
        def hook(_: ModuleType) -> None:
            self._patch(mod)

        return hook

    def uninstall(self) -> None:
        """Put everything back as it was (idempotent)."""
        try:
            with self._lock:
                for hook in self._hooks:
                    forget(hook)
                self._hooks.clear()
                rebind([(new, old) for p in self.patchers.values() for old, new in p.rebinds])
                for p in self.patchers.values():
                    p.undo()
                self.patchers.clear()
                self.installed = False
        except Exception:
            GUARD.internal_error(f"{self.what} uninstall")
