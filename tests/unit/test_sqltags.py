"""Statement tags (sqlcommenter) and connection tags: writing, reading, attribution."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from pooldoctor import sqlcomment
from pooldoctor.runtime import sqltags
from pooldoctor.runtime.tags import parse_process_tag, parse_tag, process_tag
from pooldoctor.server.attribution import Published, attribute
from pooldoctor.server.model import ACTIVE, IDLE, IDLE_TXN, ServerConn, Snapshot
from pooldoctor.server.sql import read_tags
from pooldoctor.server.tagsource import holder_from_server, site_from_tags

URL = "postgresql+psycopg://app:***@127.0.0.1:5432/app"

# ----------------------------------------------------------------------------- the format


def test_format_sorts_encodes_and_quotes() -> None:
    c = sqlcomment.format_comment({"route": "/polls/1 x", "action": "it's", "empty": ""})
    assert c == "/*action='it%27s',route='/polls/1%20x'*/"
    assert sqlcomment.format_comment({}) == ""


def test_append_before_a_semicolon_and_after_a_line_comment() -> None:
    c = "/*a='1'*/"
    assert sqlcomment.append("SELECT 1", c) == "SELECT 1 /*a='1'*/"
    assert sqlcomment.append("SELECT 1 ;\n", c) == "SELECT 1 /*a='1'*/;"
    tail = sqlcomment.append("SELECT 1 -- why", c)
    assert tail == "SELECT 1 -- why\n/*a='1'*/"
    assert sqlcomment.parse(tail) == {"a": "1"}


def test_parse_round_trip_and_several_tools() -> None:
    pairs = {"pd_site": "app/x y.py:12:f", "pd_host": "web-3", "q": "a'b,c=d*/"}
    sql = sqlcomment.append("SELECT 1", sqlcomment.format_comment(pairs))
    assert sqlcomment.parse(sql) == pairs
    # another tool's comment first, ours after it: both read, the statement keeps theirs
    theirs = "SELECT 1 /*controller='index',traceparent='00-ab-cd-01'*/"
    both = sqlcomment.append(theirs, sqlcomment.format_comment({"pd_pid": "7"}))
    assert both.startswith(theirs)
    assert sqlcomment.parse(both) == {"controller": "index", "traceparent": "00-ab-cd-01",
                                      "pd_pid": "7"}
    assert sqlcomment.strip_tags(both) == "SELECT 1"


def test_parse_other_tools_formats() -> None:
    # Django/OpenTelemetry python sqlcommenter double every % (for drivers that interpolate)
    django = ("SELECT \"polls_question\".\"id\" FROM \"polls_question\" /*app_name='polls',"
              "controller='index',db_driver='psycopg%%3A3.1',framework='django%%3A4.2',"
              "route='polls/',traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-"
              "c532cb4098ac3dd2-01'*/")
    tags = sqlcomment.parse(django)
    assert tags["framework"] == "django:4.2" and tags["route"] == "polls/"
    rails = ("SELECT 1 /*application='Shop',pid='42',"  # Rails 7.1 url-encodes the values
             "source_location='app%2Fmodels%2Fuser.rb%3A17%3Ain%20%60find%27'*/")
    tags = sqlcomment.parse(rails)
    assert tags["pid"] == "42"
    site = site_from_tags(tags)
    assert site is not None and (site.file, site.line, site.function) == (
        "app/models/user.rb", 17, "find")
    legacy = "SELECT 1 /*application:Shop,controller:users,action:index*/"
    assert sqlcomment.parse(legacy) == {"application": "Shop", "controller": "users",
                                        "action": "index"}


def test_parse_ignores_what_is_not_a_trailing_tag() -> None:
    assert sqlcomment.parse("SELECT 1") == {}
    assert sqlcomment.parse("SELECT /*a='1'*/ 1") == {}  # not at the end
    assert sqlcomment.parse("SELECT 1 /* a hint for the planner */") == {}
    assert sqlcomment.parse("SELECT '/*a=''1''*/'") == {}
    assert sqlcomment.strip_tags("SELECT 1 /* keep me */") == "SELECT 1 /* keep me */"


def test_read_tags_before_masking_and_from_the_tail() -> None:
    sql = "UPDATE t SET x = 5 /*pd_pid='7',pd_site='a.py:3:f'*/"
    query, tags = read_tags(sql, sql[-40:])
    assert tags == {"pd_pid": "7", "pd_site": "a.py:3:f"}
    assert query == "UPDATE t SET x = 5"
    long = "SELECT " + "x, " * 600 + "1 /*pd_pid='8'*/"
    head = long[:1000]
    query, tags = read_tags(head, long[-600:])
    assert tags == {"pd_pid": "8"} and query == head  # truncated head: shown as read


# ----------------------------------------------------------------------------- connection tags


def test_process_tag_names_host_and_pid_within_63_bytes() -> None:
    tag = process_tag(4242, "web-3")
    assert tag.startswith("pooldoctor:4242@web-3:")
    assert parse_process_tag(tag)[:2] == (4242, "web-3")  # type: ignore[index]
    long = process_tag(4194304, "h" * 80 + ".example.internal")
    assert len(long.encode()) <= 63
    pid, host, _ = parse_process_tag(long)  # type: ignore[misc]
    assert pid == 4194304 and host and "h".startswith(host[0])
    assert parse_tag("pooldoctor:17:old.py") == 17  # tags of older versions
    assert parse_process_tag("pooldoctor:17:old.py") == (17, None, "old.py")
    assert parse_process_tag("psql") is None and parse_process_tag("pooldoctor:x:y") is None


# ----------------------------------------------------------------------------- attribution


def _conn(i: int, state: str, tags: dict[str, str] | None = None,
          app: str | None = None) -> ServerConn:
    return ServerConn(i, "app", "app", "10.0.0.1", 5000 + i, app, state, 10.0, 5.0,
                      5.0 if state == IDLE_TXN else None, "SELECT ?", tags=tags)


def test_holder_from_statement_tags() -> None:
    tags = {"pd_host": "web-3", "pd_pid": "7", "pd_pool": "db:5432/app",
            "pd_site": "app/cases.py:42:load_cases"}
    h = holder_from_server(_conn(1, IDLE_TXN, tags))
    assert h is not None
    assert (h["pid"], h["hostname"], h["held"]) == (7, "web-3", True)
    assert h["site"] == {"file": "app/cases.py", "line": 42, "function": "load_cases"}
    idle = holder_from_server(_conn(2, IDLE, tags))
    assert idle is not None and idle["held"] is None and "last statement" in idle["text"]


def test_holder_from_connection_tag_and_other_tools() -> None:
    h = holder_from_server(_conn(1, IDLE, None, process_tag(9, "worker-2")))
    assert h is not None and (h["pid"], h["hostname"], h["site"]) == (9, "worker-2", None)
    h = holder_from_server(_conn(2, ACTIVE, {"controller": "index", "route": "polls/"}))
    assert h is not None and h["pid"] is None and "route=polls/" in h["text"]
    assert holder_from_server(_conn(3, IDLE)) is None
    assert holder_from_server(_conn(4, IDLE, None, "psql")) is None


def test_a_fleet_with_colliding_pids_is_told_apart_by_host() -> None:
    conns = [_conn(1, IDLE_TXN, {"pd_host": "a", "pd_pid": "1", "pd_site": "w.py:10:leak"},
                   process_tag(1, "a")),
             _conn(2, IDLE_TXN, {"pd_host": "b", "pd_pid": "1", "pd_site": "w.py:20:leak"},
                   process_tag(1, "b"))]
    snap = Snapshot("postgresql", URL, conns=conns)
    # host a's holds file (pid 1) holds connection 1; host c's (pid 1 too) claims connection
    # 2, which the server shows tagged by host b: never used for it
    def doc(host: str, sid: int, line: int) -> Published:
        site = {"file": "/srv/w.py", "line": line, "function": "leak"}
        return Published(1, host, "w.py", 0.0, [
            {"server_id": sid, "server": "127.0.0.1:5432", "site": site, "stack": [site],
             "since": 1.0, "thread": "MainThread", "kind": "checkout"}])

    assert attribute(snap, {("a", 1): doc("a", 1, 10), ("c", 1): doc("c", 2, 99)}) == 2
    first, second = (c.holder or {} for c in snap.conns)
    assert (first["hostname"], first["site"]["line"], first["source"]) == ("a", 10, "holds")
    assert (second["hostname"], second["site"]["line"]) == ("b", 20)
    assert second["source"] == "statement"


# ----------------------------------------------------------------------------- writing tags


def _hold(code: Any, line: int, info: Any, pid: int = 7) -> Any:
    return SimpleNamespace(frames=(code, 0), pool=info, pid=pid)


def test_tag_is_one_string_per_site_and_doubles_percent_for_interpolating_drivers() -> None:
    info = SimpleNamespace(name="orders", url=URL)
    h1 = _hold(test_tag_is_one_string_per_site_and_doubles_percent_for_interpolating_drivers
               .__code__, 0, info)
    a = sqltags.tag("SELECT 1", h1, interpolated=False)
    b = sqltags.tag("SELECT 1", h1, interpolated=False)
    assert a == b and "pd_pool='orders'" in a and "pd_pid='7'" in a
    tags = sqlcomment.parse(a)
    assert tags["pd_site"].endswith(":test_tag_is_one_string_per_site_and_doubles_percent"
                                    "_for_interpolating_drivers")
    with_pct = sqltags.tag("SELECT 1", _hold(_hold.__code__, 0, SimpleNamespace(
        name="a b", url=URL)), interpolated=True)
    assert "a%%20b" in with_pct and sqlcomment.parse(with_pct)["pd_pool"] == "a b"
    assert sqltags.tag(a, h1, interpolated=False) == a  # never twice
    theirs = "SELECT 1 /*controller='x'*/"
    assert sqltags.tag(theirs, h1, interpolated=False).startswith(theirs)


def test_pool_label_is_otel_style_without_a_name() -> None:
    assert sqltags.pool_label(SimpleNamespace(name=None, url=URL)) == "127.0.0.1:5432/app"


def test_off_installs_nothing_and_on_tags_sqlite_statements(tmp_path: Any) -> None:
    import pooldoctor

    engine = sa.create_engine(f"sqlite:///{tmp_path}/t.db")
    seen: list[str] = []  # what sqlite3 really ran
    sa.event.listen(engine, "connect", lambda dbapi, rec: dbapi.set_trace_callback(seen.append))
    try:
        pooldoctor.instrument(engine, exit_check=False, log=False)
        assert "do_execute" not in engine.dialect.__dict__  # off: no wrapper at all
        pooldoctor.instrument(engine, exit_check=False, log=False, tag_sql=True)
        assert "do_execute" in engine.dialect.__dict__
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            conn.execute(sa.text("SELECT :x"), {"x": 1})
        tagged = [s for s in seen if "pd_site" in s]
        assert len(tagged) >= 2
        site = sqlcomment.parse(tagged[0])["pd_site"]
        assert site.startswith("tests/unit/test_sqltags.py:") or "test_sqltags.py:" in site
        assert site.endswith(":test_off_installs_nothing_and_on_tags_sqlite_statements")
        pooldoctor.instrument(engine, exit_check=False, log=False, tag_sql=False)
        assert "do_execute" not in engine.dialect.__dict__
    finally:
        pooldoctor.uninstrument()
        engine.dispose()
    assert not sqltags.enabled


def test_otel_sqlcommenter_statement_as_postgresql_showed_it() -> None:
    # OpenTelemetry's SQLAlchemy instrumentation (0.66b2, enable_commenter=True) and pooldoctor
    # both on, as pg_stat_activity.query showed it (SQLAlchemy 2.0.58, psycopg 3.3.9)
    seen = ("SELECT $1 + 1 /*db_driver='psycopg',db_framework='sqlalchemy%3A2.0.58',traceparent="
            "'00-9ee8c546fd6c85b69316ceb62a795db0-7855c28afd8b1d18-03'*/ /*pd_host='vm',"
            "pd_pid='27173',pd_pool='127.0.0.1:5432/test',pd_site='app.py:18:%3Cmodule%3E'*/")
    query, tags = read_tags(seen, seen[-600:])
    assert query == "SELECT $1 + 1"
    assert tags is not None and tags["db_framework"] == "sqlalchemy:2.0.58"
    h = holder_from_server(_conn(1, IDLE_TXN, tags))
    assert h is not None and h["pid"] == 27173 and h["site"]["function"] == "<module>"
    assert h["traceparent"].startswith("00-9ee8c546")


def test_traceparent_of_the_active_span_once() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    info = SimpleNamespace(name="p", url=URL)
    h = _hold(test_traceparent_of_the_active_span_once.__code__, 0, info)
    assert "traceparent" not in sqlcomment.parse(sqltags.tag("SELECT 1", h, interpolated=False))
    tracer = TracerProvider().get_tracer("pooldoctor-test")
    with tracer.start_as_current_span("request") as span:
        tagged = sqltags.tag("SELECT 1", h, interpolated=False)
        trace_id = f"{span.get_span_context().trace_id:032x}"
        theirs = f"SELECT 1 /*traceparent='00-{'1' * 32}-{'2' * 16}-01'*/"
        both = sqltags.tag(theirs, h, interpolated=False)
    assert sqlcomment.parse(tagged)["traceparent"].split("-")[1] == trace_id
    assert both.count("traceparent=") == 1  # another tool's traceparent is not repeated
    ended = sqltags.tag("SELECT 2", h, interpolated=False)
    assert "traceparent" not in sqlcomment.parse(ended)


def test_plugin_query_parameter(tmp_path: Any) -> None:
    import pytest

    import pooldoctor

    engine = sa.create_engine(f"sqlite:///{tmp_path}/p.db?plugin=pooldoctor&pooldoctor_tag_sql=1")
    try:
        assert "do_execute" in engine.dialect.__dict__ and sqltags.enabled
    finally:
        pooldoctor.uninstrument()
        engine.dispose()
    assert "do_execute" not in engine.dialect.__dict__
    with pytest.raises(ValueError, match=r"pooldoctor_tag_sql.*must be 1 or 0, got 'maybe'"):
        sa.create_engine(f"sqlite:///{tmp_path}/p.db?plugin=pooldoctor&pooldoctor_tag_sql=maybe")


def test_pgbouncer_console_rows() -> None:
    from pooldoctor.server.pgbouncer import _age, _client

    now = 1_800_000_000.0
    servers = {"0x2": {"ptr": "0x2", "remote_pid": 4242, "link": "0x1"}}
    base = {"user": "app", "database": "app", "addr": "10.0.0.7", "port": 51000,
            "connect_time": "2027-01-15 08:00:00 UTC", "request_time": "2027-01-15 08:00:00 UTC",
            "application_name": process_tag(7, "web-3"), "wait": 0, "wait_us": 0}
    held = _client({**base, "ptr": "0x1", "link": "0x2", "state": "active"}, servers, now, None)
    assert held is not None and held.state == ACTIVE and "4242" in (held.query or "")
    idle = _client({**base, "ptr": "0x3", "link": "", "state": "active"}, servers, now, None)
    assert idle is not None and idle.state == IDLE and idle.query is None and not idle.own
    waiting = _client({**base, "ptr": "0x4", "link": "", "state": "waiting", "wait": 2,
                       "wait_us": 500000}, servers, now, None)
    assert waiting is not None and waiting.wait == "waiting for a server 2.5 s"
    own = _client({**base, "ptr": "0x5", "link": "", "state": "active", "database": "pgbouncer",
                   "port": 6000}, servers, now, 6000)
    assert own is not None and own.own
    assert _age("2027-01-15 08:00:00 UTC", 1_800_000_000.0 + 0) is not None
    assert _age("not a time", now) is None and _age(None, now) is None
    h = holder_from_server(idle)
    assert h is not None and (h["pid"], h["hostname"], h["site"]) == (7, "web-3", None)


def test_watch_findings_from_tag_holders() -> None:
    from pooldoctor.server.watch import Watcher

    conns = [_conn(1, IDLE_TXN, {"controller": "index", "route": "polls/"}),  # no pid
             _conn(2, IDLE_TXN, {"pd_host": "a", "pd_pid": "9", "pd_site": "w.py:10:leak"}),
             _conn(3, IDLE_TXN, None, process_tag(8, "b"))]  # a pid, no site: with the first
    for c in conns:
        c.state_s = c.xact_s = 600.0
    snap = Snapshot("postgresql", URL, max_connections=100, conns=conns)
    attribute(snap, {})
    found = Watcher().observe(snap)
    pd302 = [f for f in found if f.code == "PD302"]
    assert {f.site.line if f.site else None for f in pd302} == {10, None}
    assert sorted(p for f in pd302 for p in f.pids) == [8, 9]


def test_the_steady_path_remembers_each_statement_per_site(monkeypatch: Any) -> None:
    info = SimpleNamespace(name="memo", url=URL)
    h = _hold(test_the_steady_path_remembers_each_statement_per_site.__code__, 0, info)
    h.sqltag = None
    monkeypatch.delitem(sys.modules, sqltags.OTEL, raising=False)
    first = sqltags.tagged("SELECT 1", h, False)
    assert h.sqltag is not None and h.sqltag[0]["SELECT 1"] is first
    # the wrappers' steady path is that lookup: the same string object every time
    doubled = sqltags.tagged("SELECT 1", h, True)
    assert doubled is not first and h.sqltag[1]["SELECT 1"] is doubled
    assert sqltags.tagged("", h, False) == ""  # nothing to tag, nothing remembered
    monkeypatch.setattr(sqltags, "_MEMO_MAX", 3)
    for i in range(10):
        sqltags.tagged(f"SELECT {i}", h, False)
    assert len(h.sqltag[0]) <= 3  # bounded per site
    other = _hold(test_the_steady_path_remembers_each_statement_per_site.__code__, 0, info)
    other.sqltag = None
    sqltags.tagged("SELECT 1", other, False)
    assert other.sqltag is h.sqltag  # one site and pool: one entry, shared by its checkouts
