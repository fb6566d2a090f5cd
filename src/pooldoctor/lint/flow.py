"""Flow-sensitive check that one opened resource is closed on every path of its function.

The function body is interpreted abstractly for one tracked variable. The state is the set of
what the variable may be at a point: OPEN, CLOSED, ESCAPED (given to someone responsible: returned,
stored on ``self``, handed to an ExitStack...) or UNBOUND. ``with``, ``try``/``except``/``finally``,
loops, ``break``/``continue``, early ``return`` and ``raise``, and the exception that any call may
raise are followed; a path that leaves the function with the state OPEN is a leak.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field

from .context import FuncNode, children, last_name, walk_shallow

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


@dataclass
class Outcome:
    fall: int = 0
    exits: dict[tuple[str, int], tuple[int, ast.AST]] = field(default_factory=dict)

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


@dataclass
class Verdict:
    """What the interpretation found for one tracked resource."""

    overwrites: list[int] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)  # overwrites by `del name`
    leaks_return: list[int] = field(default_factory=list)
    leaks_raise: list[tuple[int, bool]] = field(default_factory=list)  # (line, explicit raise)
    leaks_end: bool = False
    closes: list[int] = field(default_factory=list)
    escapes: list[int] = field(default_factory=list)
    self_attrs: list[tuple[str, int]] = field(default_factory=list)
    releases: list[int] = field(default_factory=list)  # a Session's commit()/rollback()
    aborted: bool = False

    @property
    def leaks(self) -> bool:
        return bool(self.overwrites or self.leaks_return or self.leaks_raise or self.leaks_end)


def _is_name(node: ast.AST | None, var: str) -> bool:
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
    return bool(isinstance(f, ast.Attribute) and f.attr in CLOSERS and _is_name(f.value, var))


def branch_closes(stmts: Iterable[ast.stmt], var: str) -> bool:
    for node in walk_shallow(list(stmts)):
        if closes_var(node, var):
            return True
        if isinstance(node, ast.withitem) and _with_closes_expr(node.context_expr, var, True):
            return True
    return False


def _with_closes_expr(expr: ast.expr, var: str, with_closes: bool) -> bool:
    if _is_name(expr, var):
        return with_closes
    return isinstance(expr, ast.Call) and last_name(expr) in ("closing", "aclosing") \
        and bool(expr.args) and _is_name(expr.args[0], var)


def _is_broad(handler: ast.ExceptHandler) -> bool:
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


class Interpreter:
    """Interpret ``func`` for the variable ``var`` opened at ``site``."""

    def __init__(self, func: FuncNode, var: str, site: ast.stmt, with_closes: bool,
                 closer_functions: dict[str, frozenset[int]] | None = None,
                 yield_raises: bool = True,
                 site_call: ast.AST | None = None, cursor_mode: bool = False,
                 session_mode: bool = False) -> None:
        self.func = func
        # a Session: commit()/rollback() give its connection back to the pool, and using it
        # again takes one
        self.session_mode = session_mode
        self.cursor_mode = cursor_mode  # a cursor: handing it to any call hands it over
        self.site_call = site_call
        self.var = var
        self.site = site
        self.with_closes = with_closes
        self.closer_functions = closer_functions or {}
        self.yield_raises = yield_raises
        self.v = Verdict()

    # ------------------------------------------------------------------ entry

    def run(self) -> Verdict:
        self.site_guards: set[str] = set()
        for node in walk_shallow(self.func.body):
            if isinstance(node, (ast.Global, ast.Nonlocal)) and self.var in node.names:
                self.v.aborted = True
                return self.v
            if isinstance(node, ast.If) and any(n is self.site for n in walk_shallow(node.body)):
                self.site_guards.add(ast.dump(node.test))
        # a generator that never closes what it yields hands it to its consumer (an iterator of
        # connections); one that closes it after the yield owns it (FastAPI's get_db)
        self.owns = branch_closes(self.func.body, self.var)
        out = self.block(self.func.body, UNBOUND)
        if out.fall & OPEN:
            self.v.leaks_end = True
        for (kind, _), (state, node) in out.exits.items():
            if not state & OPEN:
                continue
            line = getattr(node, "lineno", 0)
            if kind == "return":
                self.v.leaks_return.append(line)
            elif kind == "raise":
                self.v.leaks_raise.append((line, isinstance(node, ast.Raise)))
        self.v.overwrites = sorted(set(self.v.overwrites))
        self.v.leaks_return = sorted(set(self.v.leaks_return))
        self.v.leaks_raise = sorted(set(self.v.leaks_raise))
        self.v.closes = sorted(set(self.v.closes))
        return self.v

    # ------------------------------------------------------------------ statements

    def block(self, stmts: list[ast.stmt], state: int) -> Outcome:
        out = Outcome()
        for stmt in stmts:
            if not state:
                break
            res = self.stmt(stmt, state)
            for (kind, _), (st, node) in res.exits.items():
                out.add_exit(kind, st, node)
            state = res.fall
        out.fall = state
        return out

    def stmt(self, stmt: ast.stmt, s: int) -> Outcome:
        out = Outcome()
        var = self.var
        if stmt is self.site and not isinstance(stmt, (ast.With, ast.AsyncWith)):
            value = getattr(stmt, "value", None)
            if value is not None:
                s = self.expr(value, s, out, stmt, skip_site=True)
            if s & OPEN:
                self.v.overwrites.append(stmt.lineno)
            out.fall = OPEN
            return out
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if any(closes_var(n, var) or (isinstance(n, ast.Attribute) and _is_name(n.value, var)
                   and n.attr in CLOSERS) for n in ast.walk(stmt)):
                s = self._escape(s, stmt)
            out.fall = s
            return out
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                s = self.expr(stmt.value, s, out, stmt)
                if escapes_in(stmt.value, var) or (self.cursor_mode and _returns_self(
                        stmt.value, var)):
                    s = self._escape(s, stmt)
            out.add_exit("return", s, stmt)
            return out
        if isinstance(stmt, ast.Raise):
            for part in (stmt.exc, stmt.cause):
                if part is not None:
                    s = self.expr(part, s, out, stmt)
            out.add_exit("raise", s, stmt)
            return out
        if isinstance(stmt, ast.Break):
            out.add_exit("break", s, stmt)
            return out
        if isinstance(stmt, ast.Continue):
            out.add_exit("continue", s, stmt)
            return out
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = stmt.value
            if value is not None:
                s = self.expr(value, s, out, stmt)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if value is not None and escapes_in(value, var) and not any(
                    _is_name(t, var) for t in targets):
                for t in targets:
                    if isinstance(t, ast.Attribute) and _is_name(t.value, "self"):
                        self.v.self_attrs.append((t.attr, stmt.lineno))
                s = self._escape(s, stmt)
            if not isinstance(stmt, ast.AugAssign) and not (value is not None
                                                          and mentions(value, var)):
                s = self._rebind(targets, s, stmt)
            out.fall = s
            return out
        if isinstance(stmt, ast.Expr):
            out.fall = self.expr(stmt.value, s, out, stmt)
            return out
        if isinstance(stmt, ast.Delete):
            s = self._rebind(stmt.targets, s, stmt)
            out.fall = s
            return out
        if isinstance(stmt, ast.If):
            return self._if(stmt, s)
        if isinstance(stmt, (ast.For, ast.AsyncFor, ast.While)):
            return self._loop(stmt, s)
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            return self._with(stmt, s)
        if isinstance(stmt, ast.Try) or type(stmt).__name__ == "TryStar":
            return self._try(stmt, s)  # type: ignore[arg-type]
        if isinstance(stmt, ast.Match):
            s = self.expr(stmt.subject, s, out, stmt)
            res = Outcome(fall=s)  # no case taken
            for case in stmt.cases:
                res.merge(self.block(case.body, s))
            out.merge(res)
            return out
        if isinstance(stmt, ast.Assert):
            s = self.expr(stmt.test, s, out, stmt)
            out.add_exit("raise", s, stmt)
            out.fall = s
            return out
        out.fall = s
        return out

    def _escape(self, s: int, node: ast.AST) -> int:
        if s & OPEN:
            self.v.escapes.append(getattr(node, "lineno", 0))
            return (s & ~OPEN) | ESCAPED
        return s

    def _rebind(self, targets: Iterable[ast.expr], s: int, stmt: ast.stmt) -> int:
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name) and n.id == self.var and isinstance(
                        n.ctx, (ast.Store, ast.Del)):
                    if s & OPEN:
                        self.v.overwrites.append(stmt.lineno)
                        if isinstance(n.ctx, ast.Del):
                            self.v.deletes.append(stmt.lineno)
                    return UNBOUND
        return s

    # ------------------------------------------------------------------ expressions

    def expr(self, node: ast.expr, s: int, out: Outcome, stmt: ast.AST,
             skip_site: bool = False) -> int:
        """Apply the effects of ``node`` on the state; record the exception it may raise."""
        var = self.var
        raises = False
        closed = False
        escaped = False
        rebind = False
        released = reused = False
        stack: list[ast.AST] = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, ast.Call):
                name = last_name(n)
                f = n.func
                if self.session_mode and isinstance(f, ast.Attribute) and _is_name(f.value, var) \
                        and f.attr not in CLOSERS:
                    if f.attr in RELEASERS:
                        released = True
                    elif f.attr not in DETACHED:
                        reused = True
                if closes_var(n, var) or (name in self.closer_functions and any(
                        _is_name(a, var) and i in self.closer_functions[name]
                        for i, a in enumerate(n.args))):
                    closed = True
                elif name in HANDOVER or name[:1].isupper():
                    if any(_is_name(a, var) or self._is_close_ref(a) or escapes_in(a, var)
                           for a in n.args) or any(
                            escapes_in(k.value, var) or self._is_close_ref(k.value)
                            for k in n.keywords):
                        escaped = True
                    elif not self._safe_call(n):
                        raises = True
                elif any(self._is_close_ref(a) for a in n.args) or any(
                        self._is_close_ref(k.value) for k in n.keywords):
                    escaped = True  # atexit.register(conn.close), weakref.finalize(...)
                elif self.cursor_mode and not (isinstance(f, ast.Attribute) and _is_name(
                        f.value, var)) and (any(_is_name(a, var) for a in n.args) or any(
                        _is_name(k.value, var) for k in n.keywords)):
                    escaped = True  # create_result_proxy(self, cursor): a new owner
                elif not self._safe_call(n) and not (skip_site and n is _unwrap(node)):
                    raises = True
                if isinstance(f, ast.Attribute) or not isinstance(f, ast.Name):
                    stack.append(f)
                stack.extend(n.args)
                stack.extend(k.value for k in n.keywords)
                continue
            if isinstance(n, ast.Await):
                inner = n.value
                if not (skip_site and n is node) and not (
                        isinstance(inner, ast.Call) and self._safe_call(inner)):
                    raises = True
            elif isinstance(n, (ast.Yield, ast.YieldFrom)):
                raises = raises or self.yield_raises
                if not self.owns and self.yield_raises and escapes_in(n.value, var):
                    escaped = True
            elif isinstance(n, ast.Lambda):
                if any(closes_var(x, var) or self._is_close_ref(x) for x in ast.walk(n)):
                    escaped = True
                continue
            elif isinstance(n, ast.NamedExpr) and _is_name(n.target, var):
                rebind = True
            stack.extend(children(n))
        if reused and s & CLOSED and not s & OPEN:
            s = (s & ~CLOSED) | OPEN
        if raises:
            out.add_exit("raise", s, stmt)
        if closed and self.v.releases and not s & OPEN:
            self.v.closes.append(getattr(stmt, "lineno", 0))  # commit() then close()
        if released and s & OPEN and not closed:
            self.v.releases.append(getattr(stmt, "lineno", 0))
            s = (s & ~OPEN) | CLOSED
        if closed and s & OPEN:
            self.v.closes.append(getattr(stmt, "lineno", 0))
            s = (s & ~OPEN) | CLOSED
        if escaped:
            s = self._escape(s, stmt)
        if rebind:
            s = self._rebind([ast.Name(id=var, ctx=ast.Store())], s, stmt)  # type: ignore
        return s

    def _is_close_ref(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr in CLOSERS and _is_name(
            node.value, self.var)

    def _safe_call(self, call: ast.Call) -> bool:
        f = call.func
        if last_name(call) in SAFE_ANYWHERE:
            return True
        if isinstance(f, ast.Name):
            return f.id in SAFE_CALLEES
        if isinstance(f, ast.Attribute):
            if _is_name(f.value, self.var) and f.attr in SAFE_METHODS:
                return True
            base = f.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and (base.id in LOG_NAMES or base.id.endswith(
                    ("log", "logger"))):
                return True
        return False

    # ------------------------------------------------------------------ compound statements

    def _if(self, stmt: ast.If, s: int) -> Outcome:
        out = Outcome()
        s = self.expr(stmt.test, s, out, stmt)
        s_true = s_false = s
        if mentions(stmt.test, self.var) or (self.site_guards
                                             and ast.dump(stmt.test) in self.site_guards):
            # a test on the resource guards its close: `if conn: conn.close()`; so does the
            # test that guarded its opening: `if use_db: conn = ...` ... `if use_db: conn.close()`
            body_closes = branch_closes(stmt.body, self.var)
            else_closes = branch_closes(stmt.orelse, self.var)
            not_open = ((s & ~OPEN) | UNBOUND) if s & OPEN else s
            if body_closes and not else_closes:
                s_false = not_open
            elif else_closes and not body_closes:
                s_true = not_open
        out.merge(self.block(stmt.body, s_true))
        out.merge(self.block(stmt.orelse, s_false) if stmt.orelse else Outcome(fall=s_false))
        return out

    def _loop(self, stmt: ast.For | ast.AsyncFor | ast.While, s: int) -> Outcome:
        out = Outcome()
        infinite = False
        closes_all = False
        if isinstance(stmt, ast.While):
            s = self.expr(stmt.test, s, out, stmt)
            infinite = isinstance(stmt.test, ast.Constant) and bool(stmt.test.value)
        else:
            s = self.expr(stmt.iter, s, out, stmt)
            if isinstance(stmt.iter, (ast.Tuple, ast.List)) and any(
                    _is_name(e, self.var) for e in stmt.iter.elts) and isinstance(
                    stmt.target, ast.Name) and branch_closes(stmt.body, stmt.target.id):
                closes_all = True  # for c in (cur, conn): c.close()
        entry = s
        body = Outcome()
        for _ in range(8):
            head = entry
            if not isinstance(stmt, ast.While):
                head = self._rebind([stmt.target], head, stmt)
            body = self.block(stmt.body, head)
            cont = 0
            for (kind, _), (st, _node) in body.exits.items():
                if kind == "continue":
                    cont |= st
            new_entry = entry | body.fall | cont
            if new_entry == entry:
                break
            entry = new_entry
        breaks = 0
        for (kind, key), (st, node) in body.exits.items():
            if kind == "break":
                breaks |= st
            elif kind != "continue":
                out.exits[(kind, key)] = (st | out.exits.get((kind, key), (0, node))[0], node)
        after = 0 if infinite else entry
        if stmt.orelse and after:
            other = self.block(stmt.orelse, after)
            out.merge(Outcome(exits=other.exits))
            after = other.fall
        out.fall = after | breaks
        if closes_all and out.fall & OPEN:
            self.v.closes.append(stmt.lineno)
            out.fall = (out.fall & ~OPEN) | CLOSED
        return out

    def _with(self, stmt: ast.With | ast.AsyncWith, s: int) -> Outcome:
        out = Outcome()
        closes_on_exit = False
        suppresses = False
        for item in stmt.items:
            expr = item.context_expr
            if stmt is self.site and _unwrap(expr) is self.site_call:
                s = self.expr(expr, s, out, stmt, skip_site=True)
                if s & OPEN:
                    self.v.overwrites.append(stmt.lineno)
                s = OPEN
                continue
            s = self.expr(expr, s, out, stmt)
            if _with_closes_expr(expr, self.var, self.with_closes):
                closes_on_exit = True
            if isinstance(expr, ast.Call) and last_name(expr) == "suppress":
                suppresses = True
            if item.optional_vars is not None and not mentions(expr, self.var):
                s = self._rebind([item.optional_vars], s, stmt)
        body = self.block(stmt.body, s)
        if suppresses:
            for (kind, key), (st, _node) in list(body.exits.items()):
                if kind == "raise":
                    body.fall |= st
                    del body.exits[(kind, key)]
        if closes_on_exit:
            self.v.closes.append(stmt.lineno)
            body.fall = _close(body.fall)
            body.exits = {k: (_close(st), n) for k, (st, n) in body.exits.items()}
        out.merge(body)
        return out

    def _try(self, stmt: ast.Try, s: int) -> Outcome:
        body = self.block(stmt.body, s)
        raised = 0
        passthrough = Outcome()
        for (kind, key), (st, node) in body.exits.items():
            if kind == "raise":
                raised |= st
                if stmt.handlers:
                    continue
            passthrough.exits[(kind, key)] = (st, node)
        pre = Outcome()
        if stmt.handlers:
            broad = any(_is_broad(h) for h in stmt.handlers)
            if not broad:
                for (kind, key), (st, node) in body.exits.items():
                    if kind == "raise":
                        passthrough.exits[(kind, key)] = (st, node)
            for h in stmt.handlers:
                if raised:
                    pre.merge(self.block(h.body, raised))
        pre.merge(passthrough)
        if stmt.orelse:
            pre.merge(self.block(stmt.orelse, body.fall))
        else:
            pre.fall |= body.fall
        if not stmt.finalbody:
            return pre
        out = Outcome()
        memo: dict[int, Outcome] = {}

        def fin(state: int) -> Outcome:
            if state not in memo:
                res = self.block(stmt.finalbody, state)
                # a close in `finally` is what a reviewer asks for: an error raised by other
                # clean-up work in the same finally is not held against it
                res.exits = {k: v for k, v in res.exits.items()
                             if k[0] != "raise" or isinstance(v[1], ast.Raise)}
                memo[state] = res
            return memo[state]

        if pre.fall:
            res = fin(pre.fall)
            out.fall = res.fall
            out.merge(Outcome(exits=res.exits))
        for (kind, _key), (st, node) in pre.exits.items():
            res = fin(st)
            out.add_exit(kind, res.fall, node)
            out.merge(Outcome(exits=res.exits))
        return out


def _returns_self(node: ast.expr, var: str) -> bool:
    """``return cur.execute(...)``: DB-API cursors' execute returns the cursor itself."""
    node = _unwrap(node)  # type: ignore[assignment]
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_name(
        node.func.value, var) and node.func.attr in ("execute", "executemany", "executescript")


def _close(state: int) -> int:
    return (state & ~OPEN) | CLOSED if state & OPEN else state


def _unwrap(node: ast.AST) -> ast.AST:
    return node.value if isinstance(node, ast.Await) else node
