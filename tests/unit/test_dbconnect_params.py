"""``:name`` query parameters become the drivers' ``%(name)s``; nothing else in the SQL moves."""

from __future__ import annotations

import pytest

from pooldoctor.dbconnect import pyformat


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT 1 WHERE pid = :pid", "SELECT 1 WHERE pid = %(pid)s"),
    ("WHERE pid = :pid AND backend_start::text = :started",
     "WHERE pid = %(pid)s AND backend_start::text = %(started)s"),
    ("SELECT '100%' WHERE a = :a", "SELECT '100%%' WHERE a = %(a)s"),
    ("SELECT x::int, y", "SELECT x::int, y"),  # casts are not parameters
    ("SELECT 'a:b', ts > now()", "SELECT 'a:b', ts > now()"),  # ':' inside a word stays
])
def test_pyformat(sql: str, expected: str) -> None:
    assert pyformat(sql) == expected



def test_mysql_connector_timeouts_follow_what_the_driver_knows() -> None:
    """Whole seconds, rounded up; read/write timeouts only when the installed driver accepts
    them (mysql-connector before 9.3 refuses unknown arguments)."""
    from pooldoctor.dbconnect import timeout_args

    assert timeout_args("mysqlconnector", 2.0) == {"connection_timeout": 2}  # driver unknown
    driver = pytest.importorskip("mysql.connector")
    knows = "read_timeout" in driver.constants.DEFAULT_CONFIGURATION
    args = timeout_args("mysqlconnector", 2.5, driver)
    assert args["connection_timeout"] == 3
    assert args.get("read_timeout") == args.get("write_timeout") == (3 if knows else None)
    assert timeout_args("mysqlconnector", 0.2, driver)["connection_timeout"] == 1
