"""Server snapshots against the real PostgreSQL and MariaDB: known connections, states, ages,
privileges. Every test identifies its own connections (application name or ids)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from pooldoctor.server.filters import ConnFilter
from pooldoctor.server.kill import targets, terminate
from pooldoctor.server.model import ACTIVE, HIDDEN, IDLE, IDLE_TXN, Snapshot
from pooldoctor.server.probe import Probe
from pooldoctor.server.probes import open_probe

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def unique(prefix: str = "pdsrv") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def wait_for(pred: Callable[[], Any], timeout: float = 15.0, what: str = "condition",
             every: float = 0.05) -> Any:
    """Poll ``pred`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


# ----------------------------------------------------------------------------- drivers


def pg_connect(url: str, app: str, autocommit: bool = True, user: str | None = None) -> Any:
    import psycopg

    u = sa.make_url(url)
    return psycopg.connect(host=u.host, port=u.port or 5432, user=user or u.username,
                           dbname=u.database, application_name=app, autocommit=autocommit)


def pg_id(conn: Any) -> int:
    return int(conn.info.backend_pid)


def my_connect(url: str, autocommit: bool = True, user: str | None = None) -> Any:
    import pymysql

    u = sa.make_url(url)
    return pymysql.connect(host=u.host, port=u.port or 3306, user=user or u.username,
                           password=u.password or "", database=u.database,
                           autocommit=autocommit)


def my_id(conn: Any) -> int:
    return int(conn.thread_id())


@contextmanager
def closing_all() -> Iterator[list[Any]]:
    conns: list[Any] = []
    try:
        yield conns
    finally:
        for c in conns:
            try:
                c.close()
            except Exception:
                pass


@contextmanager
def sleeping(run: Callable[[], None], cancel: Callable[[], None]) -> Iterator[None]:
    """Run a blocking ``run`` (a server-side sleep) in a thread; cancel and join on exit."""
    t = threading.Thread(target=_swallow(run), daemon=True)
    t.start()
    try:
        yield
    finally:
        cancel()
        t.join(timeout=30)


def _swallow(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            fn()
        except Exception:
            pass
    return run


def mine(snap: Snapshot, ids: set[int]) -> dict[int, Any]:
    return {c.id: c for c in snap.conns if c.id in ids}


@pytest.fixture
def pg_probe(pg_url: str) -> Iterator[Probe]:
    with open_probe(pg_url) as p:
        yield p


@pytest.fixture
def mysql_probe(mysql_url: str) -> Iterator[Probe]:
    with open_probe(mysql_url) as p:
        yield p


@pytest.fixture
def my_table(mysql_url: str) -> Iterator[str]:
    name = unique("pd_server")
    c = my_connect(mysql_url)
    try:
        with c.cursor() as cur:
            cur.execute(f"CREATE TABLE {name} (id INT PRIMARY KEY) ENGINE=InnoDB")
            cur.execute(f"INSERT INTO {name} VALUES (1)")
        yield name
    finally:
        with c.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
        c.close()


# ----------------------------------------------------------------------------- PostgreSQL


def test_pg_snapshot_sees_exactly_the_known_connections(pg_url: str, pg_probe: Probe) -> None:
    app = unique()
    with closing_all() as conns:
        t0 = time.time()
        idle = pg_connect(pg_url, app)
        idle.execute("SELECT 1")
        txn = pg_connect(pg_url, app, autocommit=False)
        txn.execute("SELECT 2")
        busy = pg_connect(pg_url, app)
        conns += [idle, txn, busy]
        t_set = time.time()
        with sleeping(lambda: busy.execute("SELECT pg_sleep(60)"), busy.cancel):
            snap = wait_for(lambda: (s := pg_probe.snapshot()) and any(
                c.id == pg_id(busy) and c.state == ACTIVE for c in s.conns) and s,
                what="the pg_sleep to show as active")
            t1 = time.time()
            ours = [c for c in snap.conns if c.application == app]
            assert {c.id for c in ours} == {pg_id(idle), pg_id(txn), pg_id(busy)}
            by_id = {c.id: c for c in ours}
            assert by_id[pg_id(idle)].state == IDLE
            assert by_id[pg_id(txn)].state == IDLE_TXN
            assert by_id[pg_id(busy)].state == ACTIVE
            assert "pg_sleep(?)" in (by_id[pg_id(busy)].query or "")  # literal masked
            assert by_id[pg_id(txn)].query == "SELECT ?"
            for c in ours:
                assert c.user == "postgres" and c.database == sa.make_url(pg_url).database
                assert c.client in ("127.0.0.1", "::1", "localhost")
                assert c.connected_s is not None and c.state_s is not None
                assert c.connected_s <= t1 - t0 + 0.5
                assert c.state_s <= c.connected_s + 0.01
                assert not c.own
            # ages: in-state since we set it, within the window we measured
            assert by_id[pg_id(txn)].state_s >= 0
            assert by_id[pg_id(txn)].xact_s is not None
            assert by_id[pg_id(txn)].xact_s >= by_id[pg_id(txn)].state_s - 0.01
            assert by_id[pg_id(txn)].xact_s <= t1 - t_set + 1.0
            assert by_id[pg_id(idle)].xact_s is None
            # totals and limit
            assert snap.total >= 4 and snap.own_id == pg_probe.own_id
            assert snap.max_connections > 0 and snap.limit == snap.max_connections - snap.reserved
            assert snap.queries == 1


def test_pg_ages_grow_with_time(pg_url: str, pg_probe: Probe) -> None:
    app = unique()
    with closing_all() as conns:
        c = pg_connect(pg_url, app)
        conns.append(c)
        first = pg_probe.snapshot().get(pg_id(c))
        assert first is not None and first.state == IDLE
        later = wait_for(lambda: (x := pg_probe.snapshot().get(pg_id(c))) and
                         x.state_s is not None and x.state_s >= (first.state_s or 0) + 0.3 and x,
                         what="the idle age to grow")
        assert later.connected_s is not None and first.connected_s is not None
        assert later.connected_s > first.connected_s


def test_pg_without_pg_monitor_shows_hidden_rows(pg_url: str) -> None:
    role = unique("pd_srv_role")
    app = unique()
    with closing_all() as conns:
        admin = pg_connect(pg_url, unique())
        conns.append(admin)
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            other = pg_connect(pg_url, app)
            other.execute("SELECT 1")
            conns.append(other)
            url = sa.make_url(pg_url).set(username=role).render_as_string(hide_password=False)
            with open_probe(url) as probe:
                snap = probe.snapshot()
                row = snap.get(pg_id(other))
                assert row is not None and row.state == HIDDEN and not row.visible
                assert row.query is None and row.state_s is None
                assert any("pg_monitor" in n and role in n for n in snap.notes)
                assert snap.get(probe.own_id or -1) is not None  # sees itself
                # kill: hidden rows are never targets; a direct attempt fails without raising
                assert targets(snap, ConnFilter(ids={row.id})) == []
                res = terminate(probe, [row])
                assert res[0].error
            assert other.execute("SELECT 3").fetchone() == (3,)  # still alive
        finally:
            for c in conns[1:]:
                c.close()
            admin.execute(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
            wait_for(lambda: not admin.execute(
                f"SELECT 1 FROM pg_stat_activity WHERE usename = '{role}'").fetchall(),
                what="the role's sessions to end")
            admin.execute(f"DROP ROLE {role}")


def test_pg_kill_dry_run_and_real(pg_url: str, pg_probe: Probe) -> None:
    app = unique()
    with closing_all() as conns:
        victim = pg_connect(pg_url, app)
        bystander = pg_connect(pg_url, unique())
        conns += [victim, bystander]
        snap = pg_probe.snapshot()
        chosen = targets(snap, ConnFilter(applications=[app], states={IDLE}))
        assert [c.id for c in chosen] == [pg_id(victim)]
        # the watcher's own connection is never chosen, even when named
        assert targets(snap, ConnFilter(ids={pg_probe.own_id or -1})) == []
        own = snap.get(pg_probe.own_id or -1)
        assert own is not None and terminate(pg_probe, [own])[0].error
        results = terminate(pg_probe, chosen)
        assert [r.error for r in results] == [None]
        with pytest.raises(psycopg.OperationalError):
            victim.execute("SELECT 1")
        assert bystander.execute("SELECT 1").fetchone() == (1,)
        assert pg_probe.snapshot().get(pg_id(victim)) is None
        assert terminate(pg_probe, chosen)[0].error == "already gone"


# ----------------------------------------------------------------------------- MariaDB


def test_mysql_snapshot_sees_exactly_the_known_connections(
        mysql_url: str, mysql_probe: Probe, my_table: str) -> None:
    with closing_all() as conns:
        t0 = time.time()
        idle = my_connect(mysql_url)
        with idle.cursor() as cur:
            cur.execute("SELECT 1")
        txn = my_connect(mysql_url, autocommit=False)
        with txn.cursor() as cur:
            cur.execute(f"SELECT * FROM {my_table} WHERE id = 1 FOR UPDATE")
        busy = my_connect(mysql_url)
        killer = my_connect(mysql_url)
        conns += [idle, txn, busy, killer]
        ids = {my_id(idle), my_id(txn), my_id(busy)}

        def run() -> None:
            with busy.cursor() as cur:
                cur.execute("SELECT SLEEP(60)")

        def cancel() -> None:
            with killer.cursor() as cur:
                cur.execute(f"KILL QUERY {my_id(busy)}")

        with sleeping(run, cancel):
            # INNODB_TRX is a cache that InnoDB refreshes only when it was last read more than
            # 0.1 s ago: a faster poll would keep reading the same stale rows
            snap = wait_for(lambda: (s := mysql_probe.snapshot()) and any(
                c.id == my_id(busy) and c.state == ACTIVE for c in s.conns) and any(
                c.id == my_id(txn) and c.state == IDLE_TXN for c in s.conns) and s,
                what="the SLEEP to show as active and the transaction as open", every=0.15)
            t1 = time.time()
            ours = mine(snap, ids)
            assert set(ours) == ids
            assert ours[my_id(idle)].state == IDLE
            assert ours[my_id(txn)].state == IDLE_TXN
            assert ours[my_id(busy)].state == ACTIVE
            assert ours[my_id(busy)].query == "SELECT SLEEP(?)"
            for c in ours.values():
                assert c.user == "root" and c.database == "test"
                assert c.client in ("127.0.0.1", "localhost", "::1")
                assert c.state_s is not None and c.state_s <= t1 - t0 + 1.0
                assert c.connected_s is None  # not exposed by MySQL/MariaDB
            assert ours[my_id(txn)].xact_s is not None
            assert ours[my_id(txn)].xact_s <= t1 - t0 + 1.5  # trx_started has 1 s precision
            assert ours[my_id(idle)].xact_s is None
            assert snap.own_id == mysql_probe.own_id and snap.own_id not in ids
            assert snap.rejected_total is not None and snap.rejected_total >= 0
            assert snap.queries == 2 and snap.limit == snap.max_connections > 0


def test_mysql_without_process_privilege(mysql_url: str) -> None:
    user = unique("pd_srv_u")[:30]
    with closing_all() as conns:
        admin = my_connect(mysql_url)
        conns.append(admin)
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%'")
            cur.execute(f"CREATE USER '{user}'@'localhost'")
            cur.execute(f"GRANT SELECT ON test.* TO '{user}'@'%'")
            cur.execute(f"GRANT SELECT ON test.* TO '{user}'@'localhost'")
        try:
            other = my_connect(mysql_url)
            conns.append(other)
            url = sa.make_url(mysql_url).set(username=user, password=None).render_as_string(
                False)
            with open_probe(url) as probe:
                snap = probe.snapshot()
                assert snap.get(my_id(other)) is None  # other users are not visible
                assert snap.get(probe.own_id or -1) is not None
                assert any("PROCESS" in n for n in snap.notes)
                assert snap.limit > 0
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
                cur.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")


def test_mysql_kill_dry_run_and_real(mysql_url: str, mysql_probe: Probe) -> None:
    with closing_all() as conns:
        victim = my_connect(mysql_url)
        bystander = my_connect(mysql_url)
        conns += [victim, bystander]
        snap = mysql_probe.snapshot()
        chosen = targets(snap, ConnFilter(ids={my_id(victim)}, states={IDLE}))
        assert [c.id for c in chosen] == [my_id(victim)]
        assert targets(snap, ConnFilter(ids={mysql_probe.own_id or -1})) == []
        results = terminate(mysql_probe, chosen)
        assert [r.error for r in results] == [None]
        with pytest.raises(pymysql.err.OperationalError), victim.cursor() as cur:
            cur.execute("SELECT 1")
        with bystander.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        wait_for(lambda: mysql_probe.snapshot().get(my_id(victim)) is None,
                 what="the killed thread to leave the process list")
        assert terminate(mysql_probe, chosen)[0].error == "already gone"
