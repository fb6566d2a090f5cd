"""Attribution behind a real PgBouncer, in transaction and in session pooling.

Through PgBouncer the backend pid a driver reports is not the server's, and in transaction
pooling a server connection serves many clients in turn: the statement tags are what still tie
a server connection to the host, pid and line of the client that holds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pooldoctor.runtime.tags import parse_process_tag

from .pgbouncer import pgbouncer
from .test_fleet import _env, settled_by_tag, workers


def _attributed(conns: dict[int, dict[str, Any]], info: dict[str, Any]) -> dict[int, str]:
    """line -> state of the server connections whose tags name this worker."""
    out: dict[int, str] = {}
    for c in conns.values():
        h = c.get("holder") or {}
        site = h.get("site") or {}
        if (h.get("pid"), h.get("hostname")) == (info["pid"], info["host"]) and \
                site.get("file", "").endswith("fleet_worker.py"):
            out[int(site["line"])] = c["state"]
    return out


@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_attribution_behind_pgbouncer(mode: str, pg_url: str, tmp_path: Path) -> None:
    with pgbouncer(pg_url, mode) as bouncer_url, \
            workers(bouncer_url, [[]], server_url=pg_url) as infos:
        info = infos[0]
        conns = settled_by_tag(pg_url, tmp_path, info)  # the server's view, not PgBouncer's
        seen = _attributed(conns, info)
        assert seen == {info["lines"]["idle_txn"]: "idle in transaction",
                        info["lines"]["active"]: "active"}, conns


def _console(url: str, empty: Path) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "pooldoctor", "snapshot", url, "--format", "json",
                        "--runtime-dir", str(empty)], capture_output=True, text=True,
                       timeout=120, env=_env())
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout)["snapshot"])


def test_the_console_shows_clients_the_server_cannot(pg_url: str, tmp_path: Path) -> None:
    """Transaction pooling: the worker's connection idle outside a transaction holds no server
    connection, so PostgreSQL has nothing of it; PgBouncer's SHOW CLIENTS has, with the tag."""
    with pgbouncer(pg_url, "transaction") as bouncer_url, \
            workers(bouncer_url, [[]], server_url=pg_url) as infos:
        info = infos[0]
        admin = sa.make_url(bouncer_url).set(database="pgbouncer").render_as_string(False)
        deadline = time.monotonic() + 30
        while True:
            snap = _console(admin, tmp_path)
            mine = [c for c in snap["connections"]
                    if (parse_process_tag(c["application"]) or (0, ""))[:2]
                    == (info["pid"], info["host"])]
            states = sorted(c["state"] for c in mine)
            if states == ["active", "active", "idle"] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert states == ["active", "active", "idle"], snap
        for c in mine:  # attributed to the host and pid from the tag alone
            assert (c["holder"]["pid"], c["holder"]["hostname"]) == (info["pid"], info["host"])
            if c["state"] == "active":
                assert "holds server backend" in c["query"]
        assert snap["backend"] == "pgbouncer" and any(c["own"] for c in snap["connections"])
        r = subprocess.run([sys.executable, "-m", "pooldoctor", "kill", admin, "--all", "--yes"],
                           capture_output=True, text=True, timeout=120, env=_env())
        assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
