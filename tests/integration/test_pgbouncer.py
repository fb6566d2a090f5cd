"""Attribution behind a real PgBouncer, in transaction and in session pooling.

Through PgBouncer the backend pid a driver reports is not the server's, and in transaction
pooling a server connection serves many clients in turn: the statement tags are what still tie
a server connection to the host, pid and line of the client that holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .pgbouncer import pgbouncer
from .test_fleet import settled_by_tag, workers


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
