"""Benchmark of the server watch: one snapshot's query time with many real connections, and the
rendering time of 5,000 synthetic rows.

    .venv/bin/python bench/snapshot.py [--mysql URL] [--pg URL] [--connections 1000]
                                       [--pg-connections 40] [--rows 5000]
                                       [--raise-max-connections]

MariaDB/MySQL: opens up to ``--connections`` real connections on loopback (a bounded loop),
leaving 20 of the server's free slots to everyone else. The server's configuration is never
changed unless asked: ``--raise-max-connections`` raises ``max_connections`` with SET GLOBAL
for the run (when it is too low) and restores it afterwards.
PostgreSQL (max_connections is usually 100 and shared): opens only ``--pg-connections``.
Every connection is closed at the end. Prints numbers; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from pooldoctor.server.model import ACTIVE, IDLE, IDLE_TXN, ServerConn, Snapshot
from pooldoctor.server.probes import open_probe
from pooldoctor.server.render import render_snapshot
from pooldoctor.urls import parse_url

MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time in ms of ``repeat`` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def bench_mysql(url: str, n: int, repeat: int, raise_limit: bool = False) -> None:
    import pymysql

    u = parse_url(url)
    kw = {"host": u.host, "port": u.port or 3306, "user": u.username,
          "password": u.password or "", "database": u.database}
    admin = pymysql.connect(autocommit=True, **kw)
    conns: list[Any] = []
    raised = False
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.max_connections")
            (old_max,) = cur.fetchone()  # type: ignore[misc]
        raised = raise_limit and old_max < n + 60
        if raised:
            with admin.cursor() as cur:
                cur.execute(f"SET GLOBAL max_connections = {n + 60}")
        else:  # the server as it is: leave room for everyone else
            with admin.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
                used = int(cur.fetchone()[1])  # type: ignore[index]
            n = max(min(n, old_max - used - 20), 0)
        t0 = time.perf_counter()
        for _ in range(n):  # bounded loop on loopback
            conns.append(pymysql.connect(autocommit=True, **kw))
        opened_s = time.perf_counter() - t0
        with open_probe(url) as probe:
            probe.snapshot()  # warm up
            ms, snap = timed(probe.snapshot, repeat)
            render_ms, _ = timed(lambda: render_snapshot(snap), repeat)
        print(f"mysql  {snap.server_version}: {len(conns)} connections opened in "
              f"{opened_s:.2f} s; snapshot sees {snap.total}; one snapshot "
              f"({snap.queries} queries) median {ms:.1f} ms over {repeat}; "
              f"rendering it {render_ms:.1f} ms")
    finally:
        for c in conns:
            c.close()
        if raised:
            with admin.cursor() as cur:
                cur.execute(f"SET GLOBAL max_connections = {old_max}")
        admin.close()


def bench_pg(url: str, n: int, repeat: int) -> None:
    import psycopg

    u = parse_url(url)
    kw = {"host": u.host, "port": u.port or 5432, "user": u.username, "dbname": u.database,
          "autocommit": True, "application_name": "pooldoctor-bench"}
    conns: list[Any] = []
    try:
        with open_probe(url) as probe:
            free = probe.snapshot()
            n = max(min(n, free.limit - free.total - 20), 0)  # leave room for everyone else
            t0 = time.perf_counter()
            for _ in range(n):
                conns.append(psycopg.connect(**kw))
            opened_s = time.perf_counter() - t0
            probe.snapshot()
            ms, snap = timed(probe.snapshot, repeat)
            render_ms, _ = timed(lambda: render_snapshot(snap), repeat)
        print(f"pg     {snap.server_version.split()[0]}: {len(conns)} connections opened in "
              f"{opened_s:.2f} s; snapshot sees {snap.total}; one snapshot "
              f"({snap.queries} query) median {ms:.1f} ms over {repeat}; "
              f"rendering it {render_ms:.1f} ms")
    finally:
        for c in conns:
            c.close()


def synthetic(rows: int) -> Snapshot:
    states = (IDLE, IDLE, IDLE_TXN, ACTIVE)
    conns = [ServerConn(1000 + i, f"user{i % 17}", f"db{i % 5}", f"10.0.{i % 250}.{i % 200}",
                        30000 + i, f"pooldoctor:{4000 + i % 60}:worker.py", states[i % 4],
                        float(i), float(i % 600), float(i % 90) if i % 4 == 2 else None,
                        f"SELECT * FROM orders WHERE customer_id = ? AND status = ? -- {i}")
             for i in range(rows)]
    return Snapshot("postgresql", "postgresql://app@db/app", "16.2", max_connections=rows + 100,
                    reserved=3, conns=conns)


def bench_render(rows: int, repeat: int) -> None:
    snap = synthetic(rows)
    text_ms, text = timed(lambda: render_snapshot(snap), repeat)
    json_ms, _ = timed(lambda: snap.to_dict(), repeat)
    line = (f"render {rows} synthetic rows: text {text_ms:.1f} ms ({len(text) // 1024} KiB), "
            f"to_dict {json_ms:.1f} ms")
    try:
        from rich.console import Console

        from pooldoctor.server.filters import ConnFilter
        from pooldoctor.server.top import View

        view = View(ConnFilter(), "state-age", None, 60)

        def rich_frame() -> None:
            console = Console(file=io.StringIO(), width=200, height=50)
            console.print(view.build(snap, 50))

        top_ms, _ = timed(rich_frame, repeat)
        line += f", one `top` frame (sort + filter {rows}, draw 42) {top_ms:.1f} ms"
    except ImportError:
        pass
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mysql", default=MYSQL)
    ap.add_argument("--pg", default=PG)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--pg-connections", type=int, default=40)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--raise-max-connections", action="store_true",
                    help="MariaDB/MySQL: raise max_connections with SET GLOBAL for the run "
                         "(restored afterwards) to open --connections; off by default")
    args = ap.parse_args()
    bench_render(args.rows, args.repeat)
    for name, fn in (("mysql", lambda: bench_mysql(args.mysql, args.connections, args.repeat,
                                                       args.raise_max_connections)),
                     ("pg", lambda: bench_pg(args.pg, args.pg_connections, args.repeat))):
        try:
            fn()
        except Exception as e:  # a server may be missing on this machine
            print(f"{name}: skipped ({type(e).__name__}: {e})", file=sys.stderr)


if __name__ == "__main__":
    main()
