"""PD210: a slow or blocking call while a transaction or a checked-out connection is open.

Inside ``with engine.begin()``, ``with session.begin()``, ``with engine.connect() as conn``, a
DB-API ``with conn:`` transaction block, or a Session block after its first query, a
``time.sleep``, an HTTP request, a subprocess or ``input()`` keeps the connection (and the
transaction's locks) for as long as the slow call takes.
"""

from __future__ import annotations

import ast

from ..context import FuncNode, ModuleContext, last_name, walk_shallow
from ..resources import classify, is_engine_expr, local_bindings

CODE = "PD210"
BLOCKING_PREFIXES = ("requests.", "httpx.", "subprocess.", "urllib.request.urlopen",
                     "urllib3.request", "smtplib.SMTP", "ftplib.FTP", "paramiko.", "boto3.client")
BLOCKING = frozenset({"time.sleep", "asyncio.sleep", "builtins.input", "os.system",
                      "os.popen", "socket.create_connection", "trio.sleep", "anyio.sleep",
                      "gevent.sleep"})
_HTTP_VERBS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request",
                         "stream", "urlopen", "run", "call", "check_call", "check_output", "Popen",
                         "sleep", "system", "popen", "SMTP", "FTP", "create_connection", "client",
                         "Client"})
TXN_METHODS = frozenset({"begin", "begin_nested", "transaction"})
SESSION_USES = frozenset({"execute", "query", "get", "scalar", "scalars", "flush", "add",
                          "add_all", "merge", "delete", "refresh", "connection"})
SESSION_ENDS = frozenset({"commit", "rollback", "close", "expunge_all"})


def blocking_name(ctx: ModuleContext, call: ast.Call) -> str | None:
    f = call.func
    if isinstance(f, ast.Name) and f.id == "input" and "input" not in ctx.aliases:
        return "input"
    name = last_name(call)
    if name not in _HTTP_VERBS:
        return None
    q = ctx.qualname(f)
    if q is None:
        return None
    if q in BLOCKING or q.startswith(BLOCKING_PREFIXES):
        return q
    return None


def check(ctx: ModuleContext) -> None:
    done: set[int] = set()
    for node, func, cls in ctx.withs:
        opener = _opener(ctx, node, func, cls)
        if opener is None:
            continue
        what, session_var = opener
        _scan(ctx, node.body, what, session_var, node.lineno, func, done)
    # without `with`: only functions that open a connection or session themselves
    openers: dict[int, tuple[FuncNode, ast.ClassDef | None]] = {}
    for cs in ctx.calls:
        if cs.func is None or id(cs.func) in openers or not isinstance(cs.stmt, ast.Assign):
            continue
        kind = classify(ctx, cs.node, cs.func, cs.cls)
        if kind is not None and kind.code in ("PD201", "PD203"):
            openers[id(cs.func)] = (cs.func, cs.cls)
    for func, cls in openers.values():
        _linear(ctx, func, cls, done)


TXN_USES = SESSION_USES | {"executemany", "executescript", "callproc"}
TXN_ENDS = frozenset({"commit", "rollback", "close"})


def _linear(ctx: ModuleContext, func: FuncNode, cls: ast.ClassDef | None,
            done: set[int]) -> None:
    """Without `with`: from the first statement on an opened connection to its commit."""
    tracked: dict[str, str] = {}  # name -> what holds the transaction
    autocommit: set[str] = set()
    nodes = sorted((n for n in walk_shallow(func.body) if isinstance(n, (ast.Assign, ast.Call))),
                   key=lambda n: (n.lineno, n.col_offset))
    active: dict[str, int] = {}  # holder name -> line where its transaction began
    for node in nodes:
        if isinstance(node, ast.Assign):
            value = node.value.value if isinstance(node.value, ast.Await) else node.value
            target = node.targets[0] if len(node.targets) == 1 else None
            if isinstance(target, ast.Attribute) and target.attr == "autocommit" and isinstance(
                    target.value, ast.Name) and isinstance(node.value, ast.Constant) \
                    and node.value.value is True:
                autocommit.add(target.value.id)
            if not isinstance(target, ast.Name) or not isinstance(value, ast.Call):
                continue
            kind = classify(ctx, value, func, cls)
            f = value.func
            if kind is not None and kind.code in ("PD201", "PD203"):
                if any(k.arg in ("autocommit", "isolation_level") for k in value.keywords):
                    continue
                tracked[target.id] = f"{kind.noun} `{target.id}`"
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and f.value.id in tracked:
                if f.attr in ("cursor",):
                    tracked[target.id] = tracked[f.value.id]
                elif f.attr in TXN_METHODS:
                    tracked[target.id] = f"the transaction `{target.id}`"
                    active[target.id] = node.lineno
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                and f.value.id in tracked and f.value.id not in autocommit:
            holder = f.value.id
            if f.attr in TXN_USES:
                active.setdefault(holder, node.lineno)
            elif f.attr in TXN_ENDS:
                owner = tracked[holder]
                for ended in [n for n in active if tracked.get(n) == owner or n == holder]:
                    del active[ended]
            continue
        if not active or id(node) in done:
            continue
        name = blocking_name(ctx, node)
        if name is not None:
            holder, line = min(active.items(), key=lambda kv: kv[1])
            done.add(id(node))
            ctx.report(CODE, node, f"{name}() while the transaction of {tracked[holder]} "
                       f"(line {line}) is open: the connection and its locks are held for the "
                       "whole call; commit first, or make the call before it", func.name)


def _opener(ctx: ModuleContext, node: ast.With | ast.AsyncWith, func: FuncNode,
            cls: ast.ClassDef | None) -> tuple[str, str | None] | None:
    for item in node.items:
        e = item.context_expr
        if isinstance(e, ast.Await):
            e = e.value
        if not isinstance(e, ast.Call):
            if isinstance(e, ast.Name):
                value = local_bindings(ctx, func).get(e.id)
                if isinstance(value, ast.Call):
                    kind = classify(ctx, value, func, cls)
                    if kind is not None and kind.code == "PD201":
                        return f"the transaction of `{e.id}`", None
            continue
        f = e.func
        if isinstance(f, ast.Attribute) and f.attr in TXN_METHODS:
            return f"the transaction opened by {ctx.dotted(f) or f.attr}()", None
        kind = classify(ctx, e, func, cls)
        if kind is None or kind.code == "PD202":
            continue
        var = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
        if kind.noun == "session":
            return f"session `{var}`" if var else "the session", var or ""
        if isinstance(f, ast.Attribute) and f.attr == "connect" and is_engine_expr(
                ctx, f.value, func):
            return f"the connection checked out by {ctx.dotted(f)}()", None
        return f"the {kind.noun} from {kind.label}", None
    return None


def _scan(ctx: ModuleContext, body: list[ast.stmt], what: str, session_var: str | None,
          line: int, func: FuncNode, done: set[int]) -> None:
    active = session_var is None
    for stmt in body:
        for node in walk_shallow([stmt]):
            if not isinstance(node, ast.Call):
                continue
            if session_var and isinstance(node.func, ast.Attribute) and isinstance(
                    node.func.value, ast.Name) and node.func.value.id == session_var:
                if node.func.attr in SESSION_USES:
                    active = True
                elif node.func.attr in SESSION_ENDS:
                    active = False
                elif node.func.attr in TXN_METHODS:
                    active = True
                continue
            if not active or id(node) in done:
                continue
            name = blocking_name(ctx, node)
            if name is not None:
                done.add(id(node))
                ctx.report(CODE, node, f"{name}() while {what} (line {line}) is open: the "
                           "connection and its locks are held for the whole call; finish the "
                           "transaction first, or make the call before it", func.name)
