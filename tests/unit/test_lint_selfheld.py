"""Connections kept on self through an instance kept on self (selfheld.py): the shape of
hotosm/raw-data-api's Users, and the classes that do close what they keep."""

from __future__ import annotations

from pathlib import Path

from pooldoctor.lint import lint_paths, lint_source

DATABASE = (
    "from psycopg2 import connect\n\n"
    "class Database:\n"
    "    def __init__(self, params):\n        self.params = params\n\n"
    "    def connect(self):\n"
    "        try:\n"
    "            self.conn = connect(**self.params)\n"
    "            self.cur = self.conn.cursor()\n"
    "            return self.conn, self.cur\n"
    "        except Exception:\n"
    "            self.conn = None\n\n"
    "    def close_conn(self):\n        self.cur.close()\n        self.conn.close()\n\n")

USERS = (
    "class Users:\n"
    "    def __init__(self):\n"
    "        self.d_b = Database({})\n"
    "        self.con, self.cur = self.d_b.connect()\n\n"
    "    def read_user(self, osm_id):\n"
    "        self.cur.execute('SELECT 1')\n"
    "        return self.cur.fetchall()\n")


def lines(source: str) -> list[tuple[int, str]]:
    return [(i.line, i.code) for i in lint_source(source)]


def test_users_keeps_the_connection_of_its_database_and_never_closes_it() -> None:
    found = lint_source(DATABASE + USERS + "\nauth = Users()\n")
    assert [(i.line, i.code) for i in found] == [(22, "PD201")]
    assert "self.con from Database.connect()" in found[0].message
    assert "class Users (nor is self.d_b)" in found[0].message


def test_closing_through_the_holder_a_lifecycle_method_or_a_helper_is_silent() -> None:
    fixed = USERS.replace("return self.cur.fetchall()",
                          "rows = self.cur.fetchall()\n        self.d_b.close_conn()\n"
                          "        return rows")
    exit_ = USERS + "\n    def __exit__(self, *exc):\n        self.con.close()\n"
    helper = USERS.replace("return self.cur.fetchall()",
                           "rows = self.cur.fetchall()\n        close_con(self.con)\n"
                           "        return rows")
    for body in (fixed, exit_, helper):
        assert lines(DATABASE + body) == []


def test_a_local_instance_owns_its_connection() -> None:
    body = ("def read():\n    db = Database({})\n    con, cur = db.connect()\n"
            "    cur.execute('SELECT 1')\n    rows = cur.fetchall()\n    db.close_conn()\n"
            "    return rows\n")
    assert lines(DATABASE + body) == []


def test_the_class_of_another_module_of_the_run(tmp_path: Path) -> None:
    pkg = tmp_path / "rda"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "db.py").write_text(DATABASE)
    (pkg / "auth.py").write_text("from .db import Database\n\n\n" + USERS)
    run = lint_paths([str(pkg)])
    assert [(Path(p).name, i.line, i.code) for p, i in run.issues()] == [("auth.py", 7, "PD201")]
    alone = lint_paths([str(pkg / "auth.py")])  # a one-file run knows nothing of Database
    assert list(alone.issues()) == []
