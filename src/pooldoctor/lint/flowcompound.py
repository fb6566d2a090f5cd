"""The compound statements of the interpretation (``flow.py``): ``if``, loops, ``with`` and
``try``, each turning the state at its entry into the states at its exits."""

from __future__ import annotations

import ast

from .context import last_name
from .flowstate import (
    CLOSED,
    OPEN,
    UNBOUND,
    Outcome,
    Verdict,
    branch_closes,
    close_state,
    is_broad,
    is_name,
    mentions,
    unwrap,
    with_closes_expr,
)


class CompoundStatements:
    """``if``/``for``/``while``/``with``/``try`` for ``Interpreter``, which supplies the
    attributes and the simple statements and expressions declared here."""

    var: str
    v: Verdict
    site: ast.stmt
    site_call: ast.AST | None
    site_guards: set[str]
    with_closes: bool

    def block(self, stmts: list[ast.stmt], state: int) -> Outcome:
        raise NotImplementedError

    def expr(self, node: ast.expr, s: int, out: Outcome, stmt: ast.AST,
             skip_site: bool = False) -> int:
        raise NotImplementedError

    def _rebind(self, targets: list[ast.expr], s: int, stmt: ast.stmt) -> int:
        raise NotImplementedError

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
                    is_name(e, self.var) for e in stmt.iter.elts) and isinstance(
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
            if stmt is self.site and unwrap(expr) is self.site_call:
                s = self.expr(expr, s, out, stmt, skip_site=True)
                if s & OPEN:
                    self.v.overwrites.append(stmt.lineno)
                s = OPEN
                continue
            s = self.expr(expr, s, out, stmt)
            if with_closes_expr(expr, self.var, self.with_closes):
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
            body.fall = close_state(body.fall)
            body.exits = {k: (close_state(st), n) for k, (st, n) in body.exits.items()}
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
            broad = any(is_broad(h) for h in stmt.handlers)
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

