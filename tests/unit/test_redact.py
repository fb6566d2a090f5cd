"""Redaction of SQL literals: a table of tricky statements, and what must stay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pooldoctor.audit.redact import redact, redact_message

CASES = [
    # (dialect, sql, expected)
    ("postgresql", "SELECT * FROM t1 WHERE col_2 = 'it''s'", "SELECT * FROM t1 WHERE col_2 = ?"),
    (
        "postgresql",
        'SELECT "x9", "a""b" FROM t WHERE "x9" = 42',
        'SELECT "x9", "a""b" FROM t WHERE "x9" = ?',
    ),
    ("postgresql", "SELECT 'a\\' , 2", "SELECT ? , ?"),  # standard strings: \ is not an escape
    ("postgresql", "SELECT E'a\\'b -- x', 1", "SELECT ?, ?"),
    ("postgresql", "SELECT e'\\\\', 1", "SELECT ?, ?"),
    ("postgresql", "SELECT $$it's -- not a comment$$ AS body", "SELECT ? AS body"),
    ("postgresql", "SELECT $fn$ a $$ b 'c' $fn$, 3", "SELECT ?, ?"),
    (
        "postgresql",
        "SELECT * FROM t WHERE id = $1 AND n = $2",
        "SELECT * FROM t WHERE id = $1 AND n = $2",
    ),
    ("postgresql", "SELECT x::int, y::text FROM t", "SELECT x::int, y::text FROM t"),
    ("postgresql", "SELECT U&'d\\0061t' , N'abc', B'0101', X'1F'", "SELECT ? , ?, ?, ?"),
    ("postgresql", "SELECT ARRAY[1, 2, 3] && ids", "SELECT ARRAY[?] && ids"),
    (
        "mysql",
        "SELECT `y7`, a FROM t WHERE b = 'it\\'s' AND c = 0x1F",
        "SELECT `y7`, a FROM t WHERE b = ? AND c = ?",
    ),
    ("mysql", 'SELECT * FROM t WHERE name = "bob \\" smith"', "SELECT * FROM t WHERE name = ?"),
    ("mysql", "SELECT 1 # trailing 'secret'\nFROM t", "SELECT ? FROM t"),
    (
        "mysql",
        "SELECT _utf8mb4'abc' COLLATE utf8mb4_bin, b'0101', 0b11, x'ff'",
        "SELECT ? COLLATE utf8mb4_bin, ?, ?, ?",
    ),
    ("mysql", "SELECT `a``1` FROM `t 2`", "SELECT `a``1` FROM `t 2`"),
    (
        "mysql",
        "/*+ MAX_EXECUTION_TIME(1000) */ SELECT /*!50100 SQL_NO_CACHE */ 1",
        "/*+ MAX_EXECUTION_TIME(?) */ SELECT /*!50100 SQL_NO_CACHE */ ?",
    ),
    ("sqlite", "select * from t where id in (1, 2, 3)", "select * from t where id in (?)"),
    (
        "sqlite",
        "select * from t where id IN (?, ?, ?) and k in (:a, :b)",
        "select * from t where id IN (?) and k in (?)",
    ),
    (
        "postgresql",
        "SELECT * FROM t WHERE id IN (%(id_1_1)s, %(id_1_2)s)",
        "SELECT * FROM t WHERE id IN (?)",
    ),
    (
        "postgresql",
        "SELECT * FROM t WHERE a = %s AND b = %(b)s AND c = :c",
        "SELECT * FROM t WHERE a = %s AND b = %(b)s AND c = :c",
    ),
    (
        "sqlite",
        "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z')",
        "INSERT INTO t (a, b) VALUES (?, ?), ...",
    ),
    ("sqlite", "SELECT 3.14, .5, 1e-3, 2E+10, -7", "SELECT ?, ?, ?, ?, -?"),
    ("sqlite", "SELECT t1.c2, tbl_3, x9y FROM t1", "SELECT t1.c2, tbl_3, x9y FROM t1"),
    (
        "mysql",
        "SELECT 1abc FROM t",
        "SELECT 1abc FROM t",
    ),  # MySQL identifiers may start with digits
    ("sqlite", "SELECT NULL, TRUE, FALSE", "SELECT NULL, TRUE, FALSE"),
    (
        "sqlite",
        "SELECT 1 -- 'secret' comment\n, 2 /* another 'one' */ FROM t",
        "SELECT ? , ? FROM t",
    ),
    ("sqlite", "SELECT 'a -- b', '/* c */', 'd''e' FROM t", "SELECT ?, ?, ? FROM t"),
    ("sqlite", "SELECT 'unterminated", "SELECT ?"),
    ("sqlite", "SELECT   a,\n\t b   FROM t", "SELECT a, b FROM t"),
    (
        "sqlite",
        "UPDATE users SET password = 'hunter2' WHERE email = 'a@b.c'",
        "UPDATE users SET password = ? WHERE email = ?",
    ),
]


@pytest.mark.parametrize(("dialect", "sql", "expected"), CASES)
def test_redact_table(dialect: str, sql: str, expected: str) -> None:
    assert redact(sql, dialect) == expected


def test_double_quotes_are_identifiers_outside_mysql() -> None:
    assert redact('SELECT "secret"', "postgresql") == 'SELECT "secret"'
    assert redact('SELECT "secret"', "sqlite") == 'SELECT "secret"'
    assert redact('SELECT "secret"', "mysql") == "SELECT ?"


def test_dollar_quoting_only_on_postgresql() -> None:
    # on SQLite $$ is no quote: the words between stay, literals still go
    assert redact("SELECT $1, 'x'", "sqlite") == "SELECT $1, ?"
    assert "secret" not in redact("SELECT $$secret$$", "postgresql")


def test_backslash_is_an_escape_only_where_the_dialect_says() -> None:
    # PostgreSQL: 'a\' ends at its second quote, so 1 is a number of its own
    assert redact("SELECT 'a\\', 1", "postgresql") == "SELECT ?, ?"
    # MySQL: \' is an escaped quote, the string runs on (unterminated: redacted to the end)
    assert redact("SELECT 'a\\', 1", "mysql") == "SELECT ?"


def test_mysql_double_dash_needs_a_space() -> None:
    assert redact("SELECT 1--1, 'x'", "mysql") == "SELECT ?--?, ?"
    assert redact("SELECT 1 -- 'x'\nFROM t", "mysql") == "SELECT ? FROM t"
    assert redact("SELECT 1--1, 'x'", "postgresql") == "SELECT ?"


def test_dialect_aliases() -> None:
    assert redact("SELECT 'a\\', 1", "mariadb") == "SELECT ?"
    assert redact("SELECT $$x$$", "postgresql+psycopg") == "SELECT ?"


def test_rows_that_differ_are_not_collapsed() -> None:
    assert (
        redact("INSERT INTO t VALUES (1, 2), (3)", "sqlite") == "INSERT INTO t VALUES (?, ?), (?)"
    )


def test_in_with_a_subquery_is_kept() -> None:
    sql = "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE k = 5)"
    assert redact(sql, "sqlite") == "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE k = ?)"


_SECRET = st.text(alphabet=st.sampled_from(list("abcXYZ019'\"\\-/*$ \n;")), min_size=0, max_size=30)


def _quote(value: str, dialect: str) -> str:
    if dialect == "mysql":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + value.replace("'", "''") + "'"


@settings(max_examples=300, deadline=None)
@given(value=_SECRET, dialect=st.sampled_from(["postgresql", "mysql", "sqlite"]))
def test_a_quoted_value_never_survives(value: str, dialect: str) -> None:
    marker = "QQsecretQQ" + value
    sql = f"SELECT a1 FROM t2 WHERE c = {_quote(marker, dialect)} AND d = 7"
    out = redact(sql, dialect)
    assert "QQsecretQQ" not in out
    assert out == "SELECT a1 FROM t2 WHERE c = ? AND d = ?"


@settings(max_examples=200, deadline=None)
@given(tag=st.sampled_from(["", "fn", "x_1"]), value=_SECRET)
def test_a_dollar_quoted_value_never_survives(tag: str, value: str) -> None:
    value = value.replace("$", "")  # a $ next to the closing tag would end the body early
    out = redact(f"SELECT ${tag}$QQsecretQQ{value}${tag}$, 1", "postgresql")
    assert out == "SELECT ?, ?"


def test_error_messages_keep_names_and_lose_values() -> None:
    assert (
        redact_message(
            "Duplicate entry 'bob@x.org' for key 'users.email'",
            "INSERT INTO users (email) VALUES (%s)",
        )
        == "Duplicate entry ? for key 'users.email'"
    )
    pg = (
        'duplicate key value violates unique constraint "users_email_key"\n'
        "DETAIL:  Key (email)=(bob@x.org) already exists."
    )
    assert "bob" not in redact_message(pg, "INSERT INTO users (email) VALUES (%(email)s)")
    assert redact_message("Table 'test.nope' doesn't exist", "SELECT * FROM nope") == (
        "Table 'test.nope' doesn't exist"
    )
    assert redact_message('invalid input syntax for type integer: "abc"', "SELECT ?") == (
        "invalid input syntax for type integer: ?"
    )
