"""Cost of bounding every watch query by ``--timeout`` (a timer per query that shuts a silent
socket down), against the same probe's queries without it, in the same run.

    .venv/bin/python bench/server_timeout.py [--pg URL] [--mysql URL] [--repeat 300]

Prints the median time of one snapshot each way and their ratio; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator

from pooldoctor.dbconnect import ServerConnection
from pooldoctor.server.probes import open_probe

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"


@contextlib.contextmanager
def _unbounded(self: ServerConnection) -> Iterator[None]:
    yield


def median_ms(url: str, repeat: int, bounded: bool) -> float:
    original = ServerConnection.bounded
    if not bounded:
        ServerConnection.bounded = _unbounded  # type: ignore[method-assign]
    try:
        with open_probe(url, timeout=5) as probe:
            probe.snapshot()  # warm up
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                probe.snapshot()
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        ServerConnection.bounded = original  # type: ignore[method-assign]
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pg", default=PG)
    ap.add_argument("--mysql", default=MYSQL)
    ap.add_argument("--repeat", type=int, default=300)
    args = ap.parse_args()
    print("server      queries  bare ms  bounded ms  ratio")
    for name, url, queries in (("postgresql", args.pg, 1), ("mariadb", args.mysql, 2)):
        bare = median_ms(url, args.repeat, bounded=False)  # interleaved: bare, bounded, bare
        bounded = median_ms(url, args.repeat, bounded=True)
        bare = min(bare, median_ms(url, args.repeat, bounded=False))
        print(f"{name:<11} {queries:>7}  {bare:>7.3f}  {bounded:>10.3f}  {bounded / bare:.2f}")


if __name__ == "__main__":
    main()
