"""The project-wide pass and the ownership/precision rules of issue 16: each with what it must
find and what it must NOT report."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pooldoctor.lint import lint_paths, lint_source
from pooldoctor.lint.project import absolute, module_name


def lint(src: str, *codes: str) -> list[tuple[int, str]]:
    text = textwrap.dedent(src)
    issues = lint_source(text, "m.py", codes) if codes else lint_source(text, "m.py")
    return [(i.line, i.code) for i in issues]


def write(root: Path, files: dict[str, str]) -> None:
    for name, src in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(src), "utf-8")


def found(root: Path, jobs: int | None = None) -> set[tuple[str, int, str]]:
    run = lint_paths([str(root)], jobs=jobs)
    assert run.errors() == []
    return {(Path(p).relative_to(root).as_posix(), i.line, i.code) for p, i in run.issues()}


DATABASE = """\
import sqlite3

def get_dbconn(path):
    try:
        return sqlite3.connect(path)
    except sqlite3.Error:
        raise

def get_pair(path):
    conn = sqlite3.connect(path)
    return conn, conn.cursor()

def close_all(cur, conn):
    cur.close()
    conn.close()

def get_user_records(cur):
    return cur.fetchall()

def get_db():
    db = sqlite3.connect("x")
    try:
        yield db
    finally:
        db.close()
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    write(tmp_path, {"app/__init__.py": "from .database import get_dbconn as reexported\n",
                     "app/api/__init__.py": "", "app/database.py": DATABASE})
    return tmp_path


# ------------------------------------------------------------------ module names


def test_module_names_come_from_the_init_files(app: Path) -> None:
    assert module_name(str(app / "app" / "database.py")) == ("app.database", False)
    assert module_name(str(app / "app" / "__init__.py")) == ("app", True)
    assert absolute("app.api.views", False, "..database.get_dbconn") == "app.database.get_dbconn"
    assert absolute("app.api", True, ".views.f") == "app.api.views.f"
    assert absolute("app.api.views", False, "sqlite3.connect") == "sqlite3.connect"


# ------------------------------------------------------------------ every import form


@pytest.mark.parametrize("imports, call", [
    ("from ..database import get_dbconn", "get_dbconn"),
    ("from app.database import get_dbconn", "get_dbconn"),
    ("from .. import database", "database.get_dbconn"),
    ("import app.database as dbm", "dbm.get_dbconn"),
    ("from app import database\nget_conn = database.get_dbconn", "get_conn"),
    ("from app.database import *", "get_dbconn"),
    ("from app import reexported", "reexported"),
])
def test_a_factory_of_another_module_is_followed(app: Path, imports: str, call: str) -> None:
    write(app, {"app/api/views.py": f"{imports}\n\ndef view():\n    conn = {call}('a')\n"
                                    f"    return conn.execute('x').fetchall()\n"})
    (hit,) = found(app)
    assert hit[:2] == ("app/api/views.py", 4 + imports.count("\n")) and hit[2] == "PD201"


def test_a_factory_of_another_module_closed_by_the_caller_is_silent(app: Path) -> None:
    write(app, {"app/api/views.py": """\
        import contextlib
        from ..database import get_dbconn, get_pair, close_all

        def view():
            with contextlib.closing(get_dbconn("a")) as conn:
                return conn.execute("x").fetchall()

        def pair():
            conn, cur = get_pair("a")
            try:
                cur.execute("x")
            finally:
                close_all(cur, conn)  # closes its second parameter, in another module
        """})
    assert found(app) == set()


def test_a_tuple_returning_factory_is_followed(app: Path) -> None:
    write(app, {"app/api/views.py": """\
        from ..database import get_pair

        def view():
            conn, cur = get_pair("a")
            cur.execute("x")
            cur.close()
        """})
    assert found(app) == {("app/api/views.py", 4, "PD201")}


def test_a_wrapper_of_another_modules_factory_is_a_factory(app: Path) -> None:
    write(app, {"app/helpers.py": """\
        from .database import get_dbconn

        def open_default():
            conn = get_dbconn("default.db")
            return conn
        """, "app/api/views.py": """\
        from ..helpers import open_default

        def leak():
            conn = open_default()
            conn.execute("x")

        def fine():
            conn = open_default()
            try:
                conn.execute("x")
            finally:
                conn.close()
        """})
    assert found(app) == {("app/api/views.py", 4, "PD201")}


def test_the_result_is_the_same_in_parallel(app: Path) -> None:
    write(app, {f"app/m{n}.py": "from .database import get_dbconn\n\ndef f():\n"
                                "    c = get_dbconn('a')\n    c.execute('x')\n"
                for n in range(10)})
    assert found(app, jobs=2) == found(app, jobs=1) == {
        (f"app/m{n}.py", 4, "PD201") for n in range(10)}


def test_a_same_named_function_of_an_unrelated_module_is_not_followed(tmp_path: Path) -> None:
    write(tmp_path, {"one/__init__.py": "", "one/db.py": DATABASE,
                     "two/__init__.py": "", "two/db.py": "def get_dbconn(p):\n    return p\n",
                     "two/views.py": "from .db import get_dbconn\n\ndef v():\n"
                                     "    c = get_dbconn('a')\n    c.execute('x')\n"})
    assert found(tmp_path) == set()


# ------------------------------------------------------------------ PD211 across modules


def test_pd211_only_for_a_real_generator(app: Path) -> None:
    write(app, {"app/api/views.py": """\
        from ..database import get_db, get_user_records

        def job():
            return next(get_db())

        def rows(cur):
            return next(iter(get_user_records(cur)))

        def first(cur):
            return next(get_user_records(cur))
        """})
    assert found(app) == {("app/api/views.py", 4, "PD211")}


def test_pd211_judges_names_from_outside_the_run_by_their_ending() -> None:
    src = """
    from deps import get_db, get_user_records, get_cursor_rows
    def a():
        return next(get_db())
    def b(cur):
        return next(get_user_records(cur)), next(get_cursor_rows(cur))
    """
    assert lint(src, "PD211") == [(4, "PD211")]


# ------------------------------------------------------------------ factories in one module


def test_a_factory_whose_return_sits_inside_try_with_or_if() -> None:
    src = """
    import sqlite3
    def open_a(p):
        try:
            return sqlite3.connect(p)
        except sqlite3.Error:
            return None
    def open_b(p):
        if p:
            return sqlite3.connect(p)
        return None
    def use(p):
        a = open_a(p)
        b = open_b(p)
        a.execute("x")
        b.execute("x")
    """
    assert lint(src) == [(13, "PD201"), (14, "PD201")]


def test_a_function_returning_only_the_cursor_leaks_its_connection() -> None:
    src = """
    import psycopg2
    def rows(dsn):
        conn = psycopg2.connect(dsn)
        return conn.cursor()
    def kept(dsn):
        conn = psycopg2.connect(dsn)
        return conn, conn.cursor()
    """
    assert lint(src) == [(4, "PD201")]


# ------------------------------------------------------------------ ownership


def test_session_of_an_engine_built_per_call_is_pd204() -> None:
    src = """
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker
    def per_call(url):
        engine = create_engine(url)
        with Session(engine) as s:
            return s.execute("x").all()
    def kept(url):
        engine = create_engine(url)
        return sessionmaker(bind=engine)
    """
    assert lint(src, "PD204") == [(5, "PD204")]


def test_engine_factory_of_another_module_called_per_call(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": "", "app/engines.py": """\
        import functools
        from sqlalchemy import create_engine

        def make_engine(url):
            return create_engine(url)

        @functools.lru_cache
        def cached_engine(url):
            return create_engine(url)

        _ENGINES = {}

        def memo_engine(url):
            if url not in _ENGINES:
                _ENGINES[url] = create_engine(url)
            return _ENGINES[url]
        """, "app/jobs.py": """\
        from .engines import make_engine, cached_engine, memo_engine

        engine = make_engine("sqlite://")

        def job(url):
            return make_engine(url).connect().close()

        def fine(url):
            cached_engine(url).dispose()
            memo_engine(url).dispose()
        """})
    assert {(p, n, c) for p, n, c in found(tmp_path) if c == "PD204"} == {
        ("app/jobs.py", 6, "PD204")}


def test_sessionmaker_kept_on_self_makes_sessions() -> None:
    src = """
    from sqlalchemy.orm import sessionmaker
    class Repo:
        def __init__(self, engine):
            self._factory = sessionmaker(bind=engine)
        def leak(self):
            s = self._factory()
            return s.query(1).all()
        def fine(self):
            with self._factory() as s:
                return s.query(1).all()
    """
    assert lint(src, "PD203") == [(7, "PD203")]


def test_pool_recycle_minus_one_is_not_configured() -> None:
    src = """
    from sqlalchemy import create_engine
    a = create_engine("mysql+pymysql://u@h/d", pool_recycle=-1)
    b = create_engine("mysql+pymysql://u@h/d", pool_pre_ping=False)
    c = create_engine("mysql+pymysql://u@h/d", pool_recycle=280)
    d = create_engine("mysql+pymysql://u@h/d", pool_recycle=-1, pool_pre_ping=True)
    e = create_engine("mysql+pymysql://u@h/d", pool_recycle=RECYCLE)
    """
    assert lint(src, "PD208") == [(3, "PD208"), (4, "PD208")]


def test_fixture_yielding_a_connection_it_never_closes() -> None:
    src = """
    import pytest
    from sqlalchemy import create_engine
    engine = create_engine("sqlite://")
    @pytest.fixture
    def direct():
        yield engine.connect()
    @pytest.fixture
    def named():
        c = engine.connect()
        yield c
    @pytest.fixture
    def closed():
        c = engine.connect()
        yield c
        c.close()
    @pytest.fixture
    def with_block():
        with engine.connect() as c:
            yield c
    def get_conn():
        c = engine.connect()
        yield c
    """
    assert lint(src, "PD203") == [(7, "PD203"), (10, "PD203")]


# ------------------------------------------------------------------ precision


def test_a_close_through_a_property_closes() -> None:
    src = """
    import sqlite3
    class Holder:
        def __init__(self, p):
            self._connection = sqlite3.connect(p)
        @property
        def connection(self):
            return self._connection
        def close(self):
            self.connection.close()
    class Leaky:
        def __init__(self, p):
            self._connection = sqlite3.connect(p)
        @property
        def connection(self):
            return self._connection
    """
    assert lint(src, "PD201") == [(13, "PD201")]


def test_placeholder_and_masked_passwords_are_not_pd209() -> None:
    src = """
    A = "postgresql://user:***@host/db"
    B = "postgresql://user:???@host/db"
    C = "postgresql://user:xxxx@host/db"
    D = "postgresql://user:password@localhost/db"
    E = "postgresql://user:s3cr3t@host/db"
    """
    assert lint(src, "PD209") == [(6, "PD209")]


def test_a_session_that_ends_in_commit_holds_nothing() -> None:
    src = """
    from sqlalchemy.orm import Session
    def save(engine, obj):
        session = Session(engine)
        session.add(obj)
        session.commit()
    def reused(engine, obj):
        session = Session(engine)
        session.add(obj)
        session.commit()
        return session.query(1).all()
    def closes_on_happy_path(engine, obj):
        session = Session(engine)
        session.add(obj)
        session.commit()
        session.close()
    """
    assert lint(src, "PD203") == [(8, "PD203"), (13, "PD203")]


def test_cursors_of_a_sqlite3_only_module_are_not_pd202() -> None:
    sqlite_only = """
    import sqlite3
    def rows(conn):
        cur = conn.cursor()
        return cur.execute("x").fetchall()
    """
    server = sqlite_only.replace("sqlite3", "psycopg2")
    assert lint(sqlite_only, "PD202") == []
    assert lint(server, "PD202") == [(4, "PD202")]


def test_a_close_skipped_only_by_a_failing_test_step_is_not_reported() -> None:
    src = """
    import sqlite3
    def test_rows(tmp_path):
        conn = sqlite3.connect(tmp_path / "x.db")
        assert conn.execute("select 1").fetchone() == (1,)
        conn.close()
    def test_never_closed(tmp_path):
        conn = sqlite3.connect(tmp_path / "x.db")
        assert conn.execute("select 1").fetchone() == (1,)
    def helper(p):
        conn = sqlite3.connect(p)
        conn.execute("select 1")
        conn.close()
    """
    assert lint(src, "PD201") == [(8, "PD201"), (11, "PD201")]


def test_in_memory_sqlite3_is_reported_only_when_never_closed() -> None:
    src = """
    import sqlite3
    def happy_path_only():
        conn = sqlite3.connect(":memory:")
        conn.execute("select 1")
        conn.close()
    def never_closed():
        conn = sqlite3.connect(":memory:")
        conn.execute("select 1")
    def on_file(p):
        conn = sqlite3.connect("app.db")
        conn.execute("select 1")
        conn.close()
    """
    assert lint(src, "PD201") == [(8, "PD201"), (11, "PD201")]


def test_fixture_teardown_and_test_helpers_are_test_code(tmp_path: Path) -> None:
    src = """
    import pytest, sqlite3
    @pytest.fixture
    def conn(tmp_path):
        c = sqlite3.connect(tmp_path / "x.db")
        yield c
        c.execute("drop table t")
        c.close()
    def make_db(path):
        c = sqlite3.connect(path)
        c.execute("create table t (x)")
        c.close()
    """
    write(tmp_path, {"conftest.py": src, "helpers.py": src})
    assert found(tmp_path) == {("helpers.py", 10, "PD201")}


def test_a_connection_handed_to_a_thread_is_handed_over() -> None:
    src = """
    import threading, pymysql
    def run(query, work, ev):
        try:
            conn = pymysql.connect(host="db")
            tid = conn.thread_id()
            t = threading.Thread(target=work, args=(query, conn))
            t.start()
            while not ev.wait(1):
                pass
        except KeyboardInterrupt:
            cancel(tid)
            raise
    def kept(query, work):
        conn = pymysql.connect(host="db")
        t = threading.Thread(target=work, args=(query,))
        t.start()
    """
    assert lint(src, "PD201") == [(15, "PD201")]


def test_urls_in_test_code_are_test_data_unless_they_connect(tmp_path: Path) -> None:
    src = """
    import psycopg2
    from sqlalchemy import create_engine
    def test_parse():
        assert parse("postgres://bar:foo@baz.com:2543/db").password == "foo"
    def test_connects():
        engine = create_engine("postgresql://app:hunter2@db/app")
        conn = psycopg2.connect(host="db", password="hunter2")
        conn.close()
        engine.dispose()
    """
    write(tmp_path, {"test_urls.py": src, "urls.py": src})
    assert {(p, n) for p, n, c in found(tmp_path) if c == "PD209"} == {
        ("test_urls.py", 7), ("test_urls.py", 8), ("urls.py", 5), ("urls.py", 7), ("urls.py", 8)}


def test_modules_of_the_same_name_are_not_guessed(tmp_path: Path) -> None:
    write(tmp_path, {"a/db.py": DATABASE, "b/db.py": "def get_dbconn(p):\n    return p\n",
                     "b/job.py": "from db import get_dbconn\n\ndef v():\n"
                                 "    c = get_dbconn('a')\n    c.execute('x')\n"})
    assert {hit for hit in found(tmp_path) if hit[0] == "b/job.py"} == set()
