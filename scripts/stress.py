#!/usr/bin/env python3
"""Stress the runtime guard against real PostgreSQL and MariaDB, then check what it says.

    python scripts/stress.py                       # full size: >= 100,000 checkouts
    python scripts/stress.py --checkouts 20000 --backends pg

64 threads (and 64 asyncio tasks on asyncpg / aiomysql engines) share one small pool and do
random work: plain checkouts, exceptions inside ``with``, transactions rolled back, bad SQL,
``conn.invalidate()``, raw DB-API connections, slow holders that make other checkouts time
out, and a few deliberate leaks from two known lines (one dropped, one kept). Afterwards:
the ledger holds only the kept leaks, the pool's own counters match the guard's, the program
saw only the errors it causes itself, every timeout is one PD103, every dropped leak is one
PD102 at its line, the kept leaks are PD101 (PD110 when their thread ended)/PD105 at theirs,
nothing else is reported, and the
guard's own memory does not grow after the warm-up round.

``tests/integration/test_stress.py`` runs a small variant of the same code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.runtime.sqlalchemy import stats_for

PG_URL = os.environ.get("POOLDOCTOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("POOLDOCTOR_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")
ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql"}

POOL_SIZE = 6
MAX_OVERFLOW = 3  # capacity 9 < many_threshold 10: any PD108 would be false
POOL_TIMEOUT = 0.5
LEAK_THRESHOLD = 3.0  # no honest hold in the workload comes near this
BAD_SQL = "SELECT * FROM pd_stress_no_such_table"
SRC_DIR = os.path.dirname(os.path.abspath(pooldoctor.__file__)) + os.sep


class Boom(Exception):
    """The program's own error, raised inside a ``with`` block."""


@dataclass
class Tally:
    """What the program saw (one per thread or task, summed afterwards)."""

    checkouts: int = 0
    timeouts: int = 0
    invalidations: int = 0
    booms: int = 0
    sql_errors: int = 0
    dropped: int = 0
    unexpected: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        for name in ("checkouts", "timeouts", "invalidations", "booms", "sql_errors", "dropped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unexpected += other.unexpected


class Budget:
    """A thread-safe countdown (how many kept leaks are still to make)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.n <= 0:
                return False
            self.n -= 1
            return True


def marker_line(tag: str) -> int:
    """The line of this file that carries ``# <tag>``."""
    with open(__file__, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.rstrip().endswith(f"# {tag}"):
                return n
    raise LookupError(tag)


# --------------------------------------------------------------------------- deliberate leaks


def leak_dropped(engine: sa.Engine) -> None:
    conn = engine.connect()  # LEAK-DROPPED
    conn.exec_driver_sql("SELECT 1")
    # returns without close(): the proxy dies here and SQLAlchemy reclaims it silently


def leak_kept(engine: sa.Engine, keep: list[Any]) -> None:
    conn = engine.connect()  # LEAK-KEPT
    conn.exec_driver_sql("SELECT 1")
    keep.append(conn)


async def aleak_dropped(engine: Any) -> None:
    conn = await engine.connect()  # ALEAK-DROPPED
    await conn.exec_driver_sql("SELECT 1")
    with quiet_gc():  # no await inside: warning filters are not task-safe
        del conn  # asyncio: SQLAlchemy terminates it with an error log and an SAWarning


async def aleak_kept(engine: Any, keep: list[Any]) -> None:
    conn = await engine.connect()  # ALEAK-KEPT
    await conn.exec_driver_sql("SELECT 1")
    keep.append(conn)


LEAK_FUNCTIONS = (leak_dropped, leak_kept, aleak_dropped, aleak_kept)


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Silence SQLAlchemy's own complaint about a garbage-collected asyncio connection."""
    log = logging.getLogger("sqlalchemy.pool")
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", exc.SAWarning)
            yield
    finally:
        log.setLevel(level)


# --------------------------------------------------------------------------- workloads


def sync_step(engine: sa.Engine, r: random.Random, t: Tally, keep: list[Any],
              budget: Budget, drop_rate: float) -> None:
    x = r.random()
    try:
        if x < drop_rate:
            leak_dropped(engine)
            t.checkouts += 1
            t.dropped += 1
        elif x < 0.50:
            with engine.connect() as conn:
                t.checkouts += 1
                conn.exec_driver_sql("SELECT 1")
        elif x < 0.62:
            with engine.connect() as conn:
                t.checkouts += 1
                conn.exec_driver_sql("SELECT 1")
                raise Boom()
        elif x < 0.70:
            with engine.begin() as conn:
                t.checkouts += 1
                conn.exec_driver_sql("SELECT 1")
                if r.random() < 0.5:
                    raise Boom()
        elif x < 0.76:
            with engine.connect() as conn:
                t.checkouts += 1
                conn.exec_driver_sql(BAD_SQL)
        elif x < 0.77:
            with engine.connect() as conn:
                t.checkouts += 1
                conn.invalidate()
                t.invalidations += 1
        elif x < 0.87:
            raw = engine.raw_connection()
            t.checkouts += 1
            try:
                cur = raw.cursor()
                cur.execute("SELECT 1")
                cur.fetchall()
                cur.close()
            finally:
                raw.close()
        elif x < 0.88:
            with engine.connect() as conn:  # a slow holder: others wait, some time out
                t.checkouts += 1
                conn.exec_driver_sql("SELECT 1")
                time.sleep(r.uniform(0.05, 0.3))
        else:
            with engine.connect() as conn:
                t.checkouts += 1
                conn.exec_driver_sql("SELECT 1")
                conn.commit()
    except Boom:
        t.booms += 1
    except exc.TimeoutError:
        t.timeouts += 1
    except exc.ProgrammingError:
        t.sql_errors += 1
    except Exception as e:
        t.unexpected.append(f"{type(e).__module__}.{type(e).__name__}: {e}"[:300])


def run_sync(engine: sa.Engine, threads: int, per_thread: int, seed: int, kept: int,
             keep: list[Any], drop_rate: float) -> Tally:
    """``threads`` threads doing ``per_thread`` random steps each on one engine."""
    tallies = [Tally() for _ in range(threads)]
    budget = Budget(kept)
    start = threading.Barrier(threads)

    def work(i: int) -> None:
        r = random.Random(seed * 1000 + i)
        start.wait()
        if budget.take():
            try:
                leak_kept(engine, keep)
                tallies[i].checkouts += 1
            except exc.TimeoutError:
                tallies[i].timeouts += 1
        for _ in range(per_thread):
            sync_step(engine, r, tallies[i], keep, budget, drop_rate)

    ts = [threading.Thread(target=work, args=(i,), name=f"stress-{i}") for i in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    total = Tally()
    for t in tallies:
        total.add(t)
    return total


async def async_step(engine: Any, r: random.Random, t: Tally) -> None:
    x = r.random()
    try:
        if x < 0.55:
            async with engine.connect() as conn:
                t.checkouts += 1
                await conn.exec_driver_sql("SELECT 1")
        elif x < 0.67:
            async with engine.connect() as conn:
                t.checkouts += 1
                await conn.exec_driver_sql("SELECT 1")
                raise Boom()
        elif x < 0.77:
            async with engine.begin() as conn:
                t.checkouts += 1
                await conn.exec_driver_sql("SELECT 1")
                if r.random() < 0.5:
                    raise Boom()
        elif x < 0.83:
            async with engine.connect() as conn:
                t.checkouts += 1
                await conn.exec_driver_sql(BAD_SQL)
        elif x < 0.84:
            async with engine.connect() as conn:
                t.checkouts += 1
                await conn.invalidate()
                t.invalidations += 1
        elif x < 0.85:
            async with engine.connect() as conn:
                t.checkouts += 1
                await conn.exec_driver_sql("SELECT 1")
                await asyncio.sleep(r.uniform(0.05, 0.3))
        else:
            async with engine.connect() as conn:
                t.checkouts += 1
                await conn.exec_driver_sql("SELECT 1")
                await conn.commit()
    except Boom:
        t.booms += 1
    except exc.TimeoutError:
        t.timeouts += 1
    except exc.ProgrammingError:
        t.sql_errors += 1
    except Exception as e:
        t.unexpected.append(f"{type(e).__module__}.{type(e).__name__}: {e}"[:300])


async def run_async(engine: Any, tasks: int, per_task: int, seed: int, kept: int,
                    keep: list[Any], drop_rate: float) -> Tally:
    """``tasks`` asyncio tasks doing ``per_task`` random steps each on one async engine."""
    tallies = [Tally() for _ in range(tasks)]
    budget = Budget(kept)

    async def work(i: int) -> None:
        r = random.Random(seed * 1000 + i)
        if budget.take():
            try:
                await aleak_kept(engine, keep)
                tallies[i].checkouts += 1
            except exc.TimeoutError:
                tallies[i].timeouts += 1
        for _ in range(per_task):
            await async_step(engine, r, tallies[i])

    await asyncio.gather(*(asyncio.create_task(work(i), name=f"astress-{i}")
                           for i in range(tasks)))
    # Dropped leaks only now, one at a time: SQLAlchemy's cleanup of a garbage-collected
    # asyncio connection can break *other* connections' operations when it runs in the
    # middle of them (seen without the guard too; see docs/reliability.md).
    last = Tally()
    for _ in range(round(drop_rate * tasks * per_task)):
        try:
            await aleak_dropped(engine)
            last.checkouts += 1
            last.dropped += 1
        except exc.TimeoutError:
            last.timeouts += 1
        with quiet_gc():
            gc.collect()
    tallies.append(last)
    total = Tally()
    for t in tallies:
        total.add(t)
    return total


# --------------------------------------------------------------------------- checks


def guard_memory(deadline_s: float = 10.0) -> int:
    """Live bytes allocated by pooldoctor's own code since tracemalloc started.

    The snapshot is taken from inside the watchdog's thread, between two of its tick hooks:
    taken from here it could catch the watchdog half-way through building the holds file or a
    finding (tens of KB that are gone a moment later: seen as a 35 KB "growth" once in CI).
    A full collection first empties the interpreter's free lists, whose dicts and lists
    tracemalloc still counts where they were first allocated (up to ~16 KB of noise).
    """
    if not tracemalloc.is_tracing():
        return 0
    done = threading.Event()
    box: list[tracemalloc.Snapshot] = []

    def take() -> None:
        if not done.is_set():
            gc.collect()
            box.append(tracemalloc.take_snapshot())
            done.set()

    GUARD.tick_hooks.append(take)
    try:
        if not done.wait(deadline_s):  # no watchdog: the snapshot from here is all we have
            take()
    finally:
        GUARD.tick_hooks.remove(take)
    snap = box[0].filter_traces([tracemalloc.Filter(True, SRC_DIR + "*")])
    return sum(s.size for s in snap.statistics("filename"))


def rss_kib() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        return 0


def settle() -> None:
    gc.collect()
    GUARD.drain()


def check(engine: Any, tally: Tally, keep: list[Any], drop_site: tuple[str, int],
          keep_site: tuple[str, int], internal_errors_before: int) -> list[str]:
    """Everything that is wrong after a run (an empty list when the guard told the truth).

    True findings: PD102 at the dropped-leak line (one per dropped connection; PD110 there when
    the thread that dropped it ended before the garbage collector took it), PD103 (one per
    timeout the program saw), PD109 (checkouts that waited), and PD101/PD107 at either leak
    line (a leaked connection held, in its transaction, longer than the threshold; an asyncio
    proxy that ends up in a reference cycle lives until the next collection). Anything else
    is false.
    """
    problems: list[str] = []
    settle()
    pool = engine.sync_engine.pool if hasattr(engine, "sync_engine") else engine.pool
    info = stats_for(engine)
    if tally.unexpected:
        problems.append(f"the program saw {len(tally.unexpected)} unexpected errors, first: "
                        f"{tally.unexpected[0]}")
    if info is None:
        return [*problems, "the engine's pool is not guarded"]
    # the ledger holds exactly the kept leaks, at their line
    holds = [h for h in GUARD.ledger.holds() if h.pool is info and not h.ended]
    if len(holds) != len(keep):
        problems.append(f"the ledger holds {len(holds)} connections of this pool, expected "
                        f"{len(keep)} (the kept leaks)")
    for h in holds:
        site = h.describe()["site"]
        if site is None or (site["file"], site["line"]) != keep_site:
            problems.append(f"hold {h.id} at {site}, expected the kept-leak line {keep_site}")
    # the pool's own counters match ours
    if pool.checkedout() != len(keep) or info.checked_out != len(keep):
        problems.append(f"checked out: pool says {pool.checkedout()}, guard says "
                        f"{info.checked_out}, expected {len(keep)}")
    if info.checkouts != tally.checkouts:
        problems.append(f"checkouts: guard counted {info.checkouts}, the program made "
                        f"{tally.checkouts}")
    if info.timeouts != tally.timeouts:
        problems.append(f"timeouts: guard counted {info.timeouts}, the program saw "
                        f"{tally.timeouts}")
    if info.waiting != 0:
        problems.append(f"the guard still counts {info.waiting} waiting checkouts")
    # findings: only the true ones
    leak_functions = {(__file__, fn.__name__) for fn in LEAK_FUNCTIONS}
    by_code: dict[str, int] = {}
    for f in pooldoctor.report().findings:
        by_code[f.code] = by_code.get(f.code, 0) + f.count
        at = (f.site.file, f.site.line) if f.site else None
        if f.code == "PD102":
            false = at != drop_site
        elif f.code in ("PD101", "PD107", "PD110"):  # held (in a transaction begun) in a leak
            # function; PD110: by a thread that ended before the collector took a dropped one
            false = f.site is None or (f.site.file, f.site.function) not in leak_functions
        else:
            false = f.code not in ("PD103", "PD109")
        if false:
            problems.append(f"false {f.code} at {at}: {f.message}")
    dropped_told = by_code.get("PD102", 0) + sum(  # a dropped one is PD110 if its thread
        f.count for f in pooldoctor.report().findings  # ended before it was collected
        if f.code == "PD110" and f.site and (f.site.file, f.site.line) == drop_site)
    if dropped_told != tally.dropped:
        problems.append(f"{dropped_told} PD102 (or PD110) findings for {tally.dropped} "
                        "dropped connections")
    if by_code.get("PD103", 0) != tally.timeouts:
        problems.append(f"{by_code.get('PD103', 0)} PD103 findings for {tally.timeouts} "
                        "timeouts the program saw")
    exits = GUARD.check_exit(holds, when="at the end of the run")
    if [(f.site.file, f.site.line) if f.site else None for f in exits] != [keep_site] * len(keep):
        problems.append(f"PD105 at exit: {[f.message for f in exits]}")
    if GUARD.internal_errors != internal_errors_before:
        problems.append(f"{GUARD.internal_errors - internal_errors_before} internal errors")
    return problems


def slots_free(engine: Any) -> list[str]:
    """Check out every slot at once (pool_size + max_overflow): none may be lost."""
    n = POOL_SIZE + MAX_OVERFLOW
    conns = []
    try:
        for _ in range(n):
            conns.append(engine.connect())
    except exc.TimeoutError:
        return [f"only {len(conns)} of {n} slots could be checked out: a slot was lost"]
    finally:
        for c in conns:
            c.close()
    return []


async def aslots_free(engine: Any) -> list[str]:
    n = POOL_SIZE + MAX_OVERFLOW
    conns = []
    try:
        for _ in range(n):
            conns.append(await engine.connect())
    except exc.TimeoutError:
        return [f"only {len(conns)} of {n} slots could be checked out: a slot was lost"]
    finally:
        for c in conns:
            await c.close()
    return []


# --------------------------------------------------------------------------- drivers


@dataclass
class Result:
    name: str
    tally: Tally
    seconds: float
    memory: list[int]  # guard memory (bytes) after each round
    rss: list[int]  # KiB after each round
    findings: dict[str, int]
    problems: list[str]

    def figures(self) -> dict[str, Any]:
        t = self.tally
        return {"workload": self.name, "checkouts": t.checkouts,
                "per_second": round(t.checkouts / self.seconds) if self.seconds else None,
                "seconds": round(self.seconds, 1), "timeouts": t.timeouts,
                "invalidations": t.invalidations, "exceptions": t.booms,
                "sql_errors": t.sql_errors, "dropped_leaks": t.dropped,
                "findings": self.findings, "guard_memory_bytes": self.memory,
                "rss_kib": self.rss, "problems": self.problems}


def quiet_guard() -> None:
    pooldoctor.instrument(leak_threshold=LEAK_THRESHOLD, transaction_threshold=LEAK_THRESHOLD,
                          log=False, exit_check=False)


def reset_guard() -> None:
    pooldoctor.uninstrument()
    GUARD.clear()


def findings_by_code() -> dict[str, int]:
    out: dict[str, int] = {}
    for f in pooldoctor.report().findings:
        out[f.code] = out.get(f.code, 0) + f.count
    return dict(sorted(out.items()))


def start_tracing(round_no: int, trace: bool) -> bool:
    """Start tracemalloc after the warm-up round (tracing slows the workload down)."""
    if trace and round_no == 1 and not tracemalloc.is_tracing():
        tracemalloc.start()
        return True
    return False


# What the guard holds between rounds is bounded but not constant: one finding per code and
# site (new sites keep turning up as rare timings hit new lines: ~1 KB each) and the latest
# holders list of each PD103 finding (up to a few KB with 64 threads waiting). Measured on
# 2 cores, snapshots taken as guard_memory() takes them: up to ~19 KB between two rounds.
# A leak of 48 bytes per checkout (a dict entry, a tuple of frames kept per hold) over a
# round's thousand checkouts or more goes over this.
MEMORY_LIMIT = 49152


def memory_growth(memory: list[int], limit: int) -> list[str]:
    """The guard's live memory may not grow from one round to the next after warm-up."""
    if len(memory) < 2:
        return []
    growth = max(memory) - memory[0]
    if growth > limit:
        return [f"guard memory grew by {growth} bytes after warm-up: {memory}"]
    return []


def pd101_count() -> int:
    """Connections reported held too long, or held by a thread that ended (PD110: a kept
    leak whose thread is gone is told at once instead)."""
    return sum(f.count for f in pooldoctor.report().findings if f.code in ("PD101", "PD110"))


def wait_pd101(n: int, deadline_s: float) -> None:
    """Wait until the watchdog has reported ``n`` connections held too long."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and pd101_count() < n:
        time.sleep(0.05)


def stress_sync(url: str, threads: int, per_thread: int, rounds: int, kept: int,
                drop_rate: float = 0.001, memory_limit: int = MEMORY_LIMIT,
                wait_leak: bool = True, trace: bool = True, guarded: bool = True) -> Result:
    """Rounds of the threaded workload on one engine; kept leaks in the last round.

    ``guarded=False`` runs the same workload without the guard (for RSS and errors to compare
    with); then only the program's errors and the free slots are checked.
    """
    if guarded:
        quiet_guard()
    engine = sa.create_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
                              pool_timeout=POOL_TIMEOUT)
    errors0 = GUARD.internal_errors
    keep: list[Any] = []
    total = Tally()
    memory: list[int] = []
    rss: list[int] = []
    t0 = time.monotonic()
    tracing = False
    try:
        for i in range(rounds):
            last = i == rounds - 1
            tracing = tracing or start_tracing(i, trace)
            total.add(run_sync(engine, threads, per_thread, i + 1, kept if last else 0, keep,
                               drop_rate))
            settle()
            rss.append(rss_kib())
            if tracing and not last:
                memory.append(guard_memory())
        seconds = time.monotonic() - t0
        name = f"sync {engine.dialect.name}+{engine.dialect.driver}"
        if not guarded:
            for c in keep:
                c.close()
            problems = [f"unexpected: {u}" for u in total.unexpected[:3]] + slots_free(engine)
            return Result("bare " + name, total, seconds, [], rss, {}, problems)
        if wait_leak and keep:
            wait_pd101(len(keep), LEAK_THRESHOLD + 5)
        problems = check(engine, total, keep, (__file__, marker_line("LEAK-DROPPED")),
                         (__file__, marker_line("LEAK-KEPT")), errors0)
        if wait_leak and keep and pd101_count() < len(keep):
            problems.append(f"{pd101_count()} PD101 findings for {len(keep)} kept leaks")
        problems += memory_growth(memory, memory_limit)
        for c in keep:
            c.close()
        settle()
        if GUARD.ledger.holds():
            problems.append(f"{len(GUARD.ledger)} holds left after closing the kept leaks")
        problems += slots_free(engine)
        return Result(name, total, seconds, memory, rss, findings_by_code(), problems)
    finally:
        for c in keep:
            c.close()
        engine.dispose()
        reset_guard()
        if tracing:
            tracemalloc.stop()


async def _stress_async(url: str, tasks: int, per_task: int, rounds: int, kept: int,
                        drop_rate: float, memory_limit: int, wait_leak: bool,
                        trace: bool, guarded: bool) -> Result:
    from sqlalchemy.ext.asyncio import create_async_engine

    if guarded:
        quiet_guard()
    engine = create_async_engine(url, pool_size=POOL_SIZE, max_overflow=MAX_OVERFLOW,
                                 pool_timeout=POOL_TIMEOUT)
    errors0 = GUARD.internal_errors
    keep: list[Any] = []
    total = Tally()
    memory: list[int] = []
    rss: list[int] = []
    t0 = time.monotonic()
    tracing = False
    try:
        for i in range(rounds):
            last = i == rounds - 1
            tracing = tracing or start_tracing(i, trace)
            total.add(await run_async(engine, tasks, per_task, i + 1, kept if last else 0,
                                      keep, drop_rate))
            settle()
            rss.append(rss_kib())
            if tracing and not last:
                memory.append(guard_memory())
        seconds = time.monotonic() - t0
        if not guarded:
            for c in keep:
                await c.close()
            keep.clear()
            d = engine.dialect
            problems = ([f"unexpected: {u}" for u in total.unexpected[:3]]
                        + await aslots_free(engine))
            return Result(f"bare asyncio {d.name}+{d.driver}", total, seconds, [], rss, {},
                          problems)
        if wait_leak and keep:
            deadline = time.monotonic() + LEAK_THRESHOLD + 5
            while time.monotonic() < deadline and pd101_count() < len(keep):
                await asyncio.sleep(0.05)
        d = engine.dialect
        problems = check(engine, total, keep, (__file__, marker_line("ALEAK-DROPPED")),
                         (__file__, marker_line("ALEAK-KEPT")), errors0)
        if wait_leak and keep and pd101_count() < len(keep):
            problems.append(f"{pd101_count()} PD101 findings for {len(keep)} kept leaks")
        problems += memory_growth(memory, memory_limit)
        for c in keep:
            await c.close()
        keep.clear()
        settle()
        if GUARD.ledger.holds():
            problems.append(f"{len(GUARD.ledger)} holds left after closing the kept leaks")
        problems += await aslots_free(engine)
        return Result(f"asyncio {d.name}+{d.driver}", total, seconds, memory, rss,
                      findings_by_code(), problems)
    finally:
        for c in keep:
            await c.close()
        await engine.dispose()
        reset_guard()
        if tracing:
            tracemalloc.stop()


def stress_async(url: str, tasks: int, per_task: int, rounds: int, kept: int,
                 drop_rate: float = 0.001, memory_limit: int = MEMORY_LIMIT,
                 wait_leak: bool = True, trace: bool = True, guarded: bool = True) -> Result:
    """Rounds of the asyncio workload (``url`` must name an asyncio driver)."""
    return asyncio.run(_stress_async(url, tasks, per_task, rounds, kept, drop_rate,
                                     memory_limit, wait_leak, trace, guarded))


def async_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{ASYNC_DRIVERS[scheme.split('+')[0]]}://{rest}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="stress the runtime guard on real servers")
    ap.add_argument("--checkouts", type=int, default=100_000,
                    help="checkouts per workload, at least about (default 100000)")
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--kept", type=int, default=3, help="kept leaks in the last round")
    ap.add_argument("--backends", nargs="+", default=["pg", "mysql"], choices=["pg", "mysql"])
    ap.add_argument("--no-async", action="store_true")
    ap.add_argument("--no-tracemalloc", action="store_true")
    ap.add_argument("--bare", action="store_true",
                    help="the same workload without the guard (errors and RSS to compare)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # steps per worker and round; +10% because a step that times out checks nothing out
    per = max(1, -(-a.checkouts * 110 // (100 * a.threads * a.rounds)))
    results: list[Result] = []
    for b in a.backends:
        url = PG_URL if b == "pg" else MYSQL_URL
        results.append(stress_sync(url, a.threads, per, a.rounds, a.kept,
                                   trace=not a.no_tracemalloc, guarded=not a.bare))
        print(json.dumps(results[-1].figures()), flush=True)
        if not a.no_async:
            results.append(stress_async(async_url(url), a.threads, per, a.rounds, a.kept,
                                        trace=not a.no_tracemalloc, guarded=not a.bare))
            print(json.dumps(results[-1].figures()), flush=True)
    bad = [p for r in results for p in r.problems]
    total = sum(r.tally.checkouts for r in results)
    print(f"RESULT: {total} checkouts in {len(results)} workloads, {len(bad)} problems"
          + (" -- OK" if not bad else " -- FAIL"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
