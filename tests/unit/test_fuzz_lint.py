"""Property tests of the lint checker beyond ``test_lint_fuzz.py`` (which checks the PD201
flow on generated functions): on generated modules that touch every rule, and on arbitrary
text, the checker never crashes, never reports a line or column outside the file, and
``--select`` only ever narrows the result.
"""

from __future__ import annotations

import ast
import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pooldoctor.lint import RULE_CODES, Issue, lint_source
from pooldoctor.lint.checker import check_source

HEADER = """import functools, sqlite3, time, requests, psycopg2, pymysql
import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session, sessionmaker
"""

# statements that touch every rule (PD201-PD211), good and bad
SNIPPETS = [
    "conn = sqlite3.connect(p)",
    "conn.close()",
    "cur = conn.cursor()",
    "cur.execute('SELECT 1')",
    "cur.close()",
    "c = psycopg2.connect(dsn)",
    "m = pymysql.connect(host='h', password='pw1')",
    "engine = sa.create_engine('mysql+pymysql://u:pw@h/d', max_overflow=-1)",
    "engine = sa.create_engine(url, pool_recycle=3600, pool_pre_ping=True)",
    "s = Session(engine)",
    "s.close()",
    "sc = engine.connect()",
    "sc.close()",
    "Scoped = scoped_session(sessionmaker())",
    "Scoped.remove()",
    "db = next(get_db())",
    "time.sleep(1)",
    "requests.get(u)",
    "return conn",
    "yield s",
    "pass",
    "x = [sqlite3.connect(q) for q in ps]",
    "raise ValueError(p)",
]
WRAPPERS = ["if flag:", "for item in items:", "while flag:", "with engine.begin() as tx:",
            "with sqlite3.connect(p) as conn:", "try:", "async def inner():",
            "def inner(p):", "@functools.lru_cache\ndef cached():", "class Repo:"]


def _block(depth: int) -> st.SearchStrategy[list[str]]:
    leaf = st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=4)
    if depth == 0:
        return leaf

    def wrap(head: str, inner: list[str]) -> list[str]:
        body = textwrap.indent("\n".join(inner), "    ")
        tail = "\nfinally:\n    pass" if head == "try:" else ""
        if head == "class Repo:":
            body = textwrap.indent("def m(self, p):\n" + textwrap.indent("\n".join(inner),
                                                                           "    "), "    ")
        return [f"{head}\n{body}{tail}"]

    compound = st.builds(wrap, st.sampled_from(WRAPPERS), _block(depth - 1))
    return st.lists(st.one_of(leaf, compound), min_size=1, max_size=4).map(
        lambda parts: [line for part in parts for line in part])


@st.composite
def module(draw: st.DrawFn) -> str:
    funcs = []
    for i in range(draw(st.integers(1, 3))):
        body = textwrap.indent("\n".join(draw(_block(2))), "    ")
        funcs.append(f"def f{i}(p, q, ps, dsn, url, flag, items, u):\n{body}\n")
    top = "\n".join(draw(st.lists(st.sampled_from(SNIPPETS[:14]), max_size=3)))
    return HEADER + "\n" + top.replace("return conn", "").replace("yield s", "") + "\n\n" + \
        "\n\n".join(funcs)


def _in_file(text: str, issues: list[Issue]) -> None:
    lines = text.splitlines()
    for i in issues:
        assert i.code in RULE_CODES, i
        assert 1 <= i.line <= len(lines), (i, len(lines))
        assert 0 <= i.column <= len(lines[i.line - 1]) + 1, (i, lines[i.line - 1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(module(), st.sets(st.sampled_from(sorted(RULE_CODES)), min_size=1, max_size=4))
def test_generated_modules(text: str, chosen: set[str]) -> None:
    try:
        ast.parse(text)
    except SyntaxError:  # e.g. a `yield` put at module level
        result = check_source("<fuzz>", text)
        assert result.error and result.error.startswith("cannot parse")
        return
    issues = lint_source(text)
    _in_file(text, issues)
    assert lint_source(text) == issues  # deterministic
    narrowed = lint_source(text, codes=chosen)
    assert set(narrowed) <= set(issues)
    assert {i for i in issues if i.code in chosen} == set(narrowed)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    result = check_source("<fuzz>", text)
    assert result.error is None or result.error.startswith(("cannot parse", "cannot check"))
    _in_file(text, result.issues)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([*SNIPPETS, "", "    ", "# comment", "'''doc", "\\", "(",
                                 ")", ":", "def", "class X:"]), max_size=12))
def test_near_python_never_crashes(lines: list[str]) -> None:
    text = HEADER + "\n".join(lines) + "\n"
    result = check_source("<fuzz>", text)
    assert result.error is None or result.error.startswith(("cannot parse", "cannot check"))
    _in_file(text, result.issues)
