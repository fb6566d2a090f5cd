"""Cost of one dashboard poll (/api/state) with N live holds and a full hour of chart history.

    python bench/dashboard.py [N ...]        # default: 10 200
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import sqlalchemy as sa
from starlette.testclient import TestClient

import pooldoctor
from pooldoctor.dashboard import create_app
from pooldoctor.dashboard.data import Dashboard


def poll_cost(n: int, polls: int = 21) -> tuple[float, int]:
    """Median seconds of one /api/state poll with ``n`` holds, and the response size."""
    engine = sa.create_engine(f"sqlite:///{tempfile.mkdtemp()}/b.db", pool_size=n,
                              max_overflow=0)
    held = [engine.connect() for _ in range(n)]
    dash = Dashboard(local=True, interval=0.0, history_len=3600)
    for i in range(3600):
        dash.history.add([{"key": r["key"], "used": n, "idle": 0, "overflow": 0, "waiting": 0}
                          for r in dash.pools()], now=1000.0 + i)
    times: list[float] = []
    size = 0
    with TestClient(create_app(dash), base_url="http://127.0.0.1") as client:
        for _ in range(polls):
            t0 = time.perf_counter()
            response = client.get("/api/state")
            times.append(time.perf_counter() - t0)
            size = len(response.content)
    for c in held:
        c.close()
    engine.dispose()
    return statistics.median(times), size


def main() -> int:
    os.environ["POOLDOCTOR_RUNTIME_DIR"] = tempfile.mkdtemp()
    pooldoctor.instrument(leak_threshold=600, log=False, drivers=False)
    for n in [int(a) for a in sys.argv[1:]] or [10, 200]:
        seconds, size = poll_cost(n)
        print(f"{n} holds, 3600-sample history: /api/state median {seconds * 1000:.1f} ms, "
              f"{size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
