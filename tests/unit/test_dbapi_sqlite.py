"""The raw-driver guard on sqlite3 (no server needed): holds, close, GC, thresholds, patches."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from sqlite3 import connect as sqlite_connect  # an old reference, taken before install

import pytest

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.runtime import dbapi
from pooldoctor.runtime.drivers import core

from ..raw_helpers import codes, raw_holds, wait_for

ORIGINAL = {"connect": sqlite3.connect}  # in a dict: the rebinding changes module globals


def open_here(path: str = ":memory:") -> tuple[sqlite3.Connection, int]:
    line = sys._getframe().f_lineno + 1
    return sqlite3.connect(path), line


def test_hold_has_site_and_ends_on_close(guard: object) -> None:
    pooldoctor.instrument(log=False)
    conn, line = open_here()
    (h,) = raw_holds()
    assert h["pool"] == "sqlite3"
    assert h["site"] == {"file": __file__, "line": line, "function": "open_here"}
    assert "server_id" not in h
    assert isinstance(conn, sqlite3.Connection)
    conn.close()
    assert raw_holds() == []
    assert codes() == []


def test_with_block_does_not_close_sqlite(guard: object) -> None:
    pooldoctor.instrument(log=False)
    conn, _ = open_here()
    with conn:
        conn.execute("select 1")
    assert len(raw_holds()) == 1  # sqlite3's `with` only commits
    conn.close()
    assert raw_holds() == []


def test_contextlib_closing_ends_hold(guard: object) -> None:
    import contextlib

    pooldoctor.instrument(log=False)
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("select 1")
        assert len(raw_holds()) == 1
    assert raw_holds() == []


def test_garbage_collected_gives_pd102_naming_the_line(guard: object) -> None:
    pooldoctor.instrument(log=False)
    conn, line = open_here()
    del conn
    gc.collect()
    f = wait_for("PD102")  # polled: the watchdog's sweep may hold it a moment longer
    assert len(pooldoctor.report().findings) == 1
    assert f.site is not None and (f.site.file, f.site.line) == (__file__, line)
    assert f"test_dbapi_sqlite.py:{line} in open_here" in f.message
    assert "without close()" in f.message
    assert raw_holds() == []


def test_closed_then_collected_reports_nothing(guard: object) -> None:
    pooldoctor.instrument(log=False)
    conn, _ = open_here()
    conn.close()
    del conn
    gc.collect()
    GUARD.drain()
    assert codes() == []


def test_pd101_for_a_raw_connection(guard: object) -> None:
    pooldoctor.instrument(log=False, leak_threshold=0.05)
    conn, line = open_here()
    try:
        f = wait_for("PD101")
    finally:
        conn.close()
    assert f.message.startswith("connection open for ")
    assert f.site is not None and f.site.line == line
    assert f.details["pool"] == "sqlite3"


def test_old_reference_is_rebound_and_restored(guard: object) -> None:
    pooldoctor.instrument(log=False)
    assert sqlite_connect is not ORIGINAL["connect"]  # this module's global was rebound
    conn = sqlite_connect(":memory:")
    assert len(raw_holds()) == 1
    conn.close()
    pooldoctor.uninstrument()
    assert sqlite_connect is ORIGINAL["connect"]
    assert sqlite3.connect is ORIGINAL["connect"]
    assert sqlite3.dbapi2.connect is ORIGINAL["connect"]
    assert type(sqlite3.connect(":memory:")) is sqlite3.Connection


def test_install_and_uninstall_are_idempotent(guard: object) -> None:
    pooldoctor.instrument(log=False)
    patched = sqlite3.connect
    dbapi.install()
    pooldoctor.instrument(log=False)
    assert sqlite3.connect is patched
    assert GUARD.tick_hooks.count(core.sweep) == 1
    pooldoctor.uninstrument()
    dbapi.uninstall()
    pooldoctor.uninstrument()
    assert sqlite3.connect is ORIGINAL["connect"]
    assert core.sweep not in GUARD.tick_hooks
    assert dbapi.installed() == []


def test_engine_mode_leaves_drivers_alone(guard: object, tmp_path: Path) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'e.db'}")
    pooldoctor.instrument(engine, log=False)
    assert sqlite3.connect is ORIGINAL["connect"]
    engine.dispose()


def test_user_factory_is_respected(guard: object) -> None:
    class MyConnection(sqlite3.Connection):
        marker = "mine"

    pooldoctor.instrument(log=False)
    conn = sqlite3.connect(":memory:", factory=MyConnection)
    assert isinstance(conn, MyConnection) and conn.marker == "mine"
    conn2 = sqlite3.connect(":memory:", 5.0, 0, "DEFERRED", True, MyConnection)
    assert isinstance(conn2, MyConnection)
    assert len(raw_holds()) == 2
    conn.close()
    conn2.close()
    assert raw_holds() == []


def test_open_cursors_are_counted(guard: object) -> None:
    pooldoctor.instrument(log=False)
    conn, _ = open_here()
    c1 = conn.cursor()
    c2 = conn.cursor()
    assert raw_holds()[0]["open_cursors"] == 2
    c1.close()
    core.sweep()
    assert raw_holds()[0]["open_cursors"] == 1
    del c2
    gc.collect()
    core.sweep()
    assert raw_holds()[0]["open_cursors"] == 0
    conn.close()
    assert codes() == []  # cursors are never reported


def test_sqlalchemy_pool_connections_are_not_raw_holds(guard: object, tmp_path: Path) -> None:
    import sqlalchemy as sa

    pooldoctor.instrument(log=False)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    custom = sa.create_engine("sqlite://", creator=lambda: sqlite3.connect(":memory:"))
    with engine.connect() as c, custom.connect() as d:
        c.exec_driver_sql("select 1")
        d.exec_driver_sql("select 1")
        kinds = sorted(h["kind"] for h in pooldoctor.holds())
        assert kinds == ["checkout", "checkout"]
    engine.dispose()
    custom.dispose()
    assert raw_holds() == []


def test_connection_opened_by_library_code_only_is_not_held(guard: object) -> None:
    import threading

    pooldoctor.instrument(log=False)
    fake = os.path.join(sysconfig.get_paths()["stdlib"], "pd_fake_stdlib_module.py")
    ns: dict = {}
    src = ("import sqlite3\ndef f(out):\n"
           "    out.append(sqlite3.connect(':memory:', check_same_thread=False))\n")
    exec(compile(src, fake, "exec"), ns)
    out: list = []
    ns["f"](out)  # library code called by this test: the site is this test
    assert len(raw_holds()) == 1
    t = threading.Thread(target=ns["f"], args=(out,))  # no user frame on that stack
    t.start()
    t.join()
    assert len(out) == 2
    assert len(raw_holds()) == 1
    for c in out:
        c.close()
    assert raw_holds() == []


def test_pd108_one_site_opening_many(guard: object) -> None:
    pooldoctor.instrument(log=False, many_threshold=5)

    class Helper:  # "a helper object per test case, each with its own connection"
        def __init__(self) -> None:
            self.conn = sqlite3.connect(":memory:")

    helpers = [Helper() for _ in range(4)]
    assert "PD108" not in codes()
    helpers.append(Helper())
    f = wait_for("PD108", 0.5)
    assert f.site is not None and f.site.function == "__init__"
    assert "holds 5 connections open at once" in f.message
    assert f.details["held"] == 5 and f.details["threshold"] == 5
    for h in helpers:
        h.conn.close()
    assert raw_holds() == []


def test_many_sites_below_threshold_report_nothing(guard: object) -> None:
    pooldoctor.instrument(log=False, many_threshold=3)
    a = [sqlite3.connect(":memory:") for _ in range(2)]
    b = [sqlite3.connect(":memory:") for _ in range(2)]
    c = [sqlite3.connect(":memory:")]
    for x in a:
        x.close()
    a = [sqlite3.connect(":memory:") for _ in range(2)]  # same site again: 2 at once
    assert codes() == []
    for x in a + b + c:
        x.close()


def _run(script: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    events = tmp_path / "events.jsonl"
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(script))
    env = dict(os.environ, POOLDOCTOR_EVENTS=str(events))
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    lines = events.read_text().splitlines() if events.exists() else []
    return proc, [json.loads(x) for x in lines]


def test_pd105_at_exit_in_a_subprocess(tmp_path: Path) -> None:
    proc, events = _run("""
        import sqlite3
        import pooldoctor
        pooldoctor.instrument()
        kept = sqlite3.connect(":memory:")
        closed = sqlite3.connect(":memory:")
        closed.close()
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = [e["finding"] for e in events if e["event"] == "finding"]
    assert [f["code"] for f in found] == ["PD105"]
    assert found[0]["site"]["line"] == 5
    assert found[0]["message"].startswith("connection open at exit")
    assert "PD105" in proc.stderr and "prog.py:5" in proc.stderr


def test_clean_program_reports_nothing(tmp_path: Path) -> None:
    proc, events = _run("""
        import contextlib, sqlite3
        import pooldoctor
        pooldoctor.instrument(leak_threshold=5)
        for _ in range(20):
            with contextlib.closing(sqlite3.connect(":memory:")) as c:
                c.execute("select 1").fetchall()
        c = sqlite3.connect(":memory:")
        c.close()
    """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [e for e in events if e["event"] == "finding"] == []
    assert "PD1" not in proc.stderr


def test_internal_failure_never_reaches_the_program(guard: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pooldoctor.instrument(log=False)

    def broken(*a: object, **k: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(GUARD.ledger, "new", broken)
    before = GUARD.internal_errors
    conn = sqlite3.connect(":memory:")
    conn.execute("select 1")
    conn.close()
    assert GUARD.internal_errors > before
