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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from . import checks, verdicts
from .checks import shutting_down as shutting_down  # re-exported
from .findings import Finding, utc_iso
from .ledger import Hold, Ledger
from .sinks import EVENTS_ENV, Callback, Collector, JsonLinesSink, LiveCounter, live_suffix, logger
from .sites import DEFAULT_DEPTH, caller_of, format_stack, returns_call, site_of
from .verdicts import fmt_s as fmt_s  # re-exported: older modules import it from here
from .verdicts import short as _short
from .verdicts import what_held as what_held


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


class Guard:
    """Process-wide guard state. One instance: :data:`GUARD`."""

    def __init__(self) -> None:
        self.options = Options()
        self.depth = self.options.stack_depth  # frames captured per stack (read by hotpath)
        self.ledger = Ledger()
        self.collector = Collector()
        self.live = LiveCounter()  # repeats of a finding on the live log
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
        self.many_levels: dict[Any, int] = {}  # PD108: site -> holds at its last report
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
        if path and not os.path.isabs(path):
            try:  # fixed now: the program may change or delete its working folder later
                path = os.path.abspath(path)
            except OSError:
                pass
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
        self.live.clear()
        for h in self.ledger.holds():
            self.ledger.remove(h)
        self.collected.clear()
        self.many_levels.clear()

    def _after_fork_in_child(self) -> None:
        self.pid = os.getpid()
        self.ledger._after_fork()
        self.collector._after_fork()
        self.live = LiveCounter()
        self.collected = collections.deque()
        self.many_levels = {}
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
            seen = self.live.tell(finding) if self.options.log else None
            if seen is not None:  # repeats are merged: told at 2, 10, 100... with a count
                loc = f" [{finding.site.short()}]" if finding.site else ""
                logger.log(_LEVELS[finding.severity], "%s %s%s%s", finding.code,
                           finding.message,
                           loc if finding.site and finding.site.short() not in finding.message
                           else "", live_suffix(seen))
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
        caller = caller_of(frames) if frames else None
        if caller is not None:  # a shared helper: which of its callers leaked, how often
            d["callers"] = [{**caller.to_dict(), "count": 1}]
            if returns_call(frames[0], frames[1]):
                d["factory"] = True  # the site hands the connection to its caller
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
        checks.report_collected(self, h)

    def check_sites(self, holds: list[Hold]) -> None:
        checks.check_sites(self, holds)

    def check_many(self, h: Hold, seen: int) -> None:
        checks.check_many(self, h, seen)

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
        checks.tick(self)

    def held_too_long(self, h: Hold, age: float) -> Finding:
        return verdicts.held_too_long(self, h, age)

    def ended_thread(self, h: Hold, when: str = "") -> Finding:
        return verdicts.ended_thread(self, h, when)

    def long_transaction(self, h: Hold, age: float) -> Finding:
        return verdicts.long_transaction(self, h, age)

    # ------------------------------------------------------------------ exit

    def check_exit(self, holds: list[Hold] | None = None, when: str = "at exit") -> list[Finding]:
        """PD105 for every hold still live (or for ``holds``); returns the findings."""
        return checks.check_exit(self, holds, when)

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
                                        "holds_taken": self.ledger.last_id,
                                        "at": utc_iso()})
        except Exception:
            self.internal_error("exit check")


_LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}


GUARD = Guard()
