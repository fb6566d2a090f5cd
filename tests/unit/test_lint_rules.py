"""Rule behaviour on small sources: what each rule reports, where, and what it must not report."""

from __future__ import annotations

import textwrap

import pytest

from pooldoctor.lint import lint_source


def lint(src: str, *codes: str) -> list[tuple[int, str]]:
    issues = lint_source(textwrap.dedent(src), "m.py", codes or None) if codes else \
        lint_source(textwrap.dedent(src), "m.py")
    return [(i.line, i.code) for i in issues]


def messages(src: str) -> list[str]:
    return [i.message for i in lint_source(textwrap.dedent(src), "m.py")]


# ------------------------------------------------------------------ PD201 flow


def test_reports_at_the_line_that_opens_with_a_column() -> None:
    issues = lint_source("import sqlite3\ndef f(p):\n    conn = sqlite3.connect(p)\n", "m.py")
    assert [(i.code, i.line, i.column, i.function) for i in issues] == [
        ("PD201", 3, 12, "f")]
    assert "never closed" in issues[0].message


def test_column_counts_characters_not_bytes() -> None:
    src = "import sqlite3\ndef f(p):\n    é = 1; conn = sqlite3.connect(p)\n"
    (issue,) = lint_source(src, "m.py")
    assert issue.column == len("    é = 1; conn = ") + 1


@pytest.mark.parametrize("body, fragment", [
    ("conn = sqlite3.connect(p)\nif p:\n    return 1\nconn.close()", "returns at line 5"),
    ("conn = sqlite3.connect(p)\nconn.execute('x')\nconn.close()",
     "closed only on the happy path: an exception at line 4 skips the close at line 5"),
    ("conn = sqlite3.connect(p)\nif not p:\n    raise ValueError(p)\nconn.close()",
     "the raise at line 5"),
    ("conn = sqlite3.connect(p)\nconn = sqlite3.connect(p + '2')\nconn.close()",
     "replaced at line 4"),
    ("for x in p:\n    conn = sqlite3.connect(x)\n", "opened again at line 4 (in a loop)"),
    ("conn = sqlite3.connect(p)\ndel conn", "deleted at line 4 before it is closed"),
    ("conn = sqlite3.connect(p)\nconn.execute('x')\nif p:\n    conn.close()",
     "not closed on every path"),
])
def test_leak_messages_name_the_path(body: str, fragment: str) -> None:
    src = "import sqlite3\ndef f(p):\n" + textwrap.indent(body, "    ") + "\n"
    (msg,) = messages(src)
    assert fragment in msg


@pytest.mark.parametrize("body", [
    "with contextlib.closing(sqlite3.connect(p)) as conn:\n    conn.execute('x')",
    "conn = sqlite3.connect(p)\ntry:\n    conn.execute('x')\nfinally:\n    conn.close()",
    "conn = sqlite3.connect(p)\nreturn conn",
    "conn = sqlite3.connect(p)\nreturn conn, 1",
    "conn = sqlite3.connect(p)\nreturn Wrapper(conn)",
    "conn = sqlite3.connect(p)\nself.pool.append(conn)",
    "conn = sqlite3.connect(p)\natexit.register(conn.close)",
    "conn = sqlite3.connect(p)\nconn.close()",
    "with contextlib.ExitStack() as st:\n    conn = st.enter_context(contextlib.closing("
    "sqlite3.connect(p)))\n    conn.execute('x')",
    "conn = None\ntry:\n    conn = sqlite3.connect(p)\n    conn.execute('x')\nfinally:\n"
    "    if conn is not None:\n        conn.close()",
    "conn = sqlite3.connect(p)\ntry:\n    conn.execute('x')\nexcept BaseException:\n"
    "    conn.close()\n    raise\nelse:\n    conn.close()",
    "conn = sqlite3.connect(p)\ntry:\n    return conn.execute('x')\nfinally:\n    conn.close()",
    "global conn\nconn = sqlite3.connect(p)",
    "conn = sqlite3.connect(p)\ndef cleanup():\n    conn.close()\nreturn cleanup",
    "conn = sqlite3.connect(p)\nwhile True:\n    try:\n        conn.execute('x')\n"
    "    except Exception:\n        break\nconn.close()",
])
def test_closed_or_handed_over_is_silent(body: str) -> None:
    src = "import atexit, contextlib, sqlite3\ndef f(self, p):\n" + textwrap.indent(body, "    ")
    assert lint(src + "\n") == []


def test_with_closes_drivers_that_close_on_exit_but_not_sqlite3() -> None:
    src = """
    import pymysql, sqlite3, psycopg2
    def a():
        with pymysql.connect() as c:
            c.ping()
    def b():
        with sqlite3.connect("x") as c:
            c.execute("x")
    def c():
        with psycopg2.connect("") as c:
            pass
        c.close()
    """
    assert lint(src) == [(7, "PD201")]


def test_aliases_and_from_imports_are_followed() -> None:
    src = """
    import sqlite3 as lite
    from pymysql import connect as my_connect
    import mysql.connector as mc
    def a():
        x = lite.connect("p")
        y = my_connect()
        z = mc.connect()
        return 1
    """
    assert lint(src) == [(6, "PD201"), (7, "PD201"), (8, "PD201")]


def test_a_local_function_named_connect_is_not_a_driver() -> None:
    src = """
    def connect():
        return object()
    def f():
        c = connect()
        c.x()
    """
    assert lint(src) == []


def test_module_functions_returning_a_connection_are_followed() -> None:
    src = """
    import psycopg2
    def get_conn():
        conn = psycopg2.connect("")
        conn.autocommit = True
        return conn
    def user():
        c = get_conn()
        c.cursor().execute("x")
    """
    assert lint(src) == [(8, "PD201")]
    assert "from get_conn()" in messages(src)[0]


def test_self_attribute_needs_a_closing_method() -> None:
    src = """
    import pymysql
    class A:
        def __init__(self):
            self.conn = pymysql.connect()
    class B:
        def open(self):
            conn = pymysql.connect()
            self.conn = conn
        def shutdown(self):
            self.conn.close()
    class C(SomeBase):
        def __init__(self):
            self.conn = pymysql.connect()
    """
    assert lint(src) == [(5, "PD201")]


def test_pytest_fixture_teardown_after_yield_is_closed() -> None:
    src = """
    import pytest, sqlite3
    @pytest.fixture
    def conn():
        c = sqlite3.connect(":memory:")
        yield c
        c.close()
    def plain():
        c = sqlite3.connect("app.db")
        yield c
        c.close()
    """
    assert lint(src) == [(9, "PD201")]


# ------------------------------------------------------------------ noqa, select


def test_noqa_specific_and_bare() -> None:
    src = """
    import sqlite3
    def f():
        a = sqlite3.connect("x")  # noqa: PD201
        b = sqlite3.connect("x")  # noqa
        c = sqlite3.connect("x")  # noqa: E501
        d = sqlite3.connect("x")  # NOQA:PD202,PD201
    """
    assert lint(src) == [(6, "PD201")]


def test_codes_limit_what_is_reported() -> None:
    src = 'import sqlite3\nU = "postgresql://u:pw@h/db"\ndef f():\n    c = sqlite3.connect("x")\n'
    assert lint(src, "PD209") == [(2, "PD209")]
    assert lint(src, "PD201") == [(4, "PD201")]


# ------------------------------------------------------------------ PD202 / PD203


def test_cursor_of_a_local_connection_is_not_pd202() -> None:
    src = """
    import psycopg2
    def f(conn):
        cur = conn.cursor()
        return cur.fetchall()
    def g(p):
        conn = psycopg2.connect(p)
        try:
            cur = conn.cursor()
            cur.execute("x")
        finally:
            conn.close()
    """
    assert lint(src) == [(4, "PD202")]


def test_cursors_of_sqlite_bindings_are_not_pd202() -> None:
    src = """
    import apsw
    def commit(db):
        curs = db.cursor()
        curs.execute("commit;")
    """
    assert lint(src) == []
    assert lint(src.replace("import apsw", "import apsw, psycopg2")) == [(4, "PD202")]


def test_engine_connect_needs_an_engine_receiver() -> None:
    src = """
    def f(engine, socket, db):
        a = engine.connect()
        b = socket.connect()
        c = db.engine.connect()
        d = db.connect(("h", 1))
        return 1
    """
    assert lint(src) == [(3, "PD203"), (5, "PD203")]


def test_requests_session_is_not_an_orm_session() -> None:
    src = """
    from requests import Session
    def f():
        s = Session()
        return s.get("x")
    """
    assert lint(src) == []


# ------------------------------------------------------------------ PD204 .. PD211


def test_pd204_engine_per_call_and_not_in_factories() -> None:
    src = """
    from sqlalchemy import create_engine
    def handler(url):
        e = create_engine(url)
        with e.connect() as c:
            return c.execute("x")
    def factory(url):
        return create_engine(url)
    ENGINE = factory("sqlite://")
    """
    assert lint(src, "PD204") == [(4, "PD204")]


def test_pd209_never_prints_the_password() -> None:
    (msg,) = messages('URL = "mysql+pymysql://app:Sup3rS3cret@db/app"\n')
    assert "Sup3rS3cret" not in msg and "***" in msg


def test_pd209_keyword_password_only_in_database_calls() -> None:
    src = """
    import pymysql
    a = pymysql.connect(password="hunter2")
    b = User(password="hunter2")
    """
    assert lint(src) == [(3, "PD209")]


def test_pd210_blocking_call_inside_begin_only() -> None:
    src = """
    import time
    def f(engine):
        with engine.begin() as conn:
            conn.execute("x")
            time.sleep(1)
        time.sleep(1)
    """
    assert lint(src) == [(6, "PD210")]


def test_pd211_generator_kept_and_closed_is_silent() -> None:
    src = """
    def get_db():
        db = object()
        try:
            yield db
        finally:
            pass
    def bad():
        return next(get_db())
    def good():
        g = get_db()
        try:
            return next(g)
        finally:
            g.close()
    """
    assert lint(src) == [(9, "PD211")]


def test_deeply_nested_code_does_not_crash() -> None:
    src = "x = " + "(" * 50 + "1" + ")" * 50 + "\n"
    assert lint(src) == []
