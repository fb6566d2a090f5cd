"""Overhead of the pool adapters against the bare libraries, in one run.

For each library, three figures:

- the bare acquire/release cycle, in CPU time of this thread (other processes on a busy
  machine barely disturb it): rounds of cycles alternate bare (no guard installed) and
  guarded (``instrument()``, global, as ``pooldoctor run`` does) in the orders AB, BA, AB...;
- a ``SELECT 1`` round trip through a checkout, in CPU time of this thread (``--trips`` per
  round, rounds AB/BA as above): what the guard adds to the client's work per trip, the
  figure that the machine's load disturbs least;
- the same round trip in wall time (waiting for the server is the
  point of that figure). The loopback round trip drifts by several percent from one block of
  cycles to the next on a shared machine, more than the guard's cost, so bare and guarded
  take turns cycle by cycle (AB, BA...), with the guard installed and switched on and off
  between cycles (``GUARD.active``: the bare side then pays the wrappers' pass-through, a
  fraction of a microsecond, see the first figure). Ratios are taken per block of pairs;
  ``added`` is the median of the differences within pairs, and ``1 + added / bare`` the
  ratio it makes (a stall of the machine lands in one cycle of one pair: this figure barely
  moves, the block ratios do).

Both sides are warmed up first; each figure is the median ratio guarded/bare with its
interquartile range. PostgreSQL for psycopg_pool, asyncpg and psycopg2.pool; MariaDB for
aiomysql and DBUtils; aiosqlite open/close on a file.

    python bench/adapters.py [--rounds 21] [--cycles 2000] [--trips 300] [--pairs 2000] [--block 50]
                             [--pg-host HOST] [--my-host HOST] [--only NAME ...]

The steady figure, instructions per psycopg2.pool getconn/putconn cycle (no server round trip
in the cycle), under callgrind: run ``--instructions N bare|guarded`` for two values of N and
divide the difference of the totals by the difference of N (start-up cancels out):

    valgrind --tool=callgrind --callgrind-out-file=cg.out \
        python bench/adapters.py --instructions 6000 guarded   # then 2000; then bare

``--instructions-lib psycopg_pool`` runs psycopg_pool's ``ConnectionPool`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pooldoctor
from pooldoctor.guard import GUARD

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test",
      "application_name": "pd-bench-adapters"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
Step = Callable[[int], None]  # runs n cycles


def pairs(name: str, step: Step, n: int, rounds: int, clock: Callable[[], float]) -> None:
    def timed(guarded: bool) -> float:
        if guarded:
            pooldoctor.instrument(log=False, exit_check=False)
        try:
            t0 = clock()
            step(n)
            return (clock() - t0) / n
        finally:
            if guarded:
                pooldoctor.uninstrument()
                GUARD.clear()

    timed(False)  # warm up both sides
    timed(True)
    bare: list[float] = []
    guarded: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            bare.append(timed(False))
            guarded.append(timed(True))
        else:
            guarded.append(timed(True))
            bare.append(timed(False))
    ratios = sorted(g / b for b, g in zip(bare, guarded))
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"{name:<44} bare {statistics.median(bare) * 1e6:9.2f} us  guarded "
          f"{statistics.median(guarded) * 1e6:9.2f} us  ratio {statistics.median(ratios):5.3f} "
          f"(IQR {q1:5.3f}-{q3:5.3f})", flush=True)


def repeat(one: Callable[[], None]) -> Step:
    """A step of n calls of ``one`` (a round trip), for :func:`pairs`."""
    def step(n: int) -> None:
        for _ in range(n):
            one()

    return step


def interleaved(name: str, one: Callable[[], None], n_pairs: int, block: int) -> None:
    """One cycle guarded, one bare, in the orders AB, BA...; ratio per block of pairs."""
    pooldoctor.instrument(log=False, exit_check=False)
    clock = time.perf_counter
    try:
        for _ in range(max(block, 20)):  # warm up both sides
            GUARD.active = True
            one()
            GUARD.active = False
            one()
        bare: list[float] = []
        guarded: list[float] = []
        for i in range(n_pairs):
            for on in ((True, False) if i % 2 else (False, True)):
                GUARD.active = on
                t0 = clock()
                one()
                (guarded if on else bare).append(clock() - t0)
        GUARD.active = True
    finally:
        pooldoctor.uninstrument()
        GUARD.clear()
    ratios = sorted(sum(guarded[i:i + block]) / sum(bare[i:i + block])
                    for i in range(0, n_pairs - block + 1, block))
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    # the outlier-proof figure: the guard's cost per cycle is the median of the differences
    # within pairs (a stall of the machine hits one cycle of a pair, not a block's mean)
    added = statistics.median(g - b for g, b in zip(guarded, bare))
    mb = statistics.median(bare)
    print(f"{name:<44} bare {mb * 1e6:9.2f} us  guarded "
          f"{statistics.median(guarded) * 1e6:9.2f} us  ratio {statistics.median(ratios):5.3f} "
          f"(IQR {q1:5.3f}-{q3:5.3f}); added {added * 1e6:+.2f} us = "
          f"{1 + added / mb:5.3f}", flush=True)


def bench_psycopg_pool(a: argparse.Namespace) -> None:
    import psycopg_pool

    dsn = " ".join(f"{k}={v}" for k, v in PG.items())
    pool = psycopg_pool.ConnectionPool(dsn, min_size=2, max_size=2, open=True)
    pool.wait(timeout=30)

    def cycle(n: int) -> None:
        for _ in range(n):
            pool.putconn(pool.getconn())

    def trip() -> None:
        with pool.connection() as c:
            c.execute("SELECT 1").fetchone()

    pairs("psycopg_pool getconn/putconn", cycle, a.cycles, a.rounds, time.thread_time)
    pairs("psycopg_pool SELECT 1 trip (thread CPU)", repeat(trip), a.trips, a.rounds,
          time.thread_time)
    interleaved("psycopg_pool connection() + SELECT 1", trip, a.pairs, a.block)
    pool.close()


def bench_psycopg2_pool(a: argparse.Namespace) -> None:
    import psycopg2.pool

    kw = {k: v for k, v in PG.items()}
    pool = psycopg2.pool.ThreadedConnectionPool(1, 2, **kw)

    def cycle(n: int) -> None:
        for _ in range(n):
            pool.putconn(pool.getconn())

    def trip() -> None:
        c = pool.getconn()
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        c.rollback()
        pool.putconn(c)

    pairs("psycopg2.pool getconn/putconn", cycle, a.cycles, a.rounds, time.thread_time)
    pairs("psycopg2.pool SELECT 1 trip (thread CPU)", repeat(trip), a.trips, a.rounds,
          time.thread_time)
    interleaved("psycopg2.pool getconn + SELECT 1 + putconn", trip, a.pairs, a.block)
    pool.closeall()


def bench_asyncpg(a: argparse.Namespace) -> None:
    import asyncpg

    loop = asyncio.new_event_loop()
    uri = (f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}"
           f"?application_name={PG['application_name']}")

    async def make() -> Any:
        return await asyncpg.create_pool(uri, min_size=2, max_size=2)

    pool = loop.run_until_complete(make())

    async def cycle(n: int) -> None:
        for _ in range(n):
            c = await pool.acquire()
            await pool.release(c)

    async def trip() -> None:
        async with pool.acquire() as c:
            await c.fetchval("SELECT 1")

    pairs("asyncpg acquire/release", lambda n: loop.run_until_complete(cycle(n)),
          a.cycles, a.rounds, time.thread_time)
    pairs("asyncpg SELECT 1 trip (thread CPU)", repeat(lambda: loop.run_until_complete(trip())),
          a.trips, a.rounds, time.thread_time)
    interleaved("asyncpg acquire + SELECT 1 + release",
                lambda: loop.run_until_complete(trip()), a.pairs, a.block)
    loop.run_until_complete(pool.close())
    loop.close()


def bench_aiomysql(a: argparse.Namespace) -> None:
    import aiomysql

    loop = asyncio.new_event_loop()
    kw = {"host": MY["host"], "port": MY["port"], "user": MY["user"],
          "password": MY["password"], "db": MY["database"]}
    async def make() -> Any:
        return await aiomysql.create_pool(minsize=2, maxsize=2, **kw)

    pool = loop.run_until_complete(make())

    async def cycle(n: int) -> None:
        for _ in range(n):
            c = await pool.acquire()
            pool.release(c)

    async def trip() -> None:
        async with pool.acquire() as c, c.cursor() as cur:
            await cur.execute("SELECT 1")
            await cur.fetchone()

    pairs("aiomysql acquire/release", lambda n: loop.run_until_complete(cycle(n)),
          a.cycles, a.rounds, time.thread_time)
    pairs("aiomysql SELECT 1 trip (thread CPU)", repeat(lambda: loop.run_until_complete(trip())),
          a.trips, a.rounds, time.thread_time)
    interleaved("aiomysql acquire + SELECT 1 (MariaDB)",
                lambda: loop.run_until_complete(trip()), a.pairs, a.block)
    pool.close()
    loop.run_until_complete(pool.wait_closed())
    loop.close()


def bench_dbutils(a: argparse.Namespace) -> None:
    import pymysql
    from dbutils.pooled_db import PooledDB

    db = PooledDB(pymysql, mincached=2, maxconnections=2, maxshared=0, **MY)

    def cycle(n: int) -> None:
        for _ in range(n):
            db.connection().close()

    def trip() -> None:
        c = db.connection()
        cur = c.cursor()
        cur.execute("SELECT 1")
        cur.fetchone()
        cur.close()
        c.close()

    pairs("DBUtils PooledDB connection()/close()", cycle, a.cycles, a.rounds, time.thread_time)
    pairs("DBUtils SELECT 1 trip (thread CPU)", repeat(trip), a.trips, a.rounds,
          time.thread_time)
    interleaved("DBUtils connection() + SELECT 1 (MariaDB)", trip, a.pairs, a.block)
    db.close()


def bench_aiosqlite(a: argparse.Namespace) -> None:
    import aiosqlite

    loop = asyncio.new_event_loop()
    path = os.path.join(tempfile.mkdtemp(), "b.db")

    async def cycle() -> None:
        async with aiosqlite.connect(path) as db:
            await db.execute("SELECT 1")

    interleaved("aiosqlite connect + SELECT 1 + close", lambda: loop.run_until_complete(cycle()),
                max(a.pairs // 10, 40), max(a.block // 5, 10))
    loop.close()


BENCHES = {"psycopg_pool": bench_psycopg_pool, "asyncpg": bench_asyncpg,
           "psycopg2_pool": bench_psycopg2_pool, "aiomysql": bench_aiomysql,
           "dbutils": bench_dbutils, "aiosqlite": bench_aiosqlite}


def instructions(n: int, guarded: bool, lib: str = "psycopg2_pool") -> None:
    """``n`` getconn/putconn cycles of ``lib`` after a warm-up, for callgrind (see the
    docstring): psycopg2.pool (default), psycopg_pool or asyncpg (acquire/release, which
    includes asyncpg's reset query: the guard's share is the difference with bare)."""
    if lib == "asyncpg":
        _instructions_asyncpg(n, guarded)
        return
    if lib == "psycopg_pool":
        import psycopg_pool

        dsn = " ".join(f"{k}={v}" for k, v in PG.items())
        pool: Any = psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=1, open=True)
        pool.wait(timeout=30)
        close = pool.close
    else:
        import psycopg2.pool

        pool = psycopg2.pool.ThreadedConnectionPool(1, 1, **PG)
        close = pool.closeall
    if guarded:
        pooldoctor.instrument(log=False, exit_check=False)
    for k in (200, n):  # warm up: files judged, caches filled
        for _ in range(k):
            pool.putconn(pool.getconn())
    close()


def _instructions_asyncpg(n: int, guarded: bool) -> None:
    import asyncpg

    async def run() -> None:
        pool = await asyncpg.create_pool(
            f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}",
            min_size=1, max_size=1)
        if guarded:
            pooldoctor.instrument(log=False, exit_check=False)
        for k in (200, n):
            for _ in range(k):
                await pool.release(await pool.acquire())
        await pool.close()

    asyncio.run(run())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--cycles", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--trips", type=int, default=300,
                    help="SELECT 1 round trips per round of the thread-CPU figure")
    ap.add_argument("--block", type=int, default=50)
    ap.add_argument("--pg-host", default=PG["host"])
    ap.add_argument("--my-host", default=MY["host"])
    ap.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=None)
    ap.add_argument("--instructions", nargs=2, metavar=("N", "SIDE"), default=None,
                    help="run N psycopg2.pool cycles (SIDE: bare or guarded), for callgrind")
    ap.add_argument("--instructions-lib", choices=("psycopg2_pool", "psycopg_pool", "asyncpg"),
                    default="psycopg2_pool", help="the pool --instructions cycles")
    a = ap.parse_args()
    if a.instructions is not None:
        n, side = a.instructions
        if not n.isdigit() or side not in ("bare", "guarded"):
            ap.error("--instructions takes a number of cycles and bare or guarded")
        PG["host"] = a.pg_host
        instructions(int(n), side == "guarded", a.instructions_lib)
        return 0
    if a.rounds < 3 or a.pairs < a.block or a.block < 1:
        ap.error("--rounds must be at least 3, --pairs at least --block, --block at least 1")
    PG["host"], MY["host"] = a.pg_host, a.my_host
    print(f"python {sys.version.split()[0]}, {a.rounds} rounds (AB/BA), median ratio guarded/bare "
          f"with its IQR", flush=True)
    for name in a.only or BENCHES:
        try:
            BENCHES[name](a)
        except Exception as e:  # a server or library missing: say so, go on
            print(f"{name:<44} skipped: {type(e).__name__}: {e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
