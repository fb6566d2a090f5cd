"""The ledger: the live holds of this process.

A :class:`Hold` *is* a weak reference to the object the user holds (the pool's connection
proxy, or a raw driver connection): the ledger never keeps a user's connection alive, and the
weak reference's callback tells us when the object was collected without being returned.
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .sites import Frames

_monotonic = time.monotonic
_get_ident = threading.get_ident
_active: dict[int, threading.Thread] = threading._active  # type: ignore[attr-defined]
_main = threading.main_thread()
_modules = sys.modules

CHECKOUT = "checkout"  # a connection checked out from a SQLAlchemy pool
CONNECTION = "connection"  # a raw DB-API connection, open until close()


class Hold(weakref.ref):  # type: ignore[type-arg]
    """One live checkout or open raw connection.

    Created with ``Hold(obj, callback)`` and filled in by its creator; attributes are set
    directly (no ``__init__``) because checkouts are on the hot path.
    """

    # Every field a checkout or a transaction touches is a slot, set by each creator (here,
    # runtime/hotpath.py, and _speedups.c); rarely-changed ones are class-level defaults
    # (assigned per instance only when they change, into the lazily created __dict__).
    __slots__ = ("__dict__", "frames", "id", "pid", "pool", "reported", "server_id", "since",
                 "thread", "thread_id", "txn_begun", "txn_frames", "txn_reported", "txn_since")

    id: int
    pool: Any  # PoolInfo for checkouts, a driver label (str) for raw connections
    frames: Frames
    since: float  # time.monotonic()
    thread_id: int
    # the owning thread's Thread object (threading._active at checkout; None for a thread
    # threading does not know): its name and whether it is alive, whatever ids are reused
    thread: threading.Thread | None
    pid: int
    server_id: int | None  # the server's id of the physical connection, when known
    reported: bool  # PD101 already reported for this hold
    kind: str = CHECKOUT
    task: str | None = None
    txn_since: float | None  # the open transaction's start (monotonic), or None
    txn_frames: Frames | None  # where it began; None: where the hold began (frames)
    txn_begun: bool  # a transaction was begun on this hold before
    txn_reported: bool  # PD107 reported for the open transaction
    ended: bool = False
    extra: dict[str, Any] | None = None
    keeper: str | None = None  # who keeps it per thread on purpose ("django"), or None
    dead_reported: bool = False  # PD110 reported: its owning thread has ended
    dead_seen: float | None = None  # when the watchdog first saw its owning thread ended
    # its statement tags (runtime/sqltags.py), set on its first tagged statement
    sqltag: Any = None

    @property
    def key(self) -> tuple[int, int] | None:
        """The site's identity (see :func:`site_id`); computed when grouping, not at checkout."""
        return site_id(self.frames)

    @property
    def wall(self) -> float:
        """When the hold began, as a Unix time."""
        return time.time() - (time.monotonic() - self.since)

    @property
    def owner(self) -> threading.Thread | None:
        """The owning Thread, or None (unknown, or a creator that did not set ``thread``)."""
        try:
            return self.thread
        except AttributeError:
            return None

    @property
    def thread_name(self) -> str:
        """The owning thread's name (the thread recorded at checkout, not a later one that
        got the same id)."""
        t = self.owner
        return t.name if t is not None else f"thread-{self.thread_id}"

    def owner_ended(self) -> bool:
        """True when the owning thread is known and has ended; never for an unknown thread,
        nor for the main thread (it ends with the program: PD105 tells at exit)."""
        t = self.owner
        return t is not None and t is not _main and not t.is_alive()

    def adopt(self) -> None:
        """The calling thread uses the connection now: it becomes the owner (a handover)."""
        ident = _get_ident()
        thread = _active.get(ident)
        if ident != self.thread_id or thread is not self.thread:  # idents are reused
            self.thread_id = ident
            self.thread = thread
            self.dead_seen = None

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.since

    def describe(self) -> dict[str, Any]:
        """Plain data about this hold, for findings, the pytest plugin and publishing."""
        from .sites import format_stack, site_of

        site = site_of(self.frames)
        d: dict[str, Any] = {
            "hold_id": self.id,
            "kind": self.kind,
            "pool": getattr(self.pool, "label", self.pool),
            "site": site.to_dict() if site else None,
            "stack": [s.to_dict() for s in format_stack(self.frames)],
            "age_s": round(self.age(), 3),
            "since": self.wall,
            "thread": self.thread_name,
            "thread_id": self.thread_id,
            "pid": self.pid,
        }
        if self.task:
            d["task"] = self.task
        if self.server_id is not None:
            d["server_id"] = self.server_id
        txn_since = self.txn_since  # read once: the holder's thread may end it meanwhile
        if txn_since is not None:
            d["transaction_age_s"] = round(time.monotonic() - txn_since, 3)
        if self.extra:
            d.update(self.extra)
        return d


def current_task_name() -> str | None:
    """The running asyncio task's name, if any (cheap when asyncio is not in use)."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return None
    try:
        task = aio.current_task()
    except RuntimeError:
        return None
    return task.get_name() if task is not None else None


def site_id(frames: Frames) -> tuple[int, int] | None:
    """The per-site key: (id of the code object, instruction offset).

    Code objects hash by content (slow), so the key uses their identity.
    """
    if not frames:
        return None
    return (id(frames[0]), frames[1])


def _by_id(h: Hold) -> int:
    return h.id


# The figures a table's owner counts (SQLAlchemy's PoolInfo and the adapters' PoolStats share
# these names), with their starting values
_ZEROS = {"timeouts": 0, "waits": 0, "waiting": 0, "connects": 0, "gc_reclaimed": 0,
          "peak_checked_out": 0, "max_wait_ms": 0.0, "wait_s_total": 0.0, "hold_s_total": 0.0}


def restart_figures(owner: Any) -> None:
    """Start an owner's figures from zero, as if it had just been adopted: in a forked child,
    what the parent did before fork() is the parent's to report (else both count it). The
    figures of another kind of owner are left alone; its holds are cleared by the caller."""
    d = owner.__dict__
    for name, zero in _ZEROS.items():
        if name in d:
            d[name] = zero
    if "checkout_counter" in d:
        d["checkout_counter"] = itertools.count(1)
    if "waited" in d:
        d["waited"] = {}  # thread id -> seconds: the child has one thread, not these
    if "lock" in d:
        d["lock"] = threading.Lock()  # another thread may have held it at fork()
    if "started" in d:
        d["started"] = _monotonic()
    for key in [k for k in d if k.startswith("_pd_")]:  # what observers keep on the owner
        del d[key]  # (the metrics recorder's histograms): made afresh on first use


class Ledger:
    """The live holds of this process.

    Pool checkouts live in their pool's own table (``PoolInfo.holds``, a dict by hold id),
    added and removed without a lock: a single dict store or pop is atomic, and a checkout
    must cost little. Raw connections (whose ``connect()`` costs milliseconds) live in the
    ledger's own table under a lock, with a per-site count for an immediate PD108 check.
    """

    def __init__(self) -> None:
        self._raw: dict[int, Hold] = {}
        self._owners: weakref.WeakSet[Any] = weakref.WeakSet()  # objects with .holds tables
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._per_site: dict[Any, int] = {}
        # PD108: called (outside the lock) when a site reaches many_threshold raw holds
        self.many_threshold = 10
        self.on_many: Callable[[Hold, int], None] | None = None

    @property
    def ids(self) -> Iterator[int]:
        """The hold ids' counter (``next()`` on it is one atomic step)."""
        return self._ids

    @property
    def next_id(self) -> Callable[[], int]:
        """The id source shared by every table (ids only grow: the pytest plugin relies on it)."""
        return self._ids.__next__

    @property
    def last_id(self) -> int:
        """The id of the latest hold created (0 before the first)."""
        return int(repr(self._ids)[6:-1]) - 1  # repr is "count(N)", N the next id

    def add_table(self, owner: Any) -> None:
        """Include ``owner.holds`` (a dict of hold id to hold) in :meth:`holds`."""
        self._owners.add(owner)

    def _after_fork(self) -> None:
        """In a forked child: the parent's holds and pool figures are not ours; start afresh."""
        self._raw = {}
        self._per_site = {}
        self._lock = threading.Lock()
        for owner in list(self._owners):
            owner.holds.clear()
            restart_figures(owner)

    def new(self, obj: Any, callback: Callable[[Hold], None], kind: str, pool: Any,
            frames: Frames, pid: int, server_id: int | None = None) -> Hold:
        """Create the hold of a raw connection and add it to the ledger; returns the hold."""
        h = Hold(obj, callback)
        h.id = hid = next(self._ids)
        h.kind = kind
        h.pool = pool
        h.frames = frames
        h.since = _monotonic()
        h.thread_id = ident = _get_ident()
        h.thread = _active.get(ident)
        h.pid = pid
        h.server_id = server_id
        h.reported = h.txn_begun = h.txn_reported = False
        h.txn_since = h.txn_frames = None
        aio = _modules.get("asyncio")
        if aio is not None and aio._get_running_loop() is not None:
            h.task = current_task_name()
        key = h.key
        with self._lock:
            self._raw[hid] = h
            at_site = self._per_site[key] = self._per_site.get(key, 0) + 1
        if at_site >= self.many_threshold and self.on_many is not None:
            self.on_many(h, at_site)
        return h

    def remove(self, h: Hold) -> bool:
        """Remove a hold; False when it was already gone."""
        if h.kind is CHECKOUT:
            info = h.pool
            if info.holds.pop(h.id, None) is None:
                return False
            held = _monotonic() - h.since
            info.hold_s_total += held  # one load-add-store: no thread switch inside
            return True
        key = h.key
        with self._lock:
            if self._raw.pop(h.id, None) is None:
                return False
            n = self._per_site.get(key, 1) - 1
            if n <= 0:
                self._per_site.pop(key, None)
            else:
                self._per_site[key] = n
        return True

    def holds(self) -> list[Hold]:
        """A snapshot of the live holds, oldest first."""
        # copy() is atomic, even if a garbage collection during it returns a connection to
        # the same pool (iterating the dict itself could see it change size)
        out = list(self._raw.copy().values())
        for owner in list(self._owners):
            out.extend(owner.holds.copy().values())
        out.sort(key=_by_id)
        return out

    def __len__(self) -> int:
        return len(self._raw) + sum(len(o.holds) for o in list(self._owners))

    def since(self, hold_id: int) -> list[Hold]:
        """Live holds created after ``hold_id`` (for the pytest plugin's per-test check)."""
        return [h for h in self.holds() if h.id > hold_id]
