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
