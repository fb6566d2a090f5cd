"""The SQL audit log end to end on PostgreSQL and MariaDB: redacted text, no parameter
values, the site in the test, errors recorded and masked, sampling and the slow threshold."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pooldoctor import audit
from pooldoctor.runtime.server_ids import server_id

SECRET = "s3cr3t-" + uuid.uuid4().hex[:6]
PASSWORD = "pw-" + uuid.uuid4().hex[:6]


@pytest.fixture(params=["postgresql", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue("pg_url" if request.param == "postgresql" else "mysql_url")
    return url


@pytest.fixture
def off() -> Iterator[None]:
    yield
    audit.disable()


@pytest.fixture
def table(server_url: str) -> Iterator[str]:
    name = f"audit_{uuid.uuid4().hex[:10]}"
    e = sa.create_engine(server_url, poolclass=sa.pool.NullPool)
    with e.begin() as c:
        c.exec_driver_sql(f"CREATE TABLE {name} (id INT PRIMARY KEY, email VARCHAR(100))")
    yield name
    with e.begin() as c:
        c.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    e.dispose()


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def here() -> int:
    """The line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


def test_statements_are_logged_redacted_with_their_site(
        off: None, server_url: str, table: str, tmp_path: Path) -> None:
    url = server_url
    if url.startswith("postgresql"):  # trust auth ignores the password: it must never show
        url = url.replace("postgres@", f"postgres:{PASSWORD}@")
    path = tmp_path / "audit.jsonl"
    audit.enable(str(path))
    e = sa.create_engine(url)
    lines: dict[str, int] = {}
    with e.connect() as c:
        sid = server_id(c.connection.driver_connection)
        lines["insert"] = here()
        c.execute(sa.text(f"INSERT INTO {table} (id, email) VALUES (:id, :email)"),
                  {"id": 1, "email": SECRET})
        lines["select"] = here()
        c.exec_driver_sql(f"SELECT id FROM {table} WHERE email = '{SECRET}' AND id IN (1, 2, 3)")
        lines["error"] = here()
        with pytest.raises(sa.exc.IntegrityError):
            c.execute(sa.text(f"INSERT INTO {table} (id, email) VALUES (:id, :email)"),
                      {"id": 1, "email": SECRET})
        c.rollback()
    e.dispose()
    audit.disable()

    text = path.read_text()
    assert SECRET not in text
    assert PASSWORD not in text
    evs = [ev for ev in events(path) if table in ev["statement"]]
    assert len(evs) == 3
    ins, sel, err = evs
    assert sel["statement"] == f"SELECT id FROM {table} WHERE email = ? AND id IN (?)"
    assert "VALUES (" in ins["statement"] and "params" not in ins
    for ev, key in ((ins, "insert"), (sel, "select")):
        assert ev["outcome"] == "ok"
        assert ev["site"]["file"] == __file__
        assert ev["site"]["line"] == lines[key] or ev["site"]["line"] == lines[key] + 1
        assert ev["site"]["function"] == "test_statements_are_logged_redacted_with_their_site"
    assert ins["rows"] == 1
    assert err["outcome"] == "error"
    assert err["site"]["file"] == __file__ and err["site"]["line"] in range(
        lines["error"], lines["error"] + 3)
    assert err["error"]["code"] in ("23505", "23000")
    if e.dialect.name == "mysql":
        assert err["error"]["errno"] == 1062
    assert err["error"]["type"] in ("UniqueViolation", "IntegrityError")
    for ev in evs:
        assert ev["connection"] == sid
        assert ev["dialect"] == e.dialect.name
        assert ev["duration_ms"] >= 0
        assert ev["time"].endswith("Z")
        assert ev["pool"].startswith(url.split("://")[0])
        assert "***" in ev["pool"] or PASSWORD not in url


def test_params_are_logged_only_when_asked(off: None, server_url: str, table: str,
                                           tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit.enable(str(path), params=True)
    e = sa.create_engine(server_url)
    with e.begin() as c:
        c.execute(sa.text(f"INSERT INTO {table} (id, email) VALUES (:id, :email)"),
                  [{"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}])
    e.dispose()
    audit.disable()
    (ev,) = [ev for ev in events(path) if table in ev["statement"]]
    assert ev["executemany"] is True
    values = json.dumps(ev["params"])
    assert "a@x" in values and "b@x" in values


def test_slow_threshold_and_sampling(off: None, server_url: str, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit.enable(str(path), sample=0.0, slow_ms=150)
    e = sa.create_engine(server_url)
    sleep = "SELECT pg_sleep(0.2)" if e.dialect.name == "postgresql" else "SELECT SLEEP(0.2)"
    with e.connect() as c:
        c.exec_driver_sql("SELECT 1")  # fast: not sampled
        c.exec_driver_sql(sleep)  # slow: always logged
        with pytest.raises(sa.exc.DBAPIError):
            c.exec_driver_sql("SELECT * FROM audit_no_such_table_x")  # failed: always logged
    e.dispose()
    audit.disable()
    evs = events(path)
    assert [ev["outcome"] for ev in evs] == ["ok", "error"]
    assert evs[0]["slow"] is True and evs[0]["duration_ms"] >= 150
    assert evs[0]["sample_rate"] == 0.0
    assert evs[0]["statement"] in ("SELECT pg_sleep(?)", "SELECT SLEEP(?)")
    assert "audit_no_such_table_x" in evs[1]["error"]["message"]


def test_logger_destination(off: None, server_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pooldoctor.audit")
    engine = sa.create_engine(server_url)
    audit.enable(engine=engine)
    other = sa.create_engine(server_url)
    with engine.connect() as c:
        c.exec_driver_sql("SELECT 42")
    with other.connect() as c:
        c.exec_driver_sql("SELECT 43")  # not this engine's: not logged
    engine.dispose()
    other.dispose()
    recs = [r for r in caplog.records if r.name == "pooldoctor.audit"]
    assert len(recs) == 1
    ev = recs[0].audit  # type: ignore[attr-defined]
    assert ev["statement"] == "SELECT ?"
    assert json.loads(recs[0].getMessage()) == ev
