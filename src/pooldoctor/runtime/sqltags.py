"""Statement tags: every statement of a guarded connection carries who holds it.

With ``instrument(tag_sql=True)`` (``pooldoctor run --tag-sql``, ``?pooldoctor_tag_sql=1``) each
statement SQLAlchemy sends through a guarded engine gets a sqlcommenter comment appended::

    SELECT 1 /*pd_host='web-3',pd_pid='7',pd_pool='db:5432/app',pd_site='app/cases.py:42:load'*/

naming the host, the pid, the pool and the checkout's site, so the server watch attributes the
server connection from ``pg_stat_activity.query`` / the process list, from any host and through
PgBouncer. The comment of one site is one string, built once and cached: prepared-statement
caches keep working. Each site also remembers the tagged form of each statement it ran, so the
steady path of a statement is a few attribute reads and one dict lookup, no string built or
scanned, and the driver gets the same string object every time. With an active OpenTelemetry
span, ``traceparent`` is added too (that one changes per request). A statement that already
carries another tool's comment keeps it; ours goes after it.

The hook wraps the dialect's ``do_execute``, ``do_executemany`` and ``do_execute_no_params`` on
each guarded engine's dialect instance, and only while tagging is on: off, nothing is installed
(on MySQL/MariaDB not ``do_executemany``: PyMySQL and mysqlclient build a multi-row INSERT only
from a statement that ends with its VALUES clause). Raw psycopg and PyMySQL connections the
guard holds are tagged by ``runtime/rawtags.py``.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

from ..findings import shorten_path
from ..guard import GUARD
from ..sites import site_of
from ..sqlcomment import append, format_comment
from .drivers.core import HOLD
from .tags import hostname

_METHODS = ("do_execute", "do_executemany", "do_execute_no_params")
_SAVED = "_pd_sqltags_saved"
_SPECIAL = frozenset(";/ \t\r\n")  # statement endings that need append()'s care
OTEL = "opentelemetry.trace"  # imported: a span may be active, tags are built per statement
_modules = sys.modules

enabled = False
_dialects: weakref.WeakSet[Any] = weakref.WeakSet()

# One site's tags: (statement -> tagged, the same with % doubled, pairs, comment, comment with
# %% for %). The two dicts remember each statement's tagged string: the steady path is one
# lookup, and returns the very same string object every time (its hash is cached too).
Entry = tuple[dict[str, str], dict[str, str], dict[str, str], str, str]
# (id(code), lasti, id(pool info)) -> (code, pool info, entry)
_cache: dict[tuple[int, int, int], tuple[Any, Any, Entry]] = {}
_CACHE_MAX = 4096  # sites
_MEMO_MAX = 256  # statements per site and form
_MEMO_TOTAL = 65536  # statements over every site
_memo_count = 0


def _reset() -> None:
    global _memo_count
    _cache.clear()
    _memo_count = 0


os.register_at_fork(after_in_child=_reset)  # the comments carry the pid


def pool_label(info: Any) -> str:
    """The pool's name, else ``host:port/database`` (OpenTelemetry's pool name)."""
    name = getattr(info, "name", None)
    if name:
        return str(name)
    url = getattr(info, "url", None)
    if not isinstance(url, str):
        return str(info) if isinstance(info, str) else ""
    try:
        from ..urls import parse_url

        u = parse_url(url)
    except Exception:
        return ""
    where = f"{u.host}:{u.port}" if u.host and u.port else (u.host or "")
    return f"{where}/{u.database}" if u.database else where


def tag_pairs(frames: Any, info: Any, pid: int) -> dict[str, str]:
    """The tag's keys for a hold's stack and pool."""
    site = site_of(frames)
    pairs = {"pd_host": hostname(), "pd_pid": str(pid), "pd_pool": pool_label(info)}
    if site is not None:
        pairs["pd_site"] = f"{shorten_path(site.file)}:{site.line}:{site.function or ''}"
    return pairs


def entry_for(hold: Any) -> Entry:
    """The tags of a hold's site and pool (see ``Entry``), built once per site and pool."""
    frames = hold.frames
    info = hold.pool
    code = frames[0] if frames else None
    key = (id(code), frames[1] if frames else -1, id(info))
    hit = _cache.get(key)
    if hit is not None and hit[0] is code and hit[1] is info:
        return hit[2]
    pairs = tag_pairs(frames, info, hold.pid)
    plain = format_comment(pairs)
    entry: Entry = ({}, {}, pairs, plain, plain.replace("%", "%%"))
    if len(_cache) >= _CACHE_MAX:
        _reset()
    _cache[key] = (code, info, entry)
    return entry


def comments_for(hold: Any) -> tuple[dict[str, str], str, str]:
    """(pairs, comment, comment with ``%`` doubled) of a hold's site and pool, cached."""
    entry = entry_for(hold)
    return entry[2], entry[3], entry[4]


def _traceparent() -> str | None:
    """The W3C traceparent of the active OpenTelemetry span (only if the program uses it)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def tag(statement: str, hold: Any, interpolated: bool, entry: Entry | None = None) -> str:
    """``statement`` with the hold's comment appended (``interpolated``: the driver will
    apply ``%`` formatting, so a literal ``%`` must be written ``%%``)."""
    if entry is None:
        entry = entry_for(hold)
    comment = entry[4] if interpolated else entry[3]
    if OTEL in _modules and "traceparent=" not in statement:
        parent = _traceparent()  # (OpenTelemetry's own sqlcommenter may have written one)
        if parent is not None:  # per request: this statement's comment is built here
            comment = format_comment({**entry[2], "traceparent": parent})
            if interpolated:
                comment = comment.replace("%", "%%")
    last = statement[-1:]
    if last == "/" and statement.endswith(comment):
        return statement  # tagged already (a raw cursor under SQLAlchemy, a retry)
    if last in _SPECIAL or "--" in statement:
        return append(statement, comment)
    return statement + " " + comment


def tagged(statement: str, hold: Any, interpolated: bool) -> str:
    """The slow path of the execute wrappers (the first time a site runs a statement, or
    with OpenTelemetry imported): tag ``statement`` and remember the result on the site."""
    global _memo_count
    entry = hold.sqltag
    if entry is None:
        entry = hold.sqltag = entry_for(hold)
    if type(statement) is not str or not statement:
        return statement
    out = tag(statement, hold, interpolated, entry)
    if OTEL in _modules:
        return out  # may carry this request's traceparent: not for the next statement
    memo = entry[1 if interpolated else 0]
    if len(memo) >= _MEMO_MAX:
        memo.clear()
    _memo_count += 1
    if _memo_count > _MEMO_TOTAL:
        for _, _, other in list(_cache.values()):
            other[0].clear()
            other[1].clear()
        _memo_count = 0
    memo[statement] = out
    return out


def _make(orig: Callable[..., Any], name: str, formats: bool) -> Callable[..., Any]:
    # The steady path, inline: the hold on the pool's connection record, the site's tags on
    # the hold (set by the first statement of the checkout), the tagged statement in them.
    interpolated = formats and name != "do_execute_no_params"
    error = GUARD.internal_error

    if name == "do_execute_no_params":
        def no_params(cursor: Any, statement: str, context: Any = None) -> Any:
            if enabled:
                try:
                    h = context._dbapi_connection._connection_record.__dict__.get(HOLD)
                except AttributeError:
                    h = None  # no context, not a pool's connection, or closed
                if h is not None:
                    try:
                        t = h.sqltag
                        s = None if t is None or OTEL in _modules else t[0].get(statement)
                        statement = s if s is not None else tagged(statement, h, False)
                    except Exception:
                        error("sql tag")
            return orig(cursor, statement, context)

        return no_params

    def execute(cursor: Any, statement: str, parameters: Any, context: Any = None) -> Any:
        if enabled:
            try:
                h = context._dbapi_connection._connection_record.__dict__.get(HOLD)
            except AttributeError:
                h = None
            if h is not None:
                try:
                    i = interpolated and parameters is not None
                    t = h.sqltag
                    s = None if t is None or OTEL in _modules else t[1 if i else 0].get(statement)
                    statement = s if s is not None else tagged(statement, h, i)
                except Exception:
                    error("sql tag")
        return orig(cursor, statement, parameters, context)

    return execute


def wrap_dialect(dialect: Any) -> None:
    """Tag the statements of this dialect's engines (idempotent)."""
    d = dialect.__dict__
    if _SAVED in d:
        return
    formats = getattr(dialect, "paramstyle", "") in ("format", "pyformat")
    methods: tuple[str, ...] = _METHODS
    if getattr(dialect, "name", "") in ("mysql", "mariadb"):
        # PyMySQL's and mysqlclient's executemany() turn an INSERT ... VALUES into one
        # multi-row statement only when the statement ends with its VALUES clause
        methods = ("do_execute", "do_execute_no_params")
    d[_SAVED] = (methods, {name: d[name] for name in methods if name in d})
    for name in methods:
        d[name] = _make(getattr(dialect, name), name, formats)
    _dialects.add(dialect)


def unwrap_dialects() -> None:
    for dialect in list(_dialects):
        d = dialect.__dict__
        saved = d.pop(_SAVED, None)
        if saved is not None:
            methods, own = saved
            for name in methods:
                d.pop(name, None)
            d.update(own)
    _dialects.clear()


def enable(dialects: Any = ()) -> None:
    """Turn tagging on, for these dialects now and every guarded engine's from now on."""
    global enabled
    enabled = True
    for dialect in list(dialects):
        wrap_dialect(dialect)
    from . import rawtags

    rawtags.install()  # raw psycopg/PyMySQL connections (drivers imported later: dbapi.py)


def disable() -> None:
    """Turn tagging off and take the wrappers away."""
    global enabled
    enabled = False
    unwrap_dialects()
    _reset()
    from . import rawtags

    rawtags.uninstall()
