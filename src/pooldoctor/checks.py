"""The guard's checks over the ledger: the watchdog's pass (PD101, PD107, PD110), sites
holding many (PD108), garbage-collected holds (PD102) and what is still held at exit (PD105).

Functions of the process's :class:`~pooldoctor.guard.Guard` (its methods call them).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .findings import Finding
from .ledger import CHECKOUT, Hold
from .verdicts import fmt_s, what_held
from .verdicts import short as _short

if TYPE_CHECKING:
    from .guard import Guard


def shutting_down() -> bool:
    """True once the interpreter has begun to shut down (threading joins the threads, and
    concurrent.futures its workers): threads ending then are not leaking anything."""
    return bool(getattr(threading, "_SHUTTING_DOWN", False))


def report_collected(g: Guard, h: Hold) -> None:
    if h.dead_reported or (h.keeper is not None and shutting_down()):
        return  # told as PD110 already, or a framework's connection of a thread the
        # interpreter's shutdown ended: the collection only ends it
    if h.keeper is not None and not h.dead_reported and h.owner_ended():
        # a framework's per-thread connection goes when its thread's storage does
        h.dead_reported = True
        g.emit(g.ended_thread(h, "; then the garbage collector closed it"))
        return
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
        how = ("was closed with close() instead of being returned, then garbage-collected"
               if h.extra and h.extra.get("closed_unreturned")
               else "was garbage-collected without being returned")
        msg = (f"connection checked out at {_short(h)} {how}, {fmt_s(h.age())} after "
               f"checkout; {fate}")
    else:
        msg = (f"connection opened at {_short(h)} was garbage-collected without close(), "
               f"{fmt_s(h.age())} after it was opened")
    g.emit(g.finding_for("PD102", h, msg))


def check_sites(g: Guard, holds: list[Hold]) -> None:
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
    threshold = g.options.many_threshold
    for key in list(g.many_levels):
        if counts.get(key, 0) < threshold / 2:
            g.many_levels.pop(key, None)
    for key, n in counts.items():
        if n >= max(g.many_levels.get(key, 0) * 2, threshold):
            g.check_many(first[key], n)


def check_many(g: Guard, h: Hold, seen: int) -> None:
    """PD108 when one site holds ``many_threshold`` or more at once (then at each doubling);
    ``seen`` is the caller's count for the site (checked before counting again)."""
    key = h.key
    if seen < max(g.many_levels.get(key, 0) * 2, g.options.many_threshold):
        return
    if g.collected:  # garbage-collected holds wait in the ledger for the next drain;
        g.drain()  # they are not held any more (not a GC context: safe to drain)
    same = [x for x in g.ledger.holds() if not x.ended and x.key == key]
    n = len(same)
    level = g.many_levels.get(key, 0)
    if n < max(level * 2, g.options.many_threshold):
        return
    if piled_up(same) < max(level * 2, g.options.many_threshold):
        return  # workers each holding one at once: concurrency, not a pile-up
    g.many_levels[key] = n
    oldest = min((x.since for x in same), default=h.since)
    span = max(time.monotonic() - oldest, 1e-3)
    rate = n / span
    noun = "connections checked out" if h.kind == CHECKOUT else "connections open"
    growth = (f"growing {rate:.1f}/s over {fmt_s(span)}" if span >= 1.0
              else f"all taken within {span * 1000:.0f} ms")
    g.emit(g.finding_for(
        "PD108", h,
        f"{_short(h)} holds {n} {noun} at once, {growth} "
        f"(threshold {g.options.many_threshold})",
        held=n, per_second=round(rate, 2), over_s=round(span, 3),
        threshold=g.options.many_threshold))


def piled_up(same: list[Hold]) -> int:
    """How many of one site's holds count for PD108: all, less one per live thread or asyncio
    task that holds only its own (workers each with a connection from the same line are the
    program's concurrency, bounded by their number; a helper object per case, request or
    task piles up in the few threads or tasks that make them). Django's connections, kept one
    per thread on purpose, all count: there more threads holding one is the finding."""
    per_holder: dict[Any, int] = {}
    for x in same:
        if x.keeper is not None:
            continue
        t = x.owner
        if x.task is not None:
            holder: Any = (x.thread_id, x.task)  # a task's name is unique unless given
        elif t is not None and t.is_alive():
            holder = t
        else:
            continue  # an ended thread's: PD110's; an unknown one's: counts
        per_holder[holder] = per_holder.get(holder, 0) + 1
    return len(same) - sum(1 for k in per_holder.values() if k == 1)


def tick(g: Guard) -> None:
    """One pass: collected holds, sites holding many, then thresholds."""
    g.drain()
    o = g.options
    now = time.monotonic()
    holds = g.ledger.holds()
    g.check_sites(holds)
    for h in holds:
        if h.ended:
            continue
        if not h.dead_reported and h.owner_ended() and not shutting_down():
            if h.dead_seen is None:  # once more at the next pass: a thread it was handed
                h.dead_seen = now  # to may take it over meanwhile (Hold.adopt)
            elif h.pid == g.pid:
                h.dead_reported = True
                g.emit(g.ended_thread(h))
            continue
        age = now - h.since
        if (not h.reported and age >= o.leak_threshold and not h.dead_reported
                and h.keeper is None):  # kept per live thread on purpose: not a leak
            h.reported = True
            g.emit(g.held_too_long(h, age))
        ts = h.txn_since
        if ts is not None and not h.txn_reported and now - ts >= o.transaction_threshold:
            h.txn_reported = True
            g.emit(g.long_transaction(h, now - ts))


def check_exit(g: Guard, holds: list[Hold] | None = None, when: str = "at exit") -> list[Finding]:
    """PD105 for every hold still live (or for ``holds``); returns the findings."""
    out: list[Finding] = []
    for h in g.ledger.holds() if holds is None else holds:
        if h.ended or h.pid != g.pid:
            continue
        if h.keeper is not None and (h.dead_reported or not h.owner_ended()
                                     or shutting_down()):
            continue  # kept per live thread on purpose, told as PD110 already, or its
            # thread was ended by the interpreter's shutdown (an executor's workers)
        if h.keeper is not None:
            out.append(g.ended_thread(h, f" ({when})"))
            continue
        f = g.finding_for(
            "PD105", h,
            f"{what_held(h)} {when}, since {fmt_s(h.age())} ago at {_short(h)}")
        out.append(f)
    return out
