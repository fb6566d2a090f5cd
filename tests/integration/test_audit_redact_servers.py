"""The redaction reads tricky SQL the way the server does: each literal the server sees as a
column becomes exactly one ``?`` (checked against PostgreSQL's and MariaDB's own parsers)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pooldoctor.audit.redact import redact

PG = [
    "SELECT 'a\\' , 2",  # standard strings: the backslash is a character
    "SELECT E'a\\'b', 1",
    "SELECT e'\\\\', 'x''y'",
    "SELECT $$it's -- no comment$$, $t$ x $$ y 'z' $t$, 3",
    "SELECT 1 -- 'x', 2\n, 3",
    "SELECT /* 'a', */ 1, 2",
    "SELECT U&'d\\0061t', B'01', X'1F', N'abc'",
    "SELECT 1.5e3, .5, 0.25, 7",
    "SELECT 1--1\n, 2",
]
MYSQL = [
    "SELECT 'a\\'b', 2",
    "SELECT \"x\\\"y\", 'z'",
    "SELECT 1 # 'c', 2\n, 3",
    "SELECT 1 -- 'x', 2\n, 3",
    "SELECT _utf8mb4'abc', x'41', b'01', 0x42",
    "SELECT /*!50000 1, */ 2",
    "SELECT 'it''s', \"say \"\"hi\"\"\"",
    "SELECT 1.5e3, .5, 0b101, 7",
]


def columns(url: str, sql: str) -> int:
    e = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with e.connect() as c:
            return len(c.exec_driver_sql(sql).keys())
    finally:
        e.dispose()


@pytest.mark.parametrize("sql", PG)
def test_postgresql_reads_the_same_literals(pg_url: str, sql: str) -> None:
    out = redact(sql, "postgresql")
    assert out.count("?") == columns(pg_url, sql), out


def test_mariadb_double_dash_without_space_is_no_comment(mysql_url: str) -> None:
    e = sa.create_engine(mysql_url, poolclass=sa.pool.NullPool)
    with e.connect() as c:
        assert c.exec_driver_sql("SELECT 2--1").scalar() == 3  # 2 - (-1)
    e.dispose()
    assert redact("SELECT 2--1", "mysql") == "SELECT ?--?"


@pytest.mark.parametrize("sql", MYSQL)
def test_mariadb_reads_the_same_literals(mysql_url: str, sql: str) -> None:
    out = redact(sql, "mysql")
    assert out.count("?") == columns(mysql_url, sql), out
