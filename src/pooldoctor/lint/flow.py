"""Flow-sensitive check that one opened resource is closed on every path of its function.

The function body is interpreted abstractly for one tracked variable (states and predicates in
``flowstate.py``, compound statements in ``flowcompound.py``). ``with``, ``try``/``except``/
``finally``, loops, ``break``/``continue``, early ``return`` and ``raise``, and the exception
that any call may raise are followed; a path that leaves the function with the state OPEN is a
leak.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .context import FuncNode, children, last_name, walk_shallow
from .flowcompound import CompoundStatements
from .flowstate import (
    CLOSED,
    CLOSERS,
    DETACHED,
    ESCAPED,
    HANDOVER,
    LOG_NAMES,
    OPEN,
    RELEASERS,
    SAFE_ANYWHERE,
    SAFE_CALLEES,
    SAFE_METHODS,
    UNBOUND,
    Outcome,
    Verdict,
    branch_closes,
    closes_var,
    escapes_in,
    is_name,
    mentions,
    returns_self,
    unwrap,
)

__all__ = ["CLOSERS", "Interpreter", "Verdict", "escapes_in"]


class Interpreter(CompoundStatements):
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
            if any(closes_var(n, var) or (isinstance(n, ast.Attribute) and is_name(n.value, var)
                   and n.attr in CLOSERS) for n in ast.walk(stmt)):
                s = self._escape(s, stmt)
            out.fall = s
            return out
        if isinstance(stmt, ast.Return):
            if stmt.value is not None:
                s = self.expr(stmt.value, s, out, stmt)
                if escapes_in(stmt.value, var) or (self.cursor_mode and returns_self(
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
                    is_name(t, var) for t in targets):
                for t in targets:
                    if isinstance(t, ast.Attribute) and is_name(t.value, "self"):
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
                if self.session_mode and isinstance(f, ast.Attribute) and is_name(f.value, var) \
                        and f.attr not in CLOSERS:
                    if f.attr in RELEASERS:
                        released = True
                    elif f.attr not in DETACHED:
                        reused = True
                if closes_var(n, var) or (name in self.closer_functions and any(
                        is_name(a, var) and i in self.closer_functions[name]
                        for i, a in enumerate(n.args))):
                    closed = True
                elif name in HANDOVER or name[:1].isupper():
                    if any(is_name(a, var) or self._is_close_ref(a) or escapes_in(a, var)
                           for a in n.args) or any(
                            escapes_in(k.value, var) or self._is_close_ref(k.value)
                            for k in n.keywords):
                        escaped = True
                    elif not self._safe_call(n):
                        raises = True
                elif any(self._is_close_ref(a) for a in n.args) or any(
                        self._is_close_ref(k.value) for k in n.keywords):
                    escaped = True  # atexit.register(conn.close), weakref.finalize(...)
                elif self.cursor_mode and not (isinstance(f, ast.Attribute) and is_name(
                        f.value, var)) and (any(is_name(a, var) for a in n.args) or any(
                        is_name(k.value, var) for k in n.keywords)):
                    escaped = True  # create_result_proxy(self, cursor): a new owner
                elif not self._safe_call(n) and not (skip_site and n is unwrap(node)):
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
            elif isinstance(n, ast.NamedExpr) and is_name(n.target, var):
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
        return isinstance(node, ast.Attribute) and node.attr in CLOSERS and is_name(
            node.value, self.var)

    def _safe_call(self, call: ast.Call) -> bool:
        f = call.func
        if last_name(call) in SAFE_ANYWHERE:
            return True
        if isinstance(f, ast.Name):
            return f.id in SAFE_CALLEES
        if isinstance(f, ast.Attribute):
            if is_name(f.value, self.var) and f.attr in SAFE_METHODS:
                return True
            base = f.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and (base.id in LOG_NAMES or base.id.endswith(
                    ("log", "logger"))):
                return True
        return False

    # ------------------------------------------------------------------ compound statements
