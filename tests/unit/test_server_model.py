"""Snapshot model, statement masking, filters, rendering, attribution and publishing."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest

from pooldoctor.server.attribution import Published, attribute, load
from pooldoctor.server.filters import ConnFilter, sort_conns
from pooldoctor.server.model import ACTIVE, IDLE, IDLE_TXN, ServerConn, Snapshot
from pooldoctor.server.render import age, render_snapshot
from pooldoctor.server.sql import clean_query, mask_literals

URL = "postgresql+psycopg://app:***@127.0.0.1:5432/app"


def sample() -> Snapshot:
    return Snapshot("postgresql", URL, "16.1", taken_at=1_800_000_000.0, max_connections=100,
                    reserved=3, conns=[
        ServerConn(1, "app", "app", "10.0.0.1", 5000, "api", IDLE, 50.0, 40.0),
        ServerConn(2, "app", "app", "10.0.0.2", 5001, "api", IDLE_TXN, 30.0, 20.0, 25.0,
                   "UPDATE t SET x = ?"),
        ServerConn(3, "report", "dw", "10.0.0.3", 5002, "cron", ACTIVE, 10.0, 1.0, 1.0,
                   "SELECT ?"),
        ServerConn(4, "postgres", "app", "127.0.0.1", 5003, None, ACTIVE, 0.1, 0.0, 0.0,
                   "SELECT ...", own=True),
    ])


# ----------------------------------------------------------------------------- model


def test_snapshot_totals_groups_and_round_trip() -> None:
    s = sample()
    assert s.limit == 97 and s.total == 4 and s.own_id == 4
    assert s.by_state() == {IDLE: 1, IDLE_TXN: 1, ACTIVE: 2}
    users = {g.value: g for g in s.groups("user")}
    assert users["app"].total == 2 and users["app"].longest_idle_s == 40.0
    assert users["app"].oldest_xact_s == 25.0
    d = s.to_dict()
    assert d["limit"] == 97 and d["states"]["idle"] == 1
    assert Snapshot.from_dict(json.loads(json.dumps(d))).to_dict() == d


# ----------------------------------------------------------------------------- sql


@pytest.mark.parametrize(("sql", "masked"), [
    ("SELECT * FROM t WHERE a = 'x''y' AND b = 42", "SELECT * FROM t WHERE a = ? AND b = ?"),
    ("SELECT pg_sleep(1.5)", "SELECT pg_sleep(?)"),
    ("SELECT $1, t1.c2 FROM t1", "SELECT $1, t1.c2 FROM t1"),
    ("ALTER ROLE x PASSWORD 'hunter2'", "ALTER ROLE x PASSWORD ?"),
    ("SELECT $$body$$ || E'a\\'b'", "SELECT ? || ?"),
])
def test_mask_literals(sql: str, masked: str) -> None:
    assert mask_literals(sql) == masked


def test_clean_query_folds_whitespace_and_decodes_bytes() -> None:
    assert clean_query(b"SELECT\n   1") == "SELECT ?"
    assert clean_query("SELECT\n  'a'", mask=False) == "SELECT 'a'"
    assert clean_query(None) is None


# ----------------------------------------------------------------------------- filters


def test_filters_match_all_criteria() -> None:
    s = sample()
    pick = lambda *specs: [c.id for c in s.conns if ConnFilter().parse(specs)(c)]  # noqa: E731
    assert pick("state=idle") == [1]
    assert pick("state=any-idle") == [1, 2]
    assert pick("user=app", "state=idle-in-transaction") == [2]
    assert pick("application=c*") == [3]
    assert pick("id=3", "id=4") == [3, 4]
    assert pick("client=10.0.0.*", "database=app") == [1, 2]
    assert [c.id for c in s.conns if ConnFilter(idle_over_s=30)(c)] == [1]
    assert ConnFilter().empty() and not ConnFilter(ids={1}).empty()


@pytest.mark.parametrize("spec", ["colour=red", "state=sleepy", "id=x", "noequals"])
def test_bad_filters_say_why(spec: str) -> None:
    with pytest.raises(ValueError):
        ConnFilter().parse([spec])


def test_sorting() -> None:
    s = sample()
    assert [c.id for c in sort_conns(s.conns, "state-age")] == [1, 2, 3, 4]
    assert [c.id for c in sort_conns(s.conns, "user")][:2] == [1, 2]
    with pytest.raises(ValueError):
        sort_conns(s.conns, "colour")


# ----------------------------------------------------------------------------- render


def test_age_format() -> None:
    assert [age(x) for x in (None, 0.42, 42, 185, 7800, 3 * 86400 + 4 * 3600)] == [
        "-", "0.4s", "42s", "3m05s", "2h10m", "3d04h"]


def test_render_lists_idle_connections_and_marks_our_own() -> None:
    text = render_snapshot(sample())
    assert "connections: 4 of 97 (4%)" in text
    assert "idle 1" in text and "idle in transaction 1" in text
    rows = [line for line in text.splitlines() if line.strip().startswith(("1 ", "4*"))]
    assert len(rows) == 2
    assert "by user" in text and "by application" in text
    assert "***" in text  # the URL stays masked


def test_render_5000_rows() -> None:
    conns = [ServerConn(i, f"u{i % 7}", "db", f"10.0.{i % 250}.1", 4000 + i, f"app{i % 13}",
                        IDLE if i % 3 else ACTIVE, float(i), float(i % 100), None,
                        f"SELECT * FROM t WHERE id = {i}") for i in range(5000)]
    s = Snapshot("mysql", "mysql://x@h/db", "8.0", max_connections=6000, conns=conns)
    text = render_snapshot(s)
    assert text.count("\n") > 5000
    assert "connections: 5000 of 6000" in text


# ----------------------------------------------------------------------------- attribution


def _published(pid: int, sid: int, server: str | None = "127.0.0.1:5432") -> Published:
    site = {"file": "/srv/app/views.py", "line": 12, "function": "index"}
    return Published(pid, "host", "app.py", 0.0, [
        {"server_id": sid, "server": server, "site": site, "stack": [site], "since": 1.0,
         "thread": "MainThread", "kind": "checkout"}])


def test_attribution_by_server_id_and_tag_pid() -> None:
    s = sample()
    s.conns[0].application = "pooldoctor:4242:app.py"
    assert attribute(s, {('host', 4242): _published(4242, 1)}) == 1
    h = s.conns[0].holder
    assert h is not None and h["site"]["line"] == 12 and h["verified"] is True
    assert "views.py:12" in render_snapshot(s)


def test_attribution_refuses_a_tag_of_another_pid_or_another_server() -> None:
    s = sample()
    s.conns[0].application = "pooldoctor:1111:app.py"
    assert attribute(s, {('host', 4242): _published(4242, 1)}) == 0
    h = s.conns[0].holder  # the tag still names its process, with no site
    assert h is not None and h["pid"] == 1111 and h["site"] is None
    s = sample()
    assert attribute(s, {('host', 4242): _published(4242, 1, server="10.9.9.9:5432")}) == 0
    s = sample()  # no tag visible (MySQL without performance_schema): matched, unverified
    assert attribute(s, {('host', 4242): _published(4242, 1, server="localhost:5432")}) == 1
    assert s.conns[0].holder is not None and s.conns[0].holder["verified"] is False


def test_attribution_tagged_connection_without_a_hold_is_in_the_pool() -> None:
    s = sample()
    s.conns[0].application = "pooldoctor:4242:app.py"
    attribute(s, {('host', 4242): _published(4242, 99)})
    h = s.conns[0].holder
    assert h is not None and h["site"] is None and "in its pool" in h["text"]


# ----------------------------------------------------------------------------- publishing


def _guard_with(holds: list[Any]) -> Any:
    return SimpleNamespace(ledger=SimpleNamespace(holds=lambda: holds))


def _hold(hid: int, sid: int | None) -> Any:
    site = {"file": "/a.py", "line": 3, "function": "f"}
    return SimpleNamespace(
        id=hid, server_id=sid, txn_since=None, ended=False,
        pool=SimpleNamespace(url="postgresql+psycopg://u:***@db:5433/x"),
        describe=lambda: {"server_id": sid, "kind": "checkout", "pool": "p", "site": site,
                          "stack": [site], "since": 5.0, "thread": "T", "task": None})


def test_publisher_writes_only_when_holds_change(tmp_path: Path) -> None:
    from pooldoctor.runtime.publish import Publisher, file_name

    holds = [_hold(1, 100)]
    p = Publisher(_guard_with(holds), str(tmp_path))
    p.tick()
    p.tick()  # within the minimum interval: no write
    p._written_at -= 1.0
    p.tick()  # the interval passed, but nothing changed: no write
    assert p.writes == 1
    doc = json.loads((tmp_path / file_name(os.getpid(), socket.gethostname())).read_text())
    assert doc["pid"] == os.getpid() and doc["holds"][0]["server_id"] == 100
    assert doc["holds"][0]["server"] == "db:5433"
    holds.append(_hold(2, 101))
    p._written_at -= 1.0  # as if the minimum interval between writes had passed
    p.tick()
    assert p.writes == 2
    mine = tmp_path / file_name(os.getpid(), socket.gethostname())
    assert stat.S_IMODE(mine.stat().st_mode) == 0o600
    assert load(str(tmp_path))[(socket.gethostname(), os.getpid())].holds[1]["server_id"] == 101
    p.remove()
    assert not (tmp_path / file_name(os.getpid(), socket.gethostname())).exists()


def test_runtime_dir_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pooldoctor.runtime.publish import runtime_dir

    target = tmp_path / "rt"
    monkeypatch.setenv("POOLDOCTOR_RUNTIME_DIR", str(target))
    assert runtime_dir() == str(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    monkeypatch.setenv("POOLDOCTOR_RUNTIME_DIR", str(link))
    with pytest.raises(PermissionError):
        runtime_dir()


def test_load_skips_and_removes_files_of_dead_processes(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    f = tmp_path / f"{pid}.json"
    f.write_text(json.dumps({"schema": "pooldoctor.holds/1", "pid": pid, "holds": [],
                             "hostname": socket.gethostname(), "updated": time.time()}))
    # a collected file from another host: pid liveness is not checked, the heartbeat is
    remote = tmp_path / "otherhost"
    remote.mkdir()
    (remote / f"{pid}.json").write_text(json.dumps(
        {"schema": "pooldoctor.holds/1", "pid": pid, "holds": [], "hostname": "otherhost",
         "updated": time.time()}))
    (remote / "1.json").write_text(json.dumps(
        {"schema": "pooldoctor.holds/1", "pid": 1, "holds": [], "hostname": "otherhost",
         "updated": time.time() - 3600}))
    (tmp_path / "junk.json").write_text("{")
    (tmp_path / f"{pid}.json.tmp").write_text("{")
    (tmp_path / f"{os.getpid()}.json").write_text("not json")
    assert list(load(str(tmp_path))) == [("otherhost", pid)]
    assert not f.exists() and (remote / f"{pid}.json").exists()
    assert not (tmp_path / f"{pid}.json.tmp").exists()


def test_duration_option() -> None:
    from pooldoctor.cli.serveropts import DURATION

    assert DURATION.convert("90", None, None) == 90.0
    assert DURATION.convert("10m", None, None) == 600.0
    assert DURATION.convert("1.5h", None, None) == 5400.0
    with pytest.raises(click.BadParameter):
        DURATION.convert("soon", None, None)


def test_ages_are_also_given_as_timestamps() -> None:
    d = sample().to_dict()["connections"][1]
    assert d["connected_at"] == "2027-01-15T07:59:30Z"  # taken at 08:00:00, 30 s old
    assert d["state_since"] == "2027-01-15T07:59:40Z"
    assert d["xact_since"] == "2027-01-15T07:59:35Z"
    assert sample().to_dict()["connections"][0]["xact_since"] is None


def test_top_layout_drops_columns_in_order_and_never_cuts_the_whole_ones() -> None:
    from pooldoctor.server.columns import WHOLE, layout

    row = ("3111222", "app_user", "app_db", "worker-" + "x" * 25, "10.0.0.12",
           "idle in transaction", "3h10m", "42s", "3m05s", "app/db.py:22 in load", "SELECT 1")
    wide = layout([row], 200, 10_000)
    assert list(wide) == ["id", "user", "database", "application", "client", "state",
                          "connected", "in state", "xact", "held at", "query"]
    assert all(wide[n] >= len(v) for n, v in zip(wide, row))  # all whole
    for width in (120, 100, 80, 70, 60):
        cols = layout([row], width, 10_000)
        kept = [n for n in WHOLE if n in cols]
        assert all(cols[n] >= len(row[i]) for i, n in enumerate(wide) if n in kept)
        assert sum(cols.values()) + len(cols) - 1 <= width, (width, cols)
    assert "database" not in layout([row], 100, 10_000)  # the first to go
    assert list(layout([row], 70, 10_000)) == ["id", "state", "in state", "xact", "held at"]
    assert list(layout([row], 60, 10_000)) == ["id", "state", "in state", "held at"]


def test_the_probe_base_does_not_import_its_concrete_probes() -> None:
    import subprocess
    import sys

    code = ("import sys, pooldoctor.server.probe; "
            "print(sorted(m for m in sys.modules if m.startswith('pooldoctor.server.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert "pooldoctor.server.postgres" not in out and "pooldoctor.server.mysql" not in out
    import ast
    import inspect

    import pooldoctor.server.probe as base

    imported = {(n.module or "") for n in ast.walk(ast.parse(inspect.getsource(base)))
                if isinstance(n, ast.ImportFrom)}  # function-level imports too
    assert not imported & {"postgres", "mysql", "pooldoctor.server.postgres",
                           "pooldoctor.server.mysql"}, imported
    from pooldoctor.server.mysql import MySQLProbe
    from pooldoctor.server.postgres import PostgresProbe
    from pooldoctor.server.probes import probe_class

    assert probe_class("postgresql") is PostgresProbe and probe_class("mysql") is MySQLProbe
