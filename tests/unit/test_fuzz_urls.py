"""Property tests of URL masking: whatever the user, password and host, no part of the password
comes back from ``mask_url``, ``mask_text`` or a ``BadURL`` message.

Passwords carry three markers (start, middle, end) so that a partial leak is caught too; they
may hold ``@ : / %``, quotes and any unicode letter. Whitespace is left out on purpose: in free
text a password with a space cannot be told from the words around it (``mask_text`` takes
known secrets for that case), and a URL renders a space unencoded. For the same reason a raw
``"`` typed into a URL is only checked through ``mask_url`` (in free text it ends the URL, as
it does in JSON).
"""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from pooldoctor.urls import BadURL, mask_text, mask_url, parse_url

MARKS = ("PWZ", "QMK", "ZWP")
SPECIAL = "@:/%?#&=+;,'\"\\[]{}()!$*~"

_chars = st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"),
                       blacklist_characters="PWZQMK")
_part = st.text(alphabet=st.one_of(_chars, st.sampled_from(SPECIAL)), max_size=8)
password = st.builds(lambda a, b: f"PWZ{a}QMK{b}ZWP", _part, _part)
user = st.text(alphabet=st.one_of(st.sampled_from(string.ascii_lowercase + "._-0123456789"),
                                  st.sampled_from("@:/%é")), min_size=1, max_size=10)
host = st.sampled_from(["127.0.0.1", "db", "db.example.org", "[::1]", "xn--bcher-kva.example",
                        "h-1"])
scheme = st.sampled_from(["postgresql", "postgresql+psycopg", "mysql+pymysql", "mariadb",
                          "sqlite", "oracle+oracledb", "x"])
port = st.one_of(st.none(), st.integers(1, 65535))


def clean(text: str) -> bool:
    return not any(m in text for m in MARKS)


@settings(max_examples=300, deadline=None)
@given(scheme, user, password, host, port)
def test_a_rendered_url_never_shows_its_password(s: str, u: str, pw: str, h: str,
                                                 p: int | None) -> None:
    url = URL.create(s, username=u, password=pw, host=h.strip("[]"), port=p, database="app")
    text = url.render_as_string(hide_password=False)
    assert not clean(text)  # the markers are there to be found
    assert clean(mask_url(url))
    assert clean(mask_url(text))
    for around in ("{}", "cannot connect to {}: refused", "'{}'", '{{"url": "{}", "n": 1}}',
                   "url={} next", "({})"):
        assert clean(mask_text(around.format(text))), around


@settings(max_examples=300, deadline=None)
@given(scheme, st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6), password, host)
def test_a_raw_url_as_typed_never_shows_its_password(s: str, u: str, pw: str, h: str) -> None:
    """Typed without percent-encoding, '@' and '/' and ':' included (a common mistake)."""
    text = f"{s}://{u}:{pw}@{h}/app"
    assert clean(mask_url(text))
    if '"' not in pw:  # in free text a raw '"' ends the URL (it is JSON's quote)
        assert clean(mask_text(f"bad {text} here"))
    try:
        parse_url(text)
    except BadURL as e:
        assert clean(str(e))


@settings(max_examples=200, deadline=None)
@given(password, st.sampled_from(["password", "PASSWORD", "passwd", "pwd"]),
       st.sampled_from(["{k}={v}", "{k} = {v}", "{k}='{v}'", '{k}="{v}"', "'{k}': '{v}'",
                        '"{k}": "{v}"', "?{k}={v}&x=1"]))
def test_key_value_passwords_are_masked(pw: str, key: str, form: str) -> None:
    pw = pw.replace("'", "").replace('"', "")  # a quote ends a value, quoted or not
    if "&" in form:
        pw = pw.replace("&", "")  # in a query string '&' ends the value
    text = "host=db " + form.format(k=key, v=pw) + " dbname=app"
    assert clean(mask_text(text)), text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), password)
def test_known_secrets_are_masked_anywhere(noise: str, pw: str) -> None:
    pw = pw + " with space"
    assert clean(mask_text(f"{noise}{pw}{noise}", (pw,)))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_masking_never_fails_and_is_idempotent(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once
    assert isinstance(mask_url(text), str)
