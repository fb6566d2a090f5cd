"""Cost of one dashboard poll (/api/state) with N live holds and a full chart history."""
import statistics, sys, time, tempfile, os
import sqlalchemy as sa
import pooldoctor
from starlette.testclient import TestClient
from pooldoctor.dashboard import create_app
from pooldoctor.dashboard.data import Dashboard

os.environ["POOLDOCTOR_RUNTIME_DIR"] = tempfile.mkdtemp()
n = int(sys.argv[1])
pooldoctor.instrument(leak_threshold=600, log=False, drivers=False)
eng = sa.create_engine(f"sqlite:///{tempfile.mkdtemp()}/b.db", pool_size=n, max_overflow=0)
held = [eng.connect() for _ in range(n)]
dash = Dashboard(local=True, interval=0.0, history_len=3600)
for i in range(3600):
    dash.history.add([{"key": r["key"], "used": n, "idle": 0, "overflow": 0, "waiting": 0}
                      for r in dash.pools()], now=1000.0 + i)
with TestClient(create_app(dash), base_url="http://127.0.0.1") as c:
    times, size = [], 0
    for _ in range(21):
        t0 = time.perf_counter(); r = c.get("/api/state"); times.append(time.perf_counter() - t0)
        size = len(r.content)
print(f"{n} holds, 3600-sample history: /api/state median {statistics.median(times)*1000:.1f} ms, {size/1024:.0f} KiB")
