"""A shared helper hides its callers (issue 19, item 5): the finding is grouped by the helper's
site but lists the distinct callers that leaked, with counts, in details, JSON and text; the
caller comes first when the helper is a factory."""

from __future__ import annotations

import sqlite3
import sys

import pooldoctor
from pooldoctor.findings import Finding, Site, merge_findings
from pooldoctor.guard import GUARD
from pooldoctor.reports import Report

KEEP: list[sqlite3.Connection] = []


def connect_db() -> sqlite3.Connection:
    return sqlite3.connect(":memory:")  # FACTORY


def connect_db_named() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")  # NAMED
    return conn


def query_and_forget() -> None:
    conn = sqlite3.connect(":memory:")  # INTERNAL
    conn.execute("select 1")
    KEEP.append(conn)


def line(marker: str) -> int:
    with open(__file__, encoding="utf-8") as fh:
        for i, text in enumerate(fh, 1):
            if f"# {marker}" in text and "marker" not in text:
                return i
    raise AssertionError(marker)


def here() -> int:
    return sys._getframe(1).f_lineno


def caller_a() -> int:
    for _ in range(2):
        KEEP.append(connect_db())
    return here() - 1


def caller_b() -> int:
    KEEP.append(connect_db())
    return here() - 1


def caller_c() -> int:
    KEEP.append(connect_db_named())
    return here() - 1


def leaks() -> Report:
    out = GUARD.check_exit()
    KEEP.clear()
    return Report(out)


def test_factory_lists_its_callers_first(guard: object) -> None:
    pooldoctor.instrument(log=False, exit_check=False)
    a, b = caller_a(), caller_b()
    report = leaks()
    (f,) = report.findings
    assert f.site is not None and f.site.line == line("FACTORY")
    assert f.count == 3
    assert f.details["factory"] is True
    assert [(c["function"], c["line"], c["count"]) for c in f.details["callers"]] == [
        ("caller_a", a, 2), ("caller_b", b, 1)]
    assert report.to_dict()["findings"][0]["details"]["callers"][0]["count"] == 2
    text = report.render_text(color=False, stacks=False).splitlines()
    at = [t.strip() for t in text if t.startswith("    at ") or t.startswith("    through")]
    assert at[0].startswith("at ") and f":{a} in caller_a" in at[0] and "(x2)" in at[0]
    assert f":{b} in caller_b" in at[1]
    assert at[2].startswith("through ") and f":{line('FACTORY')} in connect_db" in at[2]
    assert f.where().endswith(f"through {f.site.short()}") and "caller_a" in f.where()


def test_factory_that_names_the_connection_first(guard: object) -> None:
    pooldoctor.instrument(log=False, exit_check=False)
    c = caller_c()
    (f,) = leaks().findings
    assert f.details.get("factory") is True
    assert f.details["callers"] == [{"file": __file__, "line": c, "function": "caller_c",
                                     "count": 1}]


def test_helper_that_leaks_itself_stays_first(guard: object) -> None:
    """Not a factory: the line to fix is the helper's; its callers are listed after it."""
    pooldoctor.instrument(log=False, exit_check=False)
    query_and_forget()
    first = here() - 1
    query_and_forget()
    second = here() - 1
    report = leaks()
    (f,) = report.findings
    assert "factory" not in f.details
    assert {c["line"] for c in f.details["callers"]} == {first, second}
    text = report.render_text(color=False, stacks=False)
    assert f"    at {f.site.short()}\n    called from " in text  # type: ignore[union-attr]
    assert f.where() == f.site.short()  # type: ignore[union-attr]


def test_merging_adds_the_callers_of_two_processes() -> None:
    site = Site("/app/db.py", 3, "connect_db")

    def one(caller_line: int, n: int, seen: str) -> Finding:
        return Finding("PD105", "m", site=site, last_seen=seen, first_seen=seen,
                       details={"factory": True, "callers": [
                           {"file": "/app/t.py", "line": caller_line, "function": "t",
                            "count": n}]})

    (f,) = merge_findings([one(5, 2, "2026-01-01T00:00:00Z"), one(9, 3, "2026-01-01T00:00:01Z"),
                           one(5, 2, "2026-01-01T00:00:02Z")])
    assert [(c["line"], c["count"]) for c in f.details["callers"]] == [(5, 4), (9, 3)]
    assert f.details["factory"] is True
