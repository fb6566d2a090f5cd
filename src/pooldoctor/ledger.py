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
from collections.abc import Callable
from typing import Any

from .sites import Frames

_monotonic = time.monotonic
_get_ident = threading.get_ident
_modules = sys.modules

CHECKOUT = "checkout"  # a connection checked out from a SQLAlchemy pool
CONNECTION = "connection"  # a raw DB-API connection, open until close()


class Hold(weakref.ref):  # type: ignore[type-arg]
    """One live checkout or open raw connection.

    Created with ``Hold(obj, callback)`` and filled in by :meth:`Ledger.new`; attributes are
    set directly (no ``__init__``) because this is on the hot path.
    """

    # Rarely-changed fields are class-level defaults (assigned per instance only when they
    # change, into the lazily created __dict__): fewer stores on the hot path.
    __slots__ = ("__dict__", "frames", "id", "key", "kind", "pid", "pool", "since", "thread_id")

    id: int
    kind: str
    pool: Any  # PoolInfo for checkouts, a driver label (str) for raw connections
    frames: Frames
    key: tuple[int, int] | None  # the site's identity, see site_id()
    since: float  # time.monotonic()
    thread_id: int
    pid: int
    task: str | None = None
    server_id: int | None = None
    reported: bool = False  # PD101 already reported for this hold
    txn_since: float | None = None
    txn_frames: Frames | None = None
    txn_reported: bool = False
    ended: bool = False
    extra: dict[str, Any] | None = None

    @property
    def wall(self) -> float:
        """When the hold began, as a Unix time."""
        return time.time() - (time.monotonic() - self.since)

    @property
    def thread_name(self) -> str:
        t = threading._active.get(self.thread_id)  # type: ignore[attr-defined]
        return t.name if t is not None else f"thread-{self.thread_id}"

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
        if self.txn_since is not None:
            d["transaction_age_s"] = round(time.monotonic() - self.txn_since, 3)
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
    code, lasti = frames[0]
    return (id(code), lasti)


class Ledger:
    """The live holds of this process, plus a per-site count of what is held right now."""

    def __init__(self) -> None:
        self._holds: dict[int, Hold] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._per_site: dict[Any, int] = {}
        self.last_id = 0
        # PD108: called (outside the lock) when a site reaches many_threshold holds
        self.many_threshold = 10
        self.on_many: Callable[[Hold], None] | None = None

    def _after_fork(self) -> None:
        """In a forked child: the parent's holds are not ours; start afresh."""
        self._holds = {}
        self._per_site = {}
        self._lock = threading.Lock()

    def new(self, obj: Any, callback: Callable[[Hold], None], kind: str, pool: Any,
            frames: Frames, pid: int, server_id: int | None = None) -> Hold:
        """Create a hold on ``obj`` and add it to the ledger; returns the hold.

        For checkouts, ``pool`` is a PoolInfo whose counters (checkouts, checked_out,
        peak_checked_out, hold_s_total) are kept here, under the ledger's one lock.
        """
        h = Hold(obj, callback)
        h.id = hid = next(self._ids)
        h.kind = kind
        h.pool = pool
        h.frames = frames
        h.key = key = site_id(frames)
        h.since = _monotonic()
        h.thread_id = _get_ident()
        h.pid = pid
        if server_id is not None:
            h.server_id = server_id
        aio = _modules.get("asyncio")
        if aio is not None and aio._get_running_loop() is not None:
            h.task = current_task_name()
        with self._lock:
            self._holds[hid] = h
            at_site = self._per_site[key] = self._per_site.get(key, 0) + 1
            if kind is CHECKOUT:  # pool counters, under the same lock
                pool.checkouts += 1
                n = pool.checked_out = pool.checked_out + 1
                if n > pool.peak_checked_out:
                    pool.peak_checked_out = n
        self.last_id = hid
        if at_site >= self.many_threshold and self.on_many is not None:
            self.on_many(h)
        return h

    def remove(self, h: Hold) -> bool:
        """Remove a hold; False when it was already gone."""
        key = h.key
        with self._lock:
            if self._holds.pop(h.id, None) is None:
                return False
            n = self._per_site.get(key, 1) - 1
            if n <= 0:
                self._per_site.pop(key, None)
            else:
                self._per_site[key] = n
            if h.kind is CHECKOUT:
                pool = h.pool
                pool.checked_out -= 1
                pool.hold_s_total += _monotonic() - h.since
        return True

    def count_at(self, h: Hold) -> int:
        """How many holds the site of ``h`` has right now."""
        return self._per_site.get(h.key, 0)

    def count_key(self, key: Any) -> int:
        """How many holds the site with this key (see :func:`site_id`) has right now."""
        return self._per_site.get(key, 0)

    def holds(self) -> list[Hold]:
        """A snapshot of the live holds, oldest first."""
        with self._lock:
            return list(self._holds.values())

    def __len__(self) -> int:
        return len(self._holds)

    def since(self, hold_id: int) -> list[Hold]:
        """Live holds created after ``hold_id`` (for the pytest plugin's per-test check)."""
        return [h for h in self.holds() if h.id > hold_id]
