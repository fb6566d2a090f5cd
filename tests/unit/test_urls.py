"""``pooldoctor.urls`` parses database URLs without SQLAlchemy: the same parts as SQLAlchemy's
``make_url`` for every URL it accepts, ``postgres://`` read as PostgreSQL, and one clear line
(the password masked) for a password typed with a raw ``@``."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url

from pooldoctor.urls import BadURL, DatabaseURL, mask_url, parse_url


def parts(u: URL | DatabaseURL) -> tuple[object, ...]:
    query = {k: v if isinstance(v, str) else tuple(v) for k, v in u.query.items()}
    return (u.drivername, u.username, u.password, u.host, u.port, u.database, query)


@pytest.mark.parametrize("text", [
    "postgresql+psycopg://app:s3cr%40t@db:5432/app",
    "mysql+pymysql://root:pa:ss@localhost/test?charset=utf8mb4",
    "postgresql://u:pa/ss@h/db",  # '/' after the user's ':' is part of the password
    "sqlite://",
    "sqlite:///:memory:",
    "sqlite:////tmp/a@b.db",  # no user part: '@' in a file name is fine
    "sqlite:///relative/path.db?mode=ro&uri=true",
    "postgresql://u:pw@[::1]:5432/db?a=1&a=2&b=3",
    "postgresql://@h/db",
    "postgresql://u@h",
    "mysql://h:3306",
    "oracle+oracledb://u:%3A%40%2F@h:1521/?service_name=x",
])
def test_the_same_parts_as_sqlalchemy(text: str) -> None:
    u = parse_url(text)
    assert parts(u) == parts(make_url(text))
    assert u.render_as_string(hide_password=False) == make_url(text).render_as_string(False)
    assert mask_url(text) == make_url(text).render_as_string(hide_password=True)
    assert parts(u.to_sqlalchemy()) == parts(make_url(text))


_word = st.text(alphabet=string.ascii_letters + string.digits + "._-%@:/é", max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["postgresql", "mysql+pymysql", "sqlite", "x"]), _word, _word,
       st.sampled_from(["db", "127.0.0.1", "[::1]", ""]), st.one_of(st.none(),
                                                                    st.integers(1, 65535)))
def test_created_urls_round_trip(scheme: str, user: str, pw: str, host: str,
                                 port: int | None) -> None:
    url = URL.create(scheme, username=user or None, password=pw or None,
                     host=host.strip("[]") or None, port=port, database="app")
    text = url.render_as_string(hide_password=False)
    assert parts(parse_url(text)) == parts(make_url(text))
    assert parts(parse_url(url)) == parts(url)  # a SQLAlchemy URL object is taken as is


@pytest.mark.parametrize("text, expected", [
    ("postgres://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgres+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_postgres_scheme_is_postgresql(text: str, expected: str) -> None:
    u = parse_url(text)
    assert u.get_backend_name() == "postgresql"
    assert mask_url(text) == expected
    assert u.to_sqlalchemy().get_backend_name() == "postgresql"


@pytest.mark.parametrize("text", [
    "mysql+pymysql://root:p@ss@127.0.0.1/test",
    "mysql+pymysql://root:p@ss:w@127.0.0.1/test",  # was: invalid literal for int() ... 'w@...'
    "postgresql://app:s3cr@t/w@db/app",  # was accepted: host 't', database 'w@db/app'
    "postgresql://app:p@ss?x@db/app",
    "postgresql://ap/p:secret@db/app",  # '/' in the user
])
def test_raw_at_in_password_says_percent_encode(text: str) -> None:
    with pytest.raises(BadURL) as info:
        parse_url(text)
    message = str(info.value)
    assert "percent-encoded" in message and "%40" in message
    assert "\n" not in message
    pw = text.split("://")[1].rpartition("@")[0].partition(":")[2]
    assert pw not in message and pw not in mask_url(text)
    assert "***" in message


def test_bad_port_and_no_scheme() -> None:
    with pytest.raises(BadURL, match=r"port 'abc' is not a number"):
        parse_url("postgresql://db:abc/app")
    with pytest.raises(BadURL, match=r"expected dialect\+driver://.*no '://'"):
        parse_url("db.example.org/app")


def test_parsing_urls_imports_no_sqlalchemy() -> None:
    import subprocess
    import sys

    code = ("import sys; from pooldoctor.urls import parse_url, mask_url; "
            "u = parse_url('postgres://u:p%40w@h:5/d?x=1'); mask_url(u); mask_url('x://u:p@h'); "
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip() == "[]"
