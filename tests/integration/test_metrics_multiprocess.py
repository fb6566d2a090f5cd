"""Prometheus multiprocess mode: forked workers' figures add up on one endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp
    import sys

    import httpx
    import sqlalchemy as sa
    from prometheus_client import multiprocess

    import pooldoctor
    from pooldoctor.metrics import prometheus

    name, url = sys.argv[1], sys.argv[2]
    e = sa.create_engine(url, pool_size=2, max_overflow=0)
    pooldoctor.instrument(e, name=name, log=False, exit_check=False)
    server = prometheus.serve(0)

    def work():
        e.dispose(close=False)  # the child's own connections
        for _ in range(3):
            with e.connect() as c:
                c.exec_driver_sql("SELECT 1")
        e.dispose()

    with e.connect() as c:
        c.exec_driver_sql("SELECT 1")
    procs = [mp.get_context("fork").Process(target=work) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0, p.exitcode
        multiprocess.mark_process_dead(p.pid)
    print(httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).text)
    server.shutdown()
    e.dispose()
""")


def test_forked_workers_add_up(tmp_path: Path, pg_url: str) -> None:
    mpdir = tmp_path / "prom"
    mpdir.mkdir()
    name = f"metrics-mp-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(mpdir)}
    r = subprocess.run([sys.executable, "-c", SCRIPT, name, pg_url], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = {}
    hosts = set()
    for fam in text_string_to_metric_families(r.stdout):
        for s in fam.samples:
            labels = dict(s.labels)
            if s.name == "target_info":
                hosts.add(tuple(sorted(labels.items())))
            if labels.pop("pool", None) == name or labels.pop(
                    "db_client_connection_pool_name", None) == name:
                got[(s.name, tuple(sorted(labels.items())))] = s.value
    assert got[("pooldoctor_checkouts_total", ())] == 7  # 1 in the parent + 2 x 3
    assert got[("pooldoctor_connections_created_total", ())] == 3  # one per process
    assert got[("pooldoctor_connection_use_seconds_count", ())] == 7
    assert got[("pooldoctor_checkout_wait_seconds_count", ())] == 7
    assert got[("pooldoctor_connections_closed_total", (("reason", "disposed"),))] == 2
    # gauges: the children are gone (marked dead); the parent holds 1 idle connection
    assert got[("pooldoctor_connections", (("state", "idle"),))] == 1
    assert got[("pooldoctor_connections", (("state", "used"),))] == 0
    assert got[("pooldoctor_connections_max", ())] == 2
    assert "pooldoctor_checkout_timeouts_total" not in {k[0] for k in got} or got[
        ("pooldoctor_checkout_timeouts_total", ())] == 0
    # the OpenTelemetry-named families add up the same way
    assert got[("db_client_connection_wait_time_seconds_count", ())] == 7
    assert got[("db_client_connection_use_time_seconds_count", ())] == 7
    assert got[("db_client_connection_create_time_seconds_count", ())] == 3
    state = "db_client_connection_state"
    assert got[("db_client_connection_count", ((state, "idle"),))] == 1
    assert got[("db_client_connection_count", ((state, "used"),))] == 0
    assert got[("db_client_connection_max", ())] == 2
    assert got[("db_client_connection_idle_max", ())] == 2
    # one target_info for the host, whatever the number of processes
    assert hosts == {(("host_name", socket.gethostname()),)}
