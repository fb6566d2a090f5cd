"""Findings, sites and the catalogue of codes (a public, stable interface)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from .record import FrozenRecord, Record

TYPE_CHECKING = False  # no typing at run time (start-up: docs/benchmarks.md)
if TYPE_CHECKING:
    from typing import Any, Literal

    Severity = Literal["error", "warning", "info"]

_set = object.__setattr__  # frozen records set their fields in __init__


class Code(FrozenRecord):
    """One entry of the catalogue: a stable code and what it stands for."""

    __slots__ = _fields = ("code", "name", "severity", "title", "hint")
    code: str
    name: str
    severity: Severity
    title: str
    hint: str

    def __init__(self, code: str, name: str, severity: Severity, title: str,
                 hint: str) -> None:
        _set(self, "code", code)
        _set(self, "name", name)
        _set(self, "severity", severity)
        _set(self, "title", title)
        _set(self, "hint", hint)


_CATALOGUE: tuple[Code, ...] = (
    # runtime
    Code("PD101", "held-too-long", "warning",
         "connection held longer than the leak threshold",
         "return it on every path: `with engine.connect() as conn:` or close() in a finally"),
    Code("PD102", "garbage-collected", "error",
         "connection reclaimed by the garbage collector without being returned or closed",
         "close the connection explicitly; the garbage collector is not a pool manager"),
    Code("PD103", "pool-exhausted", "error",
         "pool exhausted: a checkout timed out",
         "find the holders listed in the finding; raise pool_size only after fixing leaks"),
    Code("PD104", "engine-proliferation", "warning",
         "several engines (and pools) for one URL in one process",
         "create one engine per URL per process, at module level, and share it"),
    Code("PD105", "held-at-exit", "error",
         "connection still checked out or open at exit or at the end of a test",
         "close connections and sessions before the program or test ends"),
    Code("PD106", "used-across-fork", "error",
         "pooled connection created in another process used after fork()",
         "call engine.dispose(close=False) in the child after fork, "
         "or instrument(fork_safety='repair')"),
    Code("PD107", "long-transaction", "warning",
         "transaction open longer than the transaction threshold",
         "commit or roll back before slow work; keep transactions short"),
    Code("PD108", "site-holds-many", "warning",
         "one site holds many connections at once",
         "share one connection or a pool instead of opening one per object"),
    Code("PD109", "checkout-waited", "info",
         "checkout had to wait for a free connection (pool near exhaustion)",
         "look for long holds; size the pool for the program's concurrency"),
    Code("PD110", "held-by-ended-thread", "error",
         "connection held by a thread that has ended",
         "close or return it before the thread ends (Django: connection.close() at the end of "
         "the thread's work)"),
    # lint
    Code("PD201", "dbapi-not-closed", "error",
         "DB-API connection not closed on every path",
         "use `with contextlib.closing(driver.connect(...)) as conn:` or close() in finally"),
    Code("PD202", "cursor-not-closed", "warning",
         "cursor not closed",
         "use `with conn.cursor() as cur:` or close() in finally"),
    Code("PD203", "sqlalchemy-not-closed", "error",
         "SQLAlchemy Connection or Session not closed on every path",
         "use `with engine.connect() as conn:` / `with Session() as session:`"),
    Code("PD204", "engine-per-call", "error",
         "engine created per call",
         "create the engine once at module level (or cache it per URL) and share it"),
    Code("PD205", "cached-session", "error",
         "session or connection cached with lru_cache/cache",
         "cache the engine or sessionmaker, never a Session or Connection"),
    Code("PD206", "scoped-session-not-removed", "warning",
         "scoped_session without remove()",
         "call Session.remove() at the end of each request or thread"),
    Code("PD207", "unbounded-overflow", "warning",
         "unbounded overflow (max_overflow=-1)",
         "give max_overflow a bound the server can take"),
    Code("PD208", "mysql-no-recycle", "warning",
         "MySQL pool without pool_recycle or pool_pre_ping",
         "set pool_recycle below wait_timeout, or pool_pre_ping=True"),
    Code("PD209", "password-in-url", "error",
         "password written in a database URL or connect() call",
         "read the password from the environment or a secret store"),
    Code("PD210", "blocking-in-transaction", "warning",
         "slow or blocking call inside an open transaction",
         "finish the transaction before the slow call, or do the slow call first"),
    Code("PD211", "generator-dependency-next", "error",
         "generator dependency consumed with next() and never closed",
         "use `with contextlib.contextmanager(get_db)() as db:` or close the generator"),
    # server
    Code("PD301", "near-server-limit", "error",
         "near the server's connection limit",
         "find who holds the connections (snapshot) before raising max_connections"),
    Code("PD302", "idle-in-transaction", "warning",
         "connection idle in transaction",
         "commit or roll back; set idle_in_transaction_session_timeout"),
    Code("PD303", "connection-growth", "warning",
         "connection count growing (leak trend)",
         "run the application under `pooldoctor run` to find the holding site"),
    Code("PD304", "idle-too-long", "info",
         "connections idle longer than a limit",
         "close idle connections or lower the pool size and pool_recycle"),
    Code("PD305", "connections-rejected", "error",
         "connections rejected for the server's limit",
         "find and fix the leaking or oversized pools before raising the limit"),
    # configuration
    Code("PD401", "workers-exceed-server", "error",
         "workers x (pool_size + max_overflow) exceeds what the server allows",
         "lower pool_size/max_overflow or the number of workers, or raise the limit"),
    Code("PD402", "pool-smaller-than-concurrency", "warning",
         "pool smaller than the program's concurrency",
         "size the pool to the concurrency that checks out connections"),
    Code("PD403", "recycle-vs-idle-timeout", "warning",
         "pool_recycle missing or longer than the server's idle timeout",
         "set pool_recycle below the server's idle timeout, or pool_pre_ping=True"),
    Code("PD404", "unbounded-pool", "warning",
         "unbounded pool",
         "bound the pool (max_overflow >= 0) so one process cannot take the server"),
)

CATALOGUE: Mapping[str, Code] = {c.code: c for c in _CATALOGUE}


def doc_page(code: str) -> str | None:
    """The Markdown page of ``code`` shipped with the package (docs/codes/), or None."""
    import os

    path = os.path.join(os.path.dirname(__file__), "codes", f"{code}.md")
    try:
        with open(path, encoding="utf-8") as f:  # installed as files: no importlib.resources
            return f.read()
    except OSError:
        pass
    from importlib import resources  # a zip or another loader

    try:
        return (resources.files("pooldoctor") / "codes" / f"{code}.md").read_text("utf-8")
    except (FileNotFoundError, OSError):
        return None


def lookup(code: str) -> Code:
    """Return the catalogue entry for ``code`` (``KeyError`` if unknown)."""
    return CATALOGUE[code.upper()]


class Site(FrozenRecord):
    """Where a finding points: a file, a line, a function (and a column for lint)."""

    __slots__ = _fields = ("file", "line", "function", "column")
    file: str
    line: int
    function: str | None
    column: int | None

    def __init__(self, file: str, line: int, function: str | None = None,
                 column: int | None = None) -> None:
        _set(self, "file", file)
        _set(self, "line", line)
        _set(self, "function", function)
        _set(self, "column", column)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"file": self.file, "line": self.line, "function": self.function}
        if self.column is not None:
            d["column"] = self.column
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Site:
        return cls(d["file"], int(d["line"]), d.get("function"), d.get("column"))

    def short(self) -> str:
        """``file:line in function`` with the file relative to the cwd when inside it."""
        text = f"{shorten_path(self.file)}:{self.line}"
        if self.function:
            text += f" in {self.function}"
        return text


CWD_ENV = "POOLDOCTOR_CWD"  # `pooldoctor run` sets it: sites read from where the user is


def shorten_path(path: str) -> str:
    """``path`` relative to the working directory (``$POOLDOCTOR_CWD`` under `pooldoctor
    run`) when inside it, else as it is (also when the working directory is gone)."""
    import os

    try:
        base = os.environ.get(CWD_ENV)
        rel = os.path.relpath(path, base) if base else os.path.relpath(path)
    except (ValueError, OSError):  # another drive; the working directory was removed
        return path
    return path if rel.startswith("..") else rel


def utc_iso(ts: float | None = None) -> str:
    """An ISO-8601 UTC timestamp with a Z, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


class Finding(Record):
    """Something worth telling a person, with a code from the catalogue."""

    __slots__ = _fields = ("code", "message", "site", "stack", "count", "pids", "first_seen",
                           "last_seen", "details")

    def __init__(self, code: str, message: str, site: Site | None = None,
                 stack: list[Site] | None = None, count: int = 1, pids: list[int] | None = None,
                 first_seen: str | None = None, last_seen: str = "",
                 details: dict[str, Any] | None = None) -> None:
        if code not in CATALOGUE:
            raise ValueError(f"unknown finding code {code!r}")
        self.code = code
        self.message = message
        self.site = site
        self.stack: list[Site] = [] if stack is None else stack
        self.count = count
        self.pids: list[int] = [] if pids is None else pids
        self.first_seen = utc_iso() if first_seen is None else first_seen
        self.last_seen = last_seen or self.first_seen
        self.details: dict[str, Any] = {} if details is None else details

    @property
    def name(self) -> str:
        return CATALOGUE[self.code].name

    @property
    def severity(self) -> Severity:
        return CATALOGUE[self.code].severity

    @property
    def hint(self) -> str:
        return CATALOGUE[self.code].hint

    def key(self) -> tuple[str, str | None, int | None, str | None]:
        """Findings with the same key are merged into one with a count."""
        s = self.site
        return (self.code, s.file if s else None, s.line if s else None, s.function if s else None)

    def merge(self, other: Finding) -> None:
        """Fold ``other`` (same key) into this finding."""
        self.count += other.count
        for pid in other.pids:
            if pid not in self.pids:
                self.pids.append(pid)
        self.first_seen = min(self.first_seen, other.first_seen)
        callers = merge_callers(self.details.get("callers"), other.details.get("callers"))
        factory = bool(self.details.get("factory") or other.details.get("factory"))
        if other.last_seen >= self.last_seen:
            self.last_seen = other.last_seen
            self.message = other.message
            self.details.update(other.details)
        if callers:
            self.details["callers"] = callers
        if factory:
            self.details["factory"] = True
        if not self.stack and other.stack:
            self.stack = other.stack

    def callers(self) -> list[tuple[Site, int]]:
        """The distinct callers of the site that leaked, most frequent first (``details``)."""
        out: list[tuple[Site, int]] = []
        for c in self.details.get("callers") or ():
            try:
                out.append((Site.from_dict(c), int(c.get("count", 1))))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        return out

    def where(self) -> str:
        """Where to look, shortened: the caller first when the site is a factory that handed
        the connection to one caller (``test.py:9 in test_a, through db.py:3 in connect``)."""
        if self.site is None:
            return "an unknown site"
        callers = self.callers()
        if self.details.get("factory") and callers:
            first = callers[0][0].short()
            more = f" (and {len(callers) - 1} more callers)" if len(callers) > 1 else ""
            return f"{first}{more}, through {self.site.short()}"
        return self.site.short()

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "site": self.site.to_dict() if self.site else None,
            "stack": [s.to_dict() for s in self.stack],
            "count": self.count,
            "pids": list(self.pids),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        return cls(
            code=d["code"],
            message=d["message"],
            site=Site.from_dict(d["site"]) if d.get("site") else None,
            stack=[Site.from_dict(s) for s in d.get("stack") or ()],
            count=int(d.get("count", 1)),
            pids=list(d.get("pids") or ()),
            first_seen=d.get("first_seen") or utc_iso(),
            last_seen=d.get("last_seen") or "",
            details=dict(d.get("details") or {}),
        )


def merge_callers(a: Any, b: Any) -> list[dict[str, Any]]:
    """Two ``details["callers"]`` lists as one: counts added by (file, line, function), most
    frequent first."""
    merged: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for lst in (a, b):
        for c in lst if isinstance(lst, list) else ():
            if not isinstance(c, dict):
                continue
            k = (c.get("file"), c.get("line"), c.get("function"))
            if k in merged:
                merged[k]["count"] = merged[k].get("count", 1) + c.get("count", 1)
            else:
                merged[k] = dict(c)
    return sorted(merged.values(), key=lambda c: -int(c.get("count", 1)))


def merge_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Merge findings that share code and site, keeping first-seen order."""
    merged: dict[tuple[str, str | None, int | None, str | None], Finding] = {}
    for f in findings:
        k = f.key()
        if k in merged:
            merged[k].merge(f)
        else:
            merged[k] = Finding.from_dict(f.to_dict())
    return list(merged.values())
