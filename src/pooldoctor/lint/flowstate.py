"""The abstract states of one tracked resource, what a path leaves behind, and the predicates
on a tracked name that the interpreter (``flow.py``) asks about expressions.

A state is a set of bits: what the variable may be at a point of its function: OPEN, CLOSED,
ESCAPED (given to someone responsible: returned, stored on ``self``, handed to an ExitStack...)
or UNBOUND.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .context import last_name, walk_shallow

OPEN, CLOSED, ESCAPED, UNBOUND = 1, 2, 4, 8

CLOSERS = frozenset({"close", "aclose", "dispose", "terminate"})
# calls that hand the object (or its close method) to someone who will close it
HANDOVER = frozenset({
    "enter_context", "enter_async_context", "push", "push_async_exit", "callback",
    "push_async_callback", "append", "appendleft", "add", "put", "put_nowait", "insert",
    "extend", "setdefault", "register", "addCleanup", "addfinalizer", "finalize", "update",
    "closing", "aclosing",
})
# methods of the resource itself that a reviewer does not expect to fail
SAFE_METHODS = frozenset({"cursor", "set_session", "set_isolation_level", "set_client_encoding",
                          "autocommit", "set_character_set", "row_factory", "begin",
                          "execution_options", "select_db", "rollback", "thread_id",
                          "get_server_info", "get_host_info", "server_version", "fileno",
                          "character_set_name", "get_dsn_parameters"})
SAFE_CALLEES = frozenset({"print", "isinstance", "len", "str", "repr", "id", "bool", "getattr",
                          "hasattr", "type", "locals", "globals"})
# context managers and closers a reviewer does not expect to fail
SAFE_ANYWHERE = CLOSERS | {"suppress", "closing", "aclosing", "ExitStack", "AsyncExitStack",
                           "nullcontext"}
# a Session's methods that give its connection back, and those that take none
RELEASERS = frozenset({"commit", "rollback"})
DETACHED = frozenset({"add", "add_all", "expunge", "expunge_all", "expire", "expire_all",
                      "info", "is_active", "new", "dirty", "deleted", "in_transaction"})
LOG_NAMES = ("log", "logger", "logging", "LOG", "LOGGER", "_log", "_logger", "warnings")
BROAD = frozenset({"Exception", "BaseException"})


class Outcome:
    """The state falling through a statement and the states leaving by each exit (plain
    classes here: dataclasses cost a one-file run their generated methods at import)."""

    __slots__ = ("exits", "fall")

    def __init__(self, fall: int = 0,
                 exits: dict[tuple[str, int], tuple[int, ast.AST]] | None = None) -> None:
        self.fall = fall
        self.exits: dict[tuple[str, int], tuple[int, ast.AST]] = {} if exits is None else exits

    def add_exit(self, kind: str, state: int, node: ast.AST) -> None:
        if not state:
            return
        key = (kind, id(node))
        old = self.exits.get(key)
        self.exits[key] = ((old[0] | state) if old else state, node)

    def merge(self, other: Outcome) -> None:
        self.fall |= other.fall
        for (kind, _), (state, node) in other.exits.items():
            self.add_exit(kind, state, node)


class Verdict:
    """What the interpretation found for one tracked resource."""

    def __init__(self) -> None:
        self.overwrites: list[int] = []
        self.deletes: list[int] = []  # overwrites by `del name`
        self.leaks_return: list[int] = []
        self.leaks_raise: list[tuple[int, bool]] = []  # (line, explicit raise)
        self.leaks_end = False
        self.closes: list[int] = []
        self.escapes: list[int] = []
        self.self_attrs: list[tuple[str, int]] = []
        self.releases: list[int] = []  # a Session's commit()/rollback()
        self.aborted = False

    @property
    def leaks(self) -> bool:
        return bool(self.overwrites or self.leaks_return or self.leaks_raise or self.leaks_end)


def is_name(node: ast.AST | None, var: str) -> bool:
    return isinstance(node, ast.Name) and node.id == var


def escapes_in(node: ast.AST | None, var: str) -> bool:
    """Is ``var`` itself the value (or part of a container, or given to a constructor)?"""
    if node is None:
        return False
    if isinstance(node, ast.Name):
        return node.id == var
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(escapes_in(e, var) for e in node.elts)
    if isinstance(node, ast.Dict):
        return any(escapes_in(v, var) for v in node.values)
    if isinstance(node, ast.Starred):
        return escapes_in(node.value, var)
    if isinstance(node, ast.IfExp):
        return escapes_in(node.body, var) or escapes_in(node.orelse, var)
    if isinstance(node, ast.Await):
        return escapes_in(node.value, var)
    if isinstance(node, ast.Call):
        name = last_name(node)
        if name[:1].isupper() or name in HANDOVER:
            return any(escapes_in(a, var) for a in node.args) or any(
                escapes_in(k.value, var) for k in node.keywords)
    return False


def mentions(node: ast.AST, var: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == var for n in ast.walk(node))


def closes_var(node: ast.AST, var: str) -> bool:
    """Does ``node`` (a call) close ``var``: ``var.close()``, ``closing(var)``..."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    return bool(isinstance(f, ast.Attribute) and f.attr in CLOSERS and is_name(f.value, var))


def branch_closes(stmts: Iterable[ast.stmt], var: str) -> bool:
    for node in walk_shallow(list(stmts)):
        if closes_var(node, var):
            return True
        if isinstance(node, ast.withitem) and with_closes_expr(node.context_expr, var, True):
            return True
    return False


def with_closes_expr(expr: ast.expr, var: str, with_closes: bool) -> bool:
    if is_name(expr, var):
        return with_closes
    return isinstance(expr, ast.Call) and last_name(expr) in ("closing", "aclosing") \
        and bool(expr.args) and is_name(expr.args[0], var)


def is_broad(handler: ast.ExceptHandler) -> bool:
    t = handler.type
    if t is None:
        return True
    types = t.elts if isinstance(t, ast.Tuple) else [t]
    for x in types:
        name = x.attr if isinstance(x, ast.Attribute) else (x.id if isinstance(x, ast.Name)
                                                            else "")
        if name in BROAD:
            return True
    return False


def returns_self(node: ast.expr, var: str) -> bool:
    """``return cur.execute(...)``: DB-API cursors' execute returns the cursor itself."""
    node = unwrap(node)  # type: ignore[assignment]
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_name(
        node.func.value, var) and node.func.attr in ("execute", "executemany", "executescript")


def close_state(state: int) -> int:
    return (state & ~OPEN) | CLOSED if state & OPEN else state


def unwrap(node: ast.AST) -> ast.AST:
    return node.value if isinstance(node, ast.Await) else node
