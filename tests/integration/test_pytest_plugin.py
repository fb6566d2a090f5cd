"""The pytest plugin, end to end: inner test suites run with ``pytester`` against SQLite and
the real servers."""

from __future__ import annotations

import gc
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

# Imported here, before any in-process pytester run, so that every inner run shares these
# modules (pytester drops the modules a run imported, and a second copy of the guard would
# not see the first copy's SQLAlchemy listeners; a second copy of a driver has other error
# classes, which later tests' pytest.raises would miss).
import psycopg  # noqa: F401
import pymysql  # noqa: F401
import pytest
import sqlalchemy.dialects.mysql
import sqlalchemy.dialects.postgresql  # noqa: F401

import pooldoctor.api
import pooldoctor.pytest_plugin.leaks
import pooldoctor.runtime.dbapi
import pooldoctor.runtime.sqlalchemy

pytest_plugins = ["pytester"]

INI = """
[pytest]
addopts = -p no:hypothesispytest -p no:cacheprovider
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


def line_of(source: str, marker: str) -> int:
    """The 1-based line holding ``marker`` in the file pytester writes (dedented, stripped)."""
    for i, line in enumerate(textwrap.dedent(source).strip().splitlines(), 1):
        if marker in line:
            return i
    raise AssertionError(f"{marker!r} not in source")


@pytest.fixture
def clean_guard(guard: object) -> Iterator[None]:
    """In-process runs use this process's guard: leave nothing of theirs to later tests."""
    yield
    gc.collect()
    pooldoctor.runtime.sqlalchemy.reset_stats()


@pytest.fixture
def suite(pytester: pytest.Pytester, clean_guard: None) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def sqlite(pytester: pytest.Pytester) -> str:
    return f"sqlite:///{pytester.path / 'db.sqlite'}"


LEAKY = """
    import sqlalchemy as sa

    ENGINE = sa.create_engine({url!r})
    KEEP = []

    def test_clean():
        with ENGINE.connect() as conn:
            conn.exec_driver_sql("select 1")

    def helper():
        return ENGINE.connect()  # LEAK-SITE

    def test_leak():
        KEEP.append(helper())  # CALLER
"""


def test_leaky_test_fails_with_its_site(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_leaky=LEAKY.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=2, errors=1)
    site = line_of(LEAKY, "LEAK-SITE")
    caller = line_of(LEAKY, "CALLER")
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leak*",
        # helper() returns the connection: its caller is the line to fix, named first
        f"pooldoctor: the test left 1 connection behind: PD105 at test_leaky.py:{caller} in "
        f"test_leak, through test_leaky.py:{site} in helper",
        "PD105 error*connection checked out at the end of test test_leaky.py::test_leak*",
        f"    at test_leaky.py:{caller} in test_leak",
        f"    through test_leaky.py:{site} in helper (opened there, handed to the caller)",
        "    hint: close connections*",
        "*pooldoctor_allow(codes=*PD105*",
    ])
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_clean*")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_plugin_is_inactive_unless_asked(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_leaky=LEAKY.format(url=sqlite(suite)))
    result = suite.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*= pooldoctor =*")
    result.stdout.no_fnmatch_line("*PD105*")


def test_ini_enables_it(pytester: pytest.Pytester, clean_guard: None) -> None:
    pytester.makeini(INI + "pooldoctor = true\n")
    pytester.makepyfile(test_leaky=LEAKY.format(url=sqlite(pytester)))
    pytester.runpytest().assert_outcomes(passed=2, errors=1)


def test_clean_suite_passes_untouched(suite: pytest.Pytester) -> None:
    suite.makeconftest(f"""
        import pytest
        import sqlalchemy as sa

        @pytest.fixture(scope="session")
        def engine():
            e = sa.create_engine({sqlite(suite)!r})
            yield e
            e.dispose()

        @pytest.fixture
        def conn(engine):
            c = engine.connect()
            t = c.begin()
            yield c
            t.rollback()
            c.close()
    """)
    suite.makepyfile(test_clean="""
        import pytest
        from sqlalchemy.orm import Session

        def test_uses_conn(conn):
            conn.exec_driver_sql("create table if not exists t (x int)")

        def test_two_at_once(engine):
            with engine.connect() as a, engine.connect() as b:
                a.exec_driver_sql("select 1")
                b.exec_driver_sql("select 1")

        def test_session(engine):
            with Session(engine) as s:
                s.connection().exec_driver_sql("select 1")

        @pytest.mark.parametrize("n", range(3))
        def test_many(conn, n):
            assert conn.exec_driver_sql("select 1").scalar() == 1
    """)
    result = suite.runpytest("--pooldoctor", "-W", "error")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*= pooldoctor =*", "6 tests checked, no connections left behind"])
    assert result.ret == pytest.ExitCode.OK


def test_garbage_collected_connection_is_pd102_of_the_test(suite: pytest.Pytester) -> None:
    src = """
        import sqlalchemy as sa
        ENGINE = sa.create_engine({url!r})

        def test_local():
            conn = ENGINE.connect()  # LOCAL
            conn.exec_driver_sql("select 1")

        def test_cycle():
            conn = ENGINE.connect()  # CYCLE
            box = {{"conn": conn}}
            box["self"] = box  # freed only by a collection, not by reference counting

        def test_after():
            pass
    """
    suite.makepyfile(test_gc=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_local*",
        f"*PD102 at test_gc.py:{line_of(src, 'LOCAL')} in test_local",
        "*ERROR at teardown of test_cycle*",
        f"*PD102 at test_gc.py:{line_of(src, 'CYCLE')} in test_cycle",
    ])
    result.stdout.no_fnmatch_line("*PD105*")
    result.stdout.no_fnmatch_line("*teardown of test_after*")


def test_wider_fixture_is_not_blamed_on_a_test(suite: pytest.Pytester) -> None:
    src = """
        import pytest
        import sqlalchemy as sa
        ENGINE = sa.create_engine({url!r})

        @pytest.fixture(scope="session")
        def session_conn():
            c = ENGINE.connect()
            yield c
            c.close()

        @pytest.fixture(scope="module")
        def module_conn():
            c = ENGINE.connect()
            yield c
            c.close()

        class TestGroup:
            @pytest.fixture(scope="class")
            def class_conn(self):
                with ENGINE.connect() as c:
                    yield c

            def test_a(self, class_conn, module_conn):
                pass

            def test_b(self, class_conn):
                pass

        def test_first(session_conn):
            session_conn.exec_driver_sql("select 1")

        def test_last(session_conn, module_conn):
            pass
    """
    suite.makepyfile(test_scopes=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["4 tests checked, no connections left behind"])


def test_wider_fixture_leak_is_reported_at_its_end(suite: pytest.Pytester) -> None:
    src = """
        import pytest
        import sqlalchemy as sa
        ENGINE = sa.create_engine({url!r})
        KEEP = []

        @pytest.fixture(scope="module")
        def shared():
            KEEP.append(ENGINE.connect())  # FIXTURE-LEAK
            yield

        def test_one(shared):
            pass

        def test_two(shared):
            pass
    """
    suite.makepyfile(test_fix=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=2, errors=1)
    line = line_of(src, "FIXTURE-LEAK")
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_two*",
        "pooldoctor: fixture 'shared' (module scope, test_fix.py:* in shared) left 1 connection "
        f"behind after its teardown (the test is not to blame): PD105 at test_fix.py:{line} "
        "in shared",
    ])
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_one*")
    result.stdout.no_fnmatch_line("*the test left*")


def test_connection_left_by_import_fails_the_session(suite: pytest.Pytester) -> None:
    src = """
        import sqlalchemy as sa
        ENGINE = sa.create_engine({url!r})
        GLOBAL = ENGINE.connect()  # AT-IMPORT

        def test_nothing():
            pass
    """
    suite.makepyfile(test_imp=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "1 test checked, 0 left connections behind",
        "connections found left behind only at the end of the session*: the session fails",
        "*PD105 error*at the end of the test session*",
        f"    at test_imp.py:{line_of(src, 'AT-IMPORT')} in <module>",
    ])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_allow_marker(suite: pytest.Pytester) -> None:
    src = """
        import pytest
        import sqlalchemy as sa
        ENGINE = sa.create_engine({url!r})
        KEEP = []

        @pytest.mark.pooldoctor_allow(codes=["PD105"], reason="kept on purpose")
        def test_allowed():
            KEEP.append(ENGINE.connect())

        @pytest.mark.pooldoctor_allow(reason="anything goes")
        def test_allowed_all():
            ENGINE.connect()

        @pytest.mark.pooldoctor_allow(codes=["PD102"])
        def test_other_code_not_allowed():
            KEEP.append(ENGINE.connect())
    """
    suite.makepyfile(test_allow=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_other_code_not_allowed*",
                                 "*2 allowed by marker*"])
    result.stdout.no_fnmatch_line("*at the end of the test session*")


def test_allow_marker_unknown_code(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_bad="""
        import pytest
        import sqlalchemy as sa
        ENGINE = sa.create_engine("sqlite://")
        KEEP = []

        @pytest.mark.pooldoctor_allow(codes=["PD999"])
        def test_x():
            KEEP.append(ENGINE.pool.connect())
    """)
    result = suite.runpytest("--pooldoctor")
    result.stdout.fnmatch_lines(["*pooldoctor_allow on test_bad.py::test_x: unknown code 'PD999'*"])
    assert result.ret != pytest.ExitCode.OK


def test_warn_mode_and_escalation(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_leaky=LEAKY.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor", "--pooldoctor-mode=warn")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*ConnectionLeakWarning: pooldoctor: the test left 1 connection*"])
    assert result.ret == pytest.ExitCode.OK

    result = suite.runpytest("--pooldoctor", "--pooldoctor-mode=warn",
                             "-W", "error::pooldoctor.pytest_plugin.ConnectionLeakWarning")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["pooldoctor: the test left 1 connection behind: PD105*"])
    result.stdout.no_fnmatch_line("*pytest_plugin*leaks.py*")  # no plugin traceback
    result.stdout.no_fnmatch_line("*pytest_plugin*telling.py*")


def test_bad_options_are_usage_errors(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_x="def test_x(): pass")
    result = suite.runpytest("--pooldoctor", "-o", "pooldoctor_mode=loud")
    result.stderr.fnmatch_lines(["*pooldoctor_mode must be 'fail' or 'warn', got 'loud'*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = suite.runpytest("--pooldoctor", "--pooldoctor-leak-threshold=0")
    result.stderr.fnmatch_lines(["*pooldoctor_leak_threshold must be positive, got 0*"])
    result = suite.runpytest("--pooldoctor", "--pooldoctor-server=sqlite://")
    result.stderr.fnmatch_lines(["*needs a postgresql or mysql url, got sqlite://*"])
    result = suite.runpytest("--pooldoctor",
                             "--pooldoctor-server=postgresql://u:s3cret@127.0.0.1:1/x")
    result.stderr.fnmatch_lines(["*cannot connect to postgresql://u:***@127.0.0.1:1/x*"])
    assert "s3cret" not in result.stderr.str() + result.stdout.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_report_file(suite: pytest.Pytester, tmp_path: Path) -> None:
    suite.makepyfile(test_leaky=LEAKY.format(url=sqlite(suite)))
    out = tmp_path / "report.json"
    suite.runpytest("--pooldoctor", f"--pooldoctor-report={out}").assert_outcomes(
        passed=2, errors=1)
    data = json.loads(out.read_text())
    assert data["schema"] == "pooldoctor.report/1"
    [f] = data["findings"]
    assert f["code"] == "PD105"
    assert f["site"]["line"] == line_of(LEAKY, "LEAK-SITE")
    assert f["site"]["file"].endswith("test_leaky.py")
    assert f["details"]["test"] == "test_leaky.py::test_leak"
    assert data["pytest"]["tests_checked"] == 2
    assert data["pytest"]["leaking"] == ["test_leaky.py::test_leak"]
    assert data["pools"] and data["pools"][0]["checkouts"] >= 2


def test_xdist_workers_check_their_own_tests(suite: pytest.Pytester, tmp_path: Path) -> None:
    url = sqlite(suite)
    for name in ("test_w1", "test_w2"):
        suite.makepyfile(**{name: LEAKY.format(url=url)})
    out = tmp_path / "report.json"
    result = suite.runpytest_subprocess("--pooldoctor", "-n", "2", "-p", "no:cacheprovider",
                                        f"--pooldoctor-report={out}")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(["*= pooldoctor =*", "4 tests checked, 2 left connections behind"])
    data = json.loads(out.read_text())
    assert data["pytest"]["workers"] == 2
    assert data["pytest"]["tests_checked"] == 4
    assert sorted(data["pytest"]["leaking"]) == ["test_w1.py::test_leak", "test_w2.py::test_leak"]
    # the same code and site in two files are two findings; each names its worker
    assert {f["details"]["test"] for f in data["findings"]} == {
        "test_w1.py::test_leak", "test_w2.py::test_leak"}
    assert all(f["details"]["worker"].startswith("gw") for f in data["findings"])


def test_async_tests(suite: pytest.Pytester) -> None:
    db = suite.path / "adb.sqlite"
    src = f"""
        import pytest
        from sqlalchemy.ext.asyncio import create_async_engine

        ENGINE = create_async_engine("sqlite+aiosqlite:///{db}")
        KEEP = []

        async def test_async_clean():
            async with ENGINE.connect() as conn:
                await conn.exec_driver_sql("select 1")

        async def test_async_leak():
            conn = await ENGINE.connect()  # ASYNC-LEAK
            KEEP.append(conn)

        @pytest.mark.anyio
        async def test_anyio_leak():
            KEEP.append(await ENGINE.connect())  # ANYIO-LEAK

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        def test_last():  # the module fixture below closes KEEP after this test, not before
            pass

        @pytest.fixture(scope="module", autouse=True)
        def close_kept():
            yield
            import asyncio
            async def close():
                for c in KEEP:
                    await c.close()
                await ENGINE.dispose()
            asyncio.run(close())
    """
    suite.makepyfile(test_async=src)
    result = suite.runpytest("--pooldoctor", "-p", "anyio")
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_async_leak*",
        f"*PD105 at test_async.py:{line_of(src, 'ASYNC-LEAK')} in test_async_leak",
        "*ERROR at teardown of test_anyio_leak*",
        f"*PD105 at test_async.py:{line_of(src, 'ANYIO-LEAK')} in test_anyio_leak",
    ])


def test_on_postgresql(suite: pytest.Pytester, pg_url: str) -> None:
    src = f"""
        import pytest
        import sqlalchemy as sa

        ENGINE = sa.create_engine({pg_url!r}, pool_size=2)
        KEEP = []

        @pytest.fixture
        def conn():
            c = ENGINE.connect()
            t = c.begin()
            yield c
            t.rollback()
            c.close()

        def test_rolled_back(conn):
            conn.exec_driver_sql("select pg_backend_pid()")

        def test_leak():
            KEEP.append(ENGINE.connect())  # PG-LEAK

        def test_after():
            KEEP.pop().close()
            ENGINE.dispose()
    """
    suite.makepyfile(test_pg=src)
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([f"*PD105 at test_pg.py:{line_of(src, 'PG-LEAK')} in test_leak"])


def test_server_count_on_postgresql(suite: pytest.Pytester, pg_url: str) -> None:
    """A libpq connection no driver wrapper sees is found by the server count (PD303)."""
    plain = pg_url.replace("+psycopg", "")
    src = f"""
        import psycopg
        import pytest
        import sqlalchemy as sa

        ENGINE = sa.create_engine({pg_url!r})
        RAW = []

        @pytest.fixture(scope="module", autouse=True)
        def close_raw():
            yield
            for c in RAW:
                c.finish()
            ENGINE.dispose()

        def test_pool_warms_up():  # idle pooled connections are not growth
            with ENGINE.connect() as a, ENGINE.connect() as b:
                a.exec_driver_sql("select 1")

        def test_unseen_leak():
            RAW.append(psycopg.pq.PGconn.connect(
                b"host=127.0.0.1 port=5432 user=postgres dbname=test"))

        def test_clean():
            with ENGINE.connect() as c:
                c.exec_driver_sql("select 1")
    """
    suite.makepyfile(test_srv=src)
    result = suite.runpytest("--pooldoctor", f"--pooldoctor-server={plain}")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_unseen_leak*",
        "*PD303 at test_srv.py:* in test_unseen_leak",
        "*PostgreSQL connections of this process that no pool or hold accounts for grew from 0 "
        "to 1 during test test_srv.py::test_unseen_leak; server connection ids: * (matched by "
        "socket)",
    ])


def test_server_count_on_mariadb_clean_suite(suite: pytest.Pytester, mysql_url: str) -> None:
    src = f"""
        import pytest
        import sqlalchemy as sa

        ENGINE = sa.create_engine({mysql_url!r})

        @pytest.fixture
        def conn():
            c = ENGINE.connect()
            t = c.begin()
            yield c
            t.rollback()
            c.close()

        def test_one(conn):
            conn.exec_driver_sql("select 1")

        def test_two():
            with ENGINE.connect() as a, ENGINE.connect() as b:
                a.exec_driver_sql("select 1")

        def test_dispose():
            ENGINE.dispose()
    """
    suite.makepyfile(test_my=src)
    result = suite.runpytest("--pooldoctor", f"--pooldoctor-server={mysql_url}")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["3 tests checked, no connections left behind"])


def test_no_pooldoctor_overrides_the_ini(pytester: pytest.Pytester, clean_guard: None) -> None:
    pytester.makeini(INI + "pooldoctor = true\n")
    pytester.makepyfile(test_leaky=LEAKY.format(url=sqlite(pytester)))
    result = pytester.runpytest("--no-pooldoctor")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*= pooldoctor =*")


def test_allow_marker_typo_fails_even_without_a_leak(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_typo="""
        import pytest

        @pytest.mark.pooldoctor_allow(codes="PD15")
        def test_x():
            pass
    """)
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*pooldoctor_allow on test_typo.py::test_x: unknown code 'PD15'"])


def test_guard_survives_a_test_that_clears_pool_listeners(suite: pytest.Pytester) -> None:
    src = """
        import sqlalchemy as sa
        from sqlalchemy.pool import Pool
        ENGINE = sa.create_engine({url!r})
        KEEP = []

        def test_clears():  # as some of SQLAlchemy's own test teardowns do
            Pool.dispatch._clear()

        def test_leak():
            KEEP.append(ENGINE.connect())  # AFTER-CLEAR
    """
    suite.makepyfile(test_clear=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([f"*PD105 at test_clear.py:{line_of(src, 'AFTER-CLEAR')} in "
                                 "test_leak"])


def test_failing_test_that_leaks_reports_both(suite: pytest.Pytester) -> None:
    src = """
        import sqlalchemy as sa
        ENGINE = sa.create_engine({url!r})
        KEEP = []

        def test_fails():
            KEEP.append(ENGINE.connect())
            assert False, "the test's own failure"
    """
    suite.makepyfile(test_both=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_fails*", "*PD105 at test_both.py:6*",
                                 "*the test's own failure*"])


def test_fixture_finalized_by_the_session_end_is_reported_without_a_crash(
        suite: pytest.Pytester) -> None:
    src = """
        import pytest
        import sqlalchemy as sa
        ENGINE = sa.create_engine({url!r})
        KEEP = []

        @pytest.fixture(scope="session")
        def shared():
            KEEP.append(ENGINE.connect())  # SESSION-LEAK
            yield

        def test_interrupted(shared):
            raise KeyboardInterrupt  # no teardown: the session's end finalizes 'shared'

        def test_never_runs(shared):
            pass
    """
    suite.makepyfile(test_stop=src.format(url=sqlite(suite)))
    result = suite.runpytest("--pooldoctor", no_reraise_ctrlc=True)
    result.stdout.fnmatch_lines([
        "*= pooldoctor =*",
        "0 tests checked, 1 left connections behind",
        "connections found left behind only at the end of the session*: the session fails",
        "  fixture 'shared' (session scope, *)",
        f"*at test_stop.py:{line_of(src, 'SESSION-LEAK')} in shared",
    ])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_server_lost_stops_the_count_with_one_warning(suite: pytest.Pytester,
                                                      pg_url: str) -> None:
    src = f"""
        import sqlalchemy as sa
        from pooldoctor.pytest_plugin.leaks import PLUGIN_KEY

        ENGINE = sa.create_engine({pg_url!r}, poolclass=sa.pool.NullPool)

        def test_probe_dies(request):
            probe = request.config.stash[PLUGIN_KEY].server.raw.info.backend_pid
            with ENGINE.connect() as c:  # ends only the plugin's own probe connection
                c.exec_driver_sql(f"select pg_terminate_backend({{probe}})")

        def test_after():
            with ENGINE.connect() as c:
                c.exec_driver_sql("select 1")
    """
    suite.makepyfile(test_lost=src)
    result = suite.runpytest("--pooldoctor", f"--pooldoctor-server={pg_url}", "-p", "no:randomly")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines([f"*PytestWarning: pooldoctor: server count against {pg_url} "
                                 "stopped: *"])


def test_marker_is_known_even_when_the_plugin_is_off(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_m="""
        import pytest

        @pytest.mark.pooldoctor_allow(codes=["PD105"], reason="kept")
        def test_x():
            pass
    """)
    suite.runpytest("--strict-markers").assert_outcomes(passed=1)
