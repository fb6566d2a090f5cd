"""`pooldoctor advise` against the real PostgreSQL and MariaDB, reading their actual settings.

Other engineers use the same servers at the same time: every figure that depends on other
sessions is checked on a user (or database) created here with a unique name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pooldoctor.advise import read_limits
from pooldoctor.cli.main import main
from pooldoctor.dbconnect import connect


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(["advise", *argv])
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


def admin(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")


def as_user(url: str, user: str, database: str | None = None) -> str:
    u = make_url(url).set(username=user, password=None)
    if database is not None:
        u = u.set(database=database)
    return u.render_as_string(hide_password=False)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_role(pg_url: str) -> Iterator[str]:
    """A plain role with CONNECTION LIMIT 4 and idle_session_timeout 5min, dropped afterwards."""
    name = unique("advise")
    eng = admin(pg_url)
    with eng.connect() as c:
        c.exec_driver_sql(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT 4")
        c.exec_driver_sql(f"ALTER ROLE {name} SET idle_session_timeout = '5min'")
    yield name
    with eng.connect() as c:
        c.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          f"WHERE usename = '{name}'")
        c.exec_driver_sql(f"DROP ROLE IF EXISTS {name}")
    eng.dispose()


def test_pg_limits_match_the_server(pg_url: str, pg_role: str) -> None:
    url = as_user(pg_url, pg_role)
    eng = admin(url)
    held = [eng.connect() for _ in range(2)]  # two other sessions of the role
    try:
        c = held[0]
        max_connections = int(c.exec_driver_sql("SHOW max_connections").scalar_one())
        reserved = int(c.exec_driver_sql("SHOW superuser_reserved_connections").scalar_one())
        rc = c.exec_driver_sql("SELECT current_setting('reserved_connections', true)").scalar()
        reserved += int(rc) if rc else 0
        idle = c.exec_driver_sql("SHOW idle_session_timeout").scalar_one()
        iit = c.exec_driver_sql(
            "SELECT setting::float / 1000 FROM pg_settings "
            "WHERE name = 'idle_in_transaction_session_timeout'").scalar_one()
        connlimit = c.exec_driver_sql(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user").scalar_one()
        datconnlimit = c.exec_driver_sql("SELECT datconnlimit FROM pg_database "
                                         "WHERE datname = current_database()").scalar_one()
        with connect(url) as sc:
            limits = read_limits(sc)
    finally:
        for h in held:
            h.close()
        eng.dispose()
    assert limits.backend == "postgresql"
    assert limits.max_connections == max_connections
    assert limits.reserved == reserved
    assert limits.user == pg_role
    assert limits.user_limit == connlimit == 4
    assert limits.used_by_user == 2  # the two held above, not the advisor's own
    assert limits.used_by_others is not None and limits.used_by_others >= 2
    assert idle == "5min" and limits.idle_timeout_s == 300.0
    assert limits.idle_in_transaction_timeout_s == (iit or None)
    assert limits.db_limit == (None if datconnlimit < 0 else datconnlimit)
    assert not any("superuser" in n for n in limits.notes)


def test_pg_advise_user_limit_binds(capsys: pytest.CaptureFixture[str], pg_url: str,
                                    pg_role: str) -> None:
    url = as_user(pg_url, pg_role)
    eng = admin(url)
    held = eng.connect()  # one other session of the role
    try:
        code, out, err = run(capsys, url, "--workers", "2", "--pool-size", "2",
                             "--max-overflow", "0", "--format", "json")
    finally:
        held.close()
        eng.dispose()
    assert code == 1, err
    data = json.loads(out)
    msgs = {f["code"]: f["message"] for f in data["findings"]}
    assert set(msgs) == {"PD401", "PD403"}
    assert msgs["PD401"] == (f"2 workers x (pool_size 2 + max_overflow 0) = 4 connections > 3 "
                             f"allowed for user '{pg_role}' (rolconnlimit 4 - used by its other "
                             "sessions 1)")
    assert "idle_session_timeout 300 s" in msgs["PD403"]
    rec = data["advice"]["recommended"]
    assert rec["pool_recycle"] < 300 and rec["per_process"] * 2 <= 3


def test_pg_safe_configuration(capsys: pytest.CaptureFixture[str], pg_url: str,
                               pg_role: str) -> None:
    url = as_user(pg_url, pg_role)
    code, out, err = run(capsys, url, "--workers", "2", "--pool-size", "1", "--max-overflow",
                         "1", "--pool-recycle", "240")
    assert code == 0, out + err
    assert out.startswith("pooldoctor: no findings")
    assert "idle timeout: idle_session_timeout 300 s" in out


def test_pg_database_limit(pg_url: str) -> None:
    name = unique("advise_db")
    eng = admin(pg_url)
    with eng.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name} CONNECTION LIMIT 3")
    try:
        with connect(as_user(pg_url, make_url(pg_url).username or "postgres", name)) as sc:
            limits = read_limits(sc)
        assert (limits.database, limits.db_limit, limits.used_by_db) == (name, 3, 0)
    finally:
        with eng.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        eng.dispose()


def test_pg_unknown_role_is_one_line(capsys: pytest.CaptureFixture[str], pg_url: str) -> None:
    url = make_url(as_user(pg_url, unique("nobody"))).set(password="hunter2")
    code, out, err = run(capsys, url.render_as_string(hide_password=False))
    assert code == 3
    assert err.startswith("pooldoctor: error: cannot connect to ") and err.count("\n") == 1
    assert "hunter2" not in out + err


# ----------------------------------------------------------------------------- MariaDB


@pytest.fixture
def mysql_user(mysql_url: str) -> Iterator[str]:
    """An account WITH MAX_USER_CONNECTIONS 3 on the test database, dropped afterwards."""
    name = unique("advise")
    db = make_url(mysql_url).database
    eng = admin(mysql_url)
    with eng.connect() as c:
        c.exec_driver_sql(f"CREATE USER '{name}'@'%%' WITH MAX_USER_CONNECTIONS 3")
        c.exec_driver_sql(f"GRANT SELECT ON `{db}`.* TO '{name}'@'%%'")
    yield name
    with eng.connect() as c:
        c.exec_driver_sql(f"DROP USER IF EXISTS '{name}'@'%%'")
    eng.dispose()


def test_mysql_limits_match_the_server(mysql_url: str, mysql_user: str) -> None:
    url = as_user(mysql_url, mysql_user)
    eng = admin(url)
    held = eng.connect()  # one other session of the account
    try:
        row = held.exec_driver_sql(
            "SELECT @@global.max_connections, @@max_user_connections, @@global.wait_timeout, "
            "@@global.interactive_timeout").one()
        with connect(url) as sc:
            limits = read_limits(sc)
    finally:
        held.close()
        eng.dispose()
    with admin(mysql_url).connect() as c:
        account = c.exec_driver_sql(
            f"SELECT max_user_connections FROM mysql.user WHERE user = '{mysql_user}'"
        ).scalar_one()
    assert limits.backend == "mysql"
    assert limits.max_connections == row[0]
    assert limits.user_limit == row[1] == account == 3
    assert limits.used_by_user == 1
    assert limits.idle_timeout_s == float(row[2])
    assert limits.settings["interactive_timeout"] == row[3]
    assert limits.idle_timeout_name == "wait_timeout"
    assert limits.used_by_others is not None and limits.used_by_others >= 1


def test_mysql_advise_user_limit_and_recycle(capsys: pytest.CaptureFixture[str], mysql_url: str,
                                             mysql_user: str) -> None:
    url = as_user(mysql_url, mysql_user)
    with admin(url).connect() as c:
        wait_timeout = int(c.exec_driver_sql("SELECT @@global.wait_timeout").scalar_one())
    code, out, err = run(capsys, url, "--workers", "4", "--pool-size", "1", "--max-overflow",
                         "0", "--pool-recycle", str(wait_timeout + 1), "--format", "json")
    assert code == 1, err
    data = json.loads(out)
    msgs = {f["code"]: f["message"] for f in data["findings"]}
    assert set(msgs) == {"PD401", "PD403"}
    assert msgs["PD401"].startswith("4 workers x (pool_size 1 + max_overflow 0) = 4 "
                                    "connections > 3 allowed for user")
    assert "max_user_connections 3" in msgs["PD401"]
    assert (f"pool_recycle {wait_timeout + 1} s >= the server's wait_timeout {wait_timeout} s"
            in msgs["PD403"])
    assert data["advice"]["server"]["idle_timeout_s"] == wait_timeout
    assert data["advice"]["recommended"]["pool_recycle"] < wait_timeout


def test_mysql_pre_ping_is_enough(capsys: pytest.CaptureFixture[str], mysql_url: str,
                                  mysql_user: str) -> None:
    url = as_user(mysql_url, mysql_user)
    code, out, err = run(capsys, url, "--workers", "1", "--pool-size", "2", "--max-overflow",
                         "1", "--pre-ping")
    assert code == 0, out + err
    assert "pooldoctor: no findings" in out


def test_mysql_wrong_password_is_one_line(capsys: pytest.CaptureFixture[str],
                                          mysql_url: str) -> None:
    url = make_url(mysql_url).set(password="hunter2").render_as_string(hide_password=False)
    code, out, err = run(capsys, url)
    assert code == 3
    assert "Access denied" in err and err.count("\n") == 1
    assert "hunter2" not in out + err
