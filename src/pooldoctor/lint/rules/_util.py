"""Small helpers shared by the rules."""

from __future__ import annotations

import ast

from ..context import FuncNode, last_name

CACHE_DECORATORS = frozenset({"lru_cache", "cache", "cached", "cached_property", "memoize",
                              "memoized", "alru_cache", "cachedmethod", "once"})
ENTRY_DECORATORS = frozenset({"fixture", "yield_fixture", "command", "group", "main",
                              "on_event", "lifespan", "asynccontextmanager", "contextmanager",
                              "before_first_request", "before_serving", "startup"})
ENTRY_NAMES = frozenset({"main", "_main", "cli", "run", "run_migrations_online",
                         "run_migrations_offline", "create_app", "make_app", "app_factory",
                         "setup", "setUp", "setUpClass", "setup_class", "setup_module",
                         "setup_method", "__init__", "__post_init__", "lifespan", "startup",
                         "on_startup", "init_db", "init_app", "configure", "bootstrap"})


def is_cached(func: FuncNode) -> bool:
    return any(last_name(d) in CACHE_DECORATORS for d in func.decorator_list)


def is_entry_point(func: FuncNode) -> bool:
    """A function that runs once per program, test or app start (not per call or request)."""
    name = func.name
    if name in ENTRY_NAMES or name.startswith(("test_", "init_", "setup_", "configure_",
                                               "create_app", "bootstrap")):
        return True
    return any(last_name(d) in ENTRY_DECORATORS for d in func.decorator_list)


def kwarg(call: ast.Call, name: str) -> ast.keyword | None:
    for k in call.keywords:
        if k.arg == name:
            return k
    return None


def has_splat(call: ast.Call) -> bool:
    return any(k.arg is None for k in call.keywords) or any(
        isinstance(a, ast.Starred) for a in call.args)


def string_value(node: ast.AST | None) -> str | None:
    """A literal string, or an f-string with its placeholders as ``\\0``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant) and isinstance(v.value, str):
                parts.append(v.value)
            else:
                parts.append("\0")
        return "".join(parts)
    return None
