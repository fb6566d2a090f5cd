"""ORM sessions: the hold of a session's connection names where the session was made (issue
19, item 6), in the finding's details and its text."""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

import pooldoctor
from pooldoctor.guard import GUARD
from pooldoctor.reports import Report

from .test_runtime_guard import QUIET


def here() -> int:
    return sys._getframe(1).f_lineno


def test_session_made_in_one_function_and_queried_in_another(
        tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    factory = sessionmaker(engine)

    def make_session() -> Session:
        return factory()

    made = here() - 2

    def load(session: Session) -> list[object]:
        return list(session.execute(sa.text("select 1")).all())

    query = here() - 2
    session = make_session()
    load(session)
    (f,) = [f for f in GUARD.check_exit() if f.code == "PD105"]
    assert f.site is not None and (f.site.line, f.site.function) == (query, "load")
    assert f.details["session_created"] == {"file": __file__, "line": made,
                                            "function": "make_session"}
    text = Report([f]).render_text(color=False)
    assert f"    at {f.site.short()}\n    session made at " in text
    assert f":{made} in make_session" in text
    session.close()
    assert GUARD.check_exit() == []
    engine.dispose()


def test_closed_sessions_and_core_connections_carry_no_session(
        tmp_path: Path, guard: object) -> None:
    pooldoctor.instrument(**QUIET)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with Session(engine) as session:
        session.execute(sa.text("select 1"))
    conn = engine.connect()
    conn.execute(sa.text("select 1"))
    (f,) = GUARD.check_exit()
    assert "session_created" not in f.details
    conn.close()
    engine.dispose()
