"""Cost of the metrics on a checkout/checkin cycle, against bare SQLAlchemy, in one run.

Four sides, rounds interleaved (each round runs them in a rotated order, so warm-up and
drift hit all alike): bare SQLAlchemy; the guard; the guard with metrics recorded (what the
Prometheus collector reads at scrape time); the guard with metrics and OpenTelemetry's
instruments on a real SDK MeterProvider. The figure per side is the median of its per-round
ratios to the bare round. SQLite ``pool.connect().close()`` is timed in thread CPU time; the
PostgreSQL ``SELECT 1`` round trip in wall time. Then the time of one Prometheus scrape and
one OpenTelemetry collection with 20 pools; and a PostgreSQL pool under load through the
SDK (checkouts, timeouts, wait_time with the timed-out waits).

    python bench/metrics_export.py [--cycles 20000] [--rounds 7] [--pg URL | --no-pg]
                                   [--pg-cycles 300] [--pg-rounds 21]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

import sqlalchemy as sa
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest

import pooldoctor
from pooldoctor import metrics
from pooldoctor.metrics import otel, prometheus

PROVIDER = MeterProvider(metric_readers=[InMemoryMetricReader()])


@contextmanager
def guard() -> Any:
    pooldoctor.instrument(log=False, exit_check=False)
    try:
        yield
    finally:
        pooldoctor.uninstrument()


@contextmanager
def recorded() -> Any:
    metrics.enable()
    try:
        yield
    finally:
        metrics.disable()


@contextmanager
def with_otel() -> Any:
    otel.instrument(PROVIDER)
    try:
        yield
    finally:
        otel.uninstrument(PROVIDER)


SIDES: dict[str, tuple[Callable[[], AbstractContextManager[Any]], ...]] = {
    "bare": (),
    "guard": (guard,),
    "guard+metrics (Prometheus)": (guard, recorded),
    "guard+metrics+OpenTelemetry SDK": (guard, recorded, with_otel),
}


def per_cycle(fn: Callable[[], None], cycles: int, clock: Callable[[], float]) -> float:
    t0 = clock()
    for _ in range(cycles):
        fn()
    return (clock() - t0) / cycles


def measure(title: str, make: Callable[[], tuple[Callable[[], None], Callable[[], None]]],
            cycles: int, rounds: int, clock: Callable[[], float]) -> None:
    times: dict[str, list[float]] = {s: [] for s in SIDES}
    names = list(SIDES)
    for r in range(rounds):
        for side in names[r % len(names):] + names[:r % len(names)]:
            with ExitStack() as stack:
                for cm in SIDES[side]:
                    stack.enter_context(cm())
                fn, close = make()  # engines made under the side's instrumentation
                try:
                    for _ in range(max(cycles // 10, 10)):
                        fn()
                    times[side].append(per_cycle(fn, cycles, clock))
                finally:
                    close()
    print(f"\n{title} ({rounds} rounds of {cycles} cycles)")
    for side in names:
        med = statistics.median(times[side])
        ratios = sorted(t / b for t, b in zip(times[side], times["bare"]))
        print(f"  {side:<34} {med * 1e6:9.2f} us/cycle   ratio {statistics.median(ratios):5.2f}"
              f"   (ratios {ratios[0]:.2f}..{ratios[-1]:.2f})")


def sqlite_maker(path: str) -> Callable[[], tuple[Callable[[], None], Callable[[], None]]]:
    def make() -> tuple[Callable[[], None], Callable[[], None]]:
        e = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.QueuePool, pool_size=5)
        pool = e.pool

        def cycle() -> None:
            pool.connect().close()

        return cycle, e.dispose

    return make


def pg_maker(url: str) -> Callable[[], tuple[Callable[[], None], Callable[[], None]]]:
    def make() -> tuple[Callable[[], None], Callable[[], None]]:
        e = sa.create_engine(url, pool_size=2, connect_args={"connect_timeout": 10})

        def cycle() -> None:
            with e.connect() as c:
                c.exec_driver_sql("SELECT 1")

        return cycle, e.dispose

    return make


def collection_cost(path: str, pools: int = 20, repeat: int = 50) -> None:
    with guard(), recorded(), with_otel():
        engines = [sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.QueuePool)
                   for _ in range(pools)]
        for i, e in enumerate(engines):
            pooldoctor.instrument(e, name=f"bench-{i}", log=False, exit_check=False)
            e.pool.connect().close()
        registry = CollectorRegistry()
        prometheus.register(registry)
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        otel.instrument(provider)
        try:
            t0 = time.perf_counter()
            for _ in range(repeat):
                generate_latest(registry)
            scrape = (time.perf_counter() - t0) / repeat
            t0 = time.perf_counter()
            for _ in range(repeat):
                reader.get_metrics_data()
            collect = (time.perf_counter() - t0) / repeat
            prometheus.register(registry, otel_names=False)
            t0 = time.perf_counter()
            for _ in range(repeat):
                generate_latest(registry)
            legacy = (time.perf_counter() - t0) / repeat
        finally:
            otel.uninstrument(provider)
            provider.shutdown()
            prometheus.register(registry)  # the defaults again
            prometheus.unregister(registry)
            for e in engines:
                e.dispose()
    print(f"\none Prometheus scrape, {pools} pools: {scrape * 1e3:.2f} ms "
          f"({legacy * 1e3:.2f} ms with otel_names=False); "
          f"one OpenTelemetry collection: {collect * 1e3:.2f} ms")


def under_load(url: str, threads: int = 8, each: int = 25, hold: float = 0.02,
               timeout: float = 0.1) -> None:
    """A PostgreSQL pool of 2 under 8 threads through the OpenTelemetry SDK: what the
    instruments say against what the threads saw (timed-out waits are in wait_time)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    ok = timed_out = 0
    lock = threading.Lock()
    with guard(), recorded():
        otel.instrument(provider)
        e = sa.create_engine(url, pool_size=2, max_overflow=0, pool_timeout=timeout,
                             connect_args={"connect_timeout": 10})
        pooldoctor.instrument(e, name="bench-load", log=False, exit_check=False)

        def work() -> None:
            nonlocal ok, timed_out
            for _ in range(each):
                try:
                    with e.connect() as c:
                        c.exec_driver_sql(f"SELECT pg_sleep({hold})")
                    with lock:
                        ok += 1
                except sa.exc.TimeoutError:
                    with lock:
                        timed_out += 1

        ts = [threading.Thread(target=work) for _ in range(threads)]
        t0 = time.perf_counter()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        took = time.perf_counter() - t0
        got: dict[str, Any] = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    for p in m.data.data_points:
                        if p.attributes.get("db.client.connection.pool.name") == "bench-load":
                            got[m.name] = p
        otel.uninstrument(provider)
        provider.shutdown()
        e.dispose()
    w = got["db.client.connection.wait_time"]
    print(f"\nPostgreSQL pool of 2, {threads} threads x {each} checkouts holding "
          f"{hold * 1000:.0f} ms, pool_timeout {timeout} s, {took:.1f} s: {ok} checkouts, "
          f"{timed_out} timed out")
    print(f"  db.client.connection.wait_time: count {w.count} (= {ok} + {timed_out}), "
          f"sum {w.sum:.2f} s, mean {w.sum / max(w.count, 1) * 1000:.1f} ms")
    print(f"  db.client.connection.timeouts: {got['db.client.connection.timeouts'].value}; "
          f"use_time count {got['db.client.connection.use_time'].count}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--pg-cycles", type=int, default=300)
    ap.add_argument("--pg-rounds", type=int, default=21)
    a = ap.parse_args()
    print(f"python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/bench.sqlite"
        measure("SQLite pool.connect().close(), thread CPU time", sqlite_maker(path),
                a.cycles, a.rounds, time.thread_time)
        if not a.no_pg:
            try:
                measure("PostgreSQL SELECT 1 round trip, wall time", pg_maker(a.pg),
                        a.pg_cycles, a.pg_rounds, time.perf_counter)
                under_load(a.pg)
            except sa.exc.OperationalError as e:
                print(f"PostgreSQL skipped: {str(e).splitlines()[0]}")
        collection_cost(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
