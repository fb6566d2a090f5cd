"""The guard's state for one process: options, ledger, findings, the watchdog and exit check.

Every hook into a user's program goes through :func:`Guard.internal_error` on failure: the
guard never raises into the user's program. Code reached from a garbage-collector callback only
appends to :attr:`Guard.collected` (a deque); the watchdog turns those into findings.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .findings import Finding, Site, utc_iso
from .ledger import CHECKOUT, Hold, Ledger
from .sinks import EVENTS_ENV, Callback, Collector, JsonLinesSink, logger
from .sites import DEFAULT_DEPTH, format_stack, site_of, thread_stack


@dataclass
class Options:
    """Thresholds and switches of the guard (one set per process)."""

    leak_threshold: float = 30.0
    transaction_threshold: float = 10.0
    wait_threshold: float = 0.1
    many_threshold: int = 10
    engine_threshold: int = 3
    stack_depth: int = DEFAULT_DEPTH
    fork_safety: Literal["warn", "repair"] = "warn"
    log: bool = True
    exit_check: bool = True
    events_path: str | None = None
    on_finding: list[Callback] = field(default_factory=list)

    def validate(self) -> None:
        for name in ("leak_threshold", "transaction_threshold", "wait_threshold"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("many_threshold", "engine_threshold", "stack_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if self.fork_safety not in ("warn", "repair"):
            raise ValueError(f"fork_safety must be 'warn' or 'repair', got {self.fork_safety!r}")


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


def what_held(h: Hold) -> str:
    return "connection checked out" if h.kind == CHECKOUT else "connection open"


class Guard:
    """Process-wide guard state. One instance: :data:`GUARD`."""

    def __init__(self) -> None:
        self.options = Options()
        self.depth = self.options.stack_depth  # frames captured per stack (read by hotpath)
        self.ledger = Ledger()
        self.collector = Collector()
        self.collected: collections.deque[Hold] = collections.deque()
        self.active = False
        self.pid = os.getpid()
        self.internal_errors = 0
        self._error_logged: set[str] = set()
        self._events: JsonLinesSink | None = None
        self._emit_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._exit_registered = False
        self._fork_registered = False
        self.pool_infos: Callable[[], list[dict[str, Any]]] = list
        self.exit_hooks: list[Callable[[], None]] = []
        self._many_levels: dict[Any, int] = {}
        # Observers (metrics, dashboard): objects with any of the methods
        #   on_checkout(info, hold), on_checkin(info, hold, held_s), on_wait(info, waited_s),
        #   on_timeout(info), on_connect(info), on_finding(finding).
        # Called on the hot path: keep them cheap; failures are counted, never raised.
        self.observers: list[Any] = []
        # Called by the watchdog after each tick (e.g. publishing holds for the server watch).
        self.tick_hooks: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ lifecycle

    def configure(self, options: Options) -> None:
        options.validate()
        self.options = options
        self.depth = options.stack_depth
        self.ledger.many_threshold = options.many_threshold
        self.ledger.on_many = self.check_many
        path = options.events_path or os.environ.get(EVENTS_ENV)
        if path and (self._events is None or self._events.path != path):
            self._events = JsonLinesSink(path)
        if not self._exit_registered:
            atexit.register(self._at_exit)
            self._exit_registered = True
        if not self._fork_registered:
            os.register_at_fork(after_in_child=self._after_fork_in_child)
            self._fork_registered = True
        self.active = True
        self.start_watchdog()

    def deactivate(self) -> None:
        self.active = False
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2.0)
        self._thread = None

    def clear(self) -> None:
        """Forget every finding, hold and collected hold (a test or a benchmark round starts
        afresh); the options and the installation stay."""
        self.collector.clear()
        for h in self.ledger.holds():
            self.ledger.remove(h)
        self.collected.clear()
        self._many_levels.clear()

    def _after_fork_in_child(self) -> None:
        self.pid = os.getpid()
        self.ledger._after_fork()
        self.collector._after_fork()
        self.collected = collections.deque()
        self._many_levels = {}
        self._emit_lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        if self.active:
            self.start_watchdog()

    # ------------------------------------------------------------------ errors

    def observe(self, method: str, *args: Any) -> None:
        """Call ``method`` on every observer that has it (never raises)."""
        self.notify(self.observers, "observer", method, *args)

    def notify(self, objs: list[Any], what: str, method: str, *args: Any) -> None:
        """Call ``method`` on every object of ``objs`` that has it; a failure is counted as
        an internal error of ``what`` and never raised."""
        for o in objs:
            fn = getattr(o, method, None)
            if fn is not None:
                try:
                    fn(*args)
                except Exception:
                    self.internal_error(f"{what} {method}")

    def internal_error(self, where: str) -> None:
        """Count an internal failure and log it once per place; never raise."""
        try:
            self.internal_errors += 1
            if where not in self._error_logged:
                self._error_logged.add(where)
                logger.warning("pooldoctor: internal error in %s (the program is unaffected)",
                               where, exc_info=True)
        except Exception:
            pass

    # ------------------------------------------------------------------ findings

    def emit(self, finding: Finding) -> None:
        """Record a finding and send it to the sinks (never raises)."""
        try:
            if not finding.pids:
                finding.pids = [self.pid]
            self.collector.add(finding)
            if self._events is not None:
                with self._emit_lock:
                    self._events.write({"event": "finding", "pid": self.pid,
                                        "finding": finding.to_dict()})
            if self.options.log:
                loc = f" [{finding.site.short()}]" if finding.site else ""
                logger.log(_LEVELS[finding.severity], "%s %s%s", finding.code, finding.message,
                           loc if finding.site and finding.site.short() not in finding.message
                           else "")
            self.observe("on_finding", finding)
            for cb in self.options.on_finding:
                try:
                    cb(finding)
                except Exception:
                    self.internal_error("on_finding callback")
        except Exception:
            self.internal_error("emit")

    def note(self, code: str, h: Hold, **details: Any) -> None:
        """Add details to the finding already made for this hold's site."""
        site = site_of(h.frames)
        key = (site.file, site.line, site.function) if site else (None, None, None)
        self.collector.note(code, key, **details)
        if self._events is not None:
            with self._emit_lock:
                self._events.write({"event": "note", "pid": self.pid, "code": code,
                                    "site_key": list(key), "details": details})

    def finding_for(self, code: str, h: Hold, message: str, frames: Any = None,
                    **details: Any) -> Finding:
        frames = h.frames if frames is None else frames
        d = h.describe()
        d.pop("stack", None)
        d.pop("site", None)
        d.update(details)
        return Finding(code=code, message=message, site=site_of(frames),
                       stack=format_stack(frames), pids=[h.pid], details=d)

    # ------------------------------------------------------------------ release paths

    def release(self, h: Hold) -> None:
        """A hold ended normally (checkin or close)."""
        if self.ledger.remove(h) and h.reported:
            self.unleaked(h)

    def unleaked(self, h: Hold) -> None:
        """A hold reported as held too long (PD101) came back: say so."""
        age = h.age()
        logger.info("pooldoctor: %s at %s, reported held too long, came back after %s "
                    "(unleaked)", what_held(h), _short(h), fmt_s(age))
        self.note("PD101", h, returned_count=1, last_returned_after_s=round(age, 3))

    def on_collected(self, h: Hold) -> None:
        """Weak-reference callback: the user's object died. GC context: enqueue only."""
        if not h.ended:
            self.collected.append(h)

    def drain(self) -> None:
        """Turn holds whose object was garbage-collected into PD102 findings."""
        q = self.collected
        while q:
            try:
                h = q.popleft()
            except IndexError:
                break
            if h.ended:
                continue
            h.ended = True
            if not self.ledger.remove(h):
                continue
            try:
                self.report_collected(h)
            except Exception:
                self.internal_error("drain")

    def report_collected(self, h: Hold) -> None:
        if h.kind == CHECKOUT:
            info = h.pool
            if info is not None:
                info.gc_reclaimed += 1
            pool = info.pool() if info is not None else None
            dialect = getattr(pool, "_dialect", None)
            fate = (getattr(info, "fate", None)  # a pool adapter's library says its own
                    or ("SQLAlchemy could not return it (asyncio driver) and terminated it"
                        if getattr(dialect, "is_async", False)
                        else "SQLAlchemy reset it and put it back silently"))
            msg = (f"connection checked out at {_short(h)} was garbage-collected without being "
                   f"returned, {fmt_s(h.age())} after checkout; {fate}")
        else:
            msg = (f"connection opened at {_short(h)} was garbage-collected without close(), "
                   f"{fmt_s(h.age())} after it was opened")
        self.emit(self.finding_for("PD102", h, msg))

    def check_sites(self, holds: list[Hold]) -> None:
        """PD108 for pool checkouts (counted here, at each watchdog pass, to keep checkouts
        cheap; raw connections are checked as they open), and re-arming of the sites whose
        pile-up has drained."""
        counts: dict[Any, int] = {}
        first: dict[Any, Hold] = {}
        for h in holds:
            if not h.ended:
                key = h.key
                counts[key] = counts.get(key, 0) + 1
                first.setdefault(key, h)
        threshold = self.options.many_threshold
        for key in list(self._many_levels):
            if counts.get(key, 0) < threshold / 2:
                self._many_levels.pop(key, None)
        for key, n in counts.items():
            if n >= max(self._many_levels.get(key, 0) * 2, threshold):
                self.check_many(first[key], n)

    def check_many(self, h: Hold, seen: int) -> None:
        """PD108 when one site holds ``many_threshold`` or more at once (then at each doubling);
        ``seen`` is the caller's count for the site (checked before counting again)."""
        key = h.key
        if seen < max(self._many_levels.get(key, 0) * 2, self.options.many_threshold):
            return
        if self.collected:  # garbage-collected holds wait in the ledger for the next drain;
            self.drain()  # they are not held any more (not a GC context: safe to drain)
        same = [x for x in self.ledger.holds() if not x.ended and x.key == key]
        n = len(same)
        level = self._many_levels.get(key, 0)
        if n < max(level * 2, self.options.many_threshold):
            return
        self._many_levels[key] = n
        oldest = min((x.since for x in same), default=h.since)
        span = max(time.monotonic() - oldest, 1e-3)
        rate = n / span
        noun = "connections checked out" if h.kind == CHECKOUT else "connections open"
        growth = (f"growing {rate:.1f}/s over {fmt_s(span)}" if span >= 1.0
                  else f"all taken within {span * 1000:.0f} ms")
        self.emit(self.finding_for(
            "PD108", h,
            f"{_short(h)} holds {n} {noun} at once, {growth} "
            f"(threshold {self.options.many_threshold})",
            held=n, per_second=round(rate, 2), over_s=round(span, 3),
            threshold=self.options.many_threshold))

    # ------------------------------------------------------------------ watchdog

    def start_watchdog(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        t = threading.Thread(target=self._run, name="pooldoctor-watchdog", daemon=True)
        self._thread = t
        t.start()

    def interval(self) -> float:
        o = self.options
        return max(0.02, min(1.0, o.leak_threshold / 10, o.transaction_threshold / 10))

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval()):
            try:
                self.tick()
            except Exception:
                self.internal_error("watchdog")
            for hook in self.tick_hooks:
                try:
                    hook()
                except Exception:
                    self.internal_error("tick hook")

    def tick(self) -> None:
        """One pass: collected holds, sites holding many, then thresholds."""
        self.drain()
        o = self.options
        now = time.monotonic()
        holds = self.ledger.holds()
        self.check_sites(holds)
        for h in holds:
            if h.ended:
                continue
            age = now - h.since
            if not h.reported and age >= o.leak_threshold:
                h.reported = True
                self.emit(self.finding_for(
                    "PD101", h,
                    f"{what_held(h)} for {fmt_s(age)} at {_short(h)} "
                    f"(threshold {o.leak_threshold:g} s)",
                    threshold_s=o.leak_threshold))
            ts = h.txn_since
            if ts is not None and not h.txn_reported and now - ts >= o.transaction_threshold:
                h.txn_reported = True
                self.emit(self.long_transaction(h, now - ts))

    def long_transaction(self, h: Hold, age: float) -> Finding:
        """PD107 for ``h``: where the transaction began, and where its thread is now."""
        o = self.options
        if h.txn_frames:
            frames, where = h.txn_frames, f"begun at {_short_frames(h.txn_frames)}"
        else:
            frames, where = h.frames, f"on the connection checked out at {_short(h)}"
        details: dict[str, Any] = {"threshold_s": o.transaction_threshold}
        now_at = ""
        if h.task is None and h.pid == self.pid:  # a thread (a task's thread runs the loop)
            stack = thread_stack(h.thread_id, o.stack_depth)
            if stack:
                details["thread_now"] = [s.to_dict() for s in format_stack(stack)]
                now_at = f"; its thread is now at {_short_frames(stack)}"
        return self.finding_for(
            "PD107", h,
            f"transaction open for {fmt_s(age)} {where} (threshold "
            f"{o.transaction_threshold:g} s){now_at}",
            frames=frames, **details)

    # ------------------------------------------------------------------ exit

    def check_exit(self, holds: list[Hold] | None = None, when: str = "at exit") -> list[Finding]:
        """PD105 for every hold still live (or for ``holds``); returns the findings."""
        out: list[Finding] = []
        for h in self.ledger.holds() if holds is None else holds:
            if h.ended or h.pid != self.pid:
                continue
            f = self.finding_for(
                "PD105", h,
                f"{what_held(h)} {when}, since {fmt_s(h.age())} ago at {_short(h)}")
            out.append(f)
        return out

    def _at_exit(self) -> None:
        try:
            if not self.active or self.pid != os.getpid():
                return
            import gc

            gc.collect()
            self.drain()
            if self.options.exit_check:
                for f in self.check_exit():
                    self.emit(f)
            for hook in self.exit_hooks:
                try:
                    hook()
                except Exception:
                    self.internal_error("exit hook")
            if self._events is not None:
                with self._emit_lock:
                    self._events.write({"event": "pools", "pid": self.pid,
                                        "pools": self.pool_infos(),
                                        "internal_errors": self.internal_errors,
                                        "at": utc_iso()})
        except Exception:
            self.internal_error("exit check")


_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


def _short(h: Hold) -> str:
    return _short_frames(h.frames)


def _short_frames(frames: Any) -> str:
    site: Site | None = site_of(frames)
    return site.short() if site else "an unknown site"


GUARD = Guard()
