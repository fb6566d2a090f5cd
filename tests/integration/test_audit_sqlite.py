"""The audit log's switches on SQLite: sampling, validation, disable, failures stay inside."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pooldoctor import audit
from pooldoctor.guard import GUARD


@pytest.fixture
def off() -> Iterator[None]:
    yield
    audit.disable()


def run(e: sa.Engine, *sqls: str) -> None:
    with e.connect() as c:
        for s in sqls:
            c.exec_driver_sql(s)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_sampling_decides_per_statement(off: None, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    log = audit.enable(str(path), sample=0.5)
    draws = iter([0.49, 0.5, 0.9, 0.1])
    log._random = lambda: next(draws)
    e = sa.create_engine("sqlite://")
    run(e, "SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4")
    e.dispose()
    evs = lines(path)
    assert len(evs) == 2  # 0.49 and 0.1 are below 0.5
    assert all(ev["sample_rate"] == 0.5 for ev in evs)
    assert log.written == 2


def test_nothing_after_disable_and_nothing_when_sampling_is_off(off: None, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    audit.enable(str(path), sample=0.0)
    e = sa.create_engine("sqlite://")
    run(e, "SELECT 1")
    assert lines(path) == []
    audit.enable(str(path))
    run(e, "SELECT 2")
    audit.disable()
    run(e, "SELECT 3")
    e.dispose()
    assert [ev["statement"] for ev in lines(path)] == ["SELECT ?"]
    assert audit.active() is None


def test_file_is_private(off: None, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    audit.enable(str(path))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize(("kw", "message"), [
    ({"sample": 1.5}, "audit sample must be between 0 and 1, got 1.5"),
    ({"sample": -0.1}, "audit sample must be between 0 and 1, got -0.1"),
    ({"slow_ms": -1}, "audit slow_ms must be 0 or more, got -1"),
])
def test_bad_settings_are_refused(off: None, kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        audit.enable(None, **kw)
    assert audit.active() is None


def test_enable_replaces_the_previous_configuration(off: None, tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    audit.enable(str(a))
    audit.enable(str(b))
    e = sa.create_engine("sqlite://")
    run(e, "SELECT 1")
    e.dispose()
    assert lines(a) == [] and len(lines(b)) == 1


def test_a_failing_writer_never_breaks_the_statement(off: None, tmp_path: Path) -> None:
    log = audit.enable(str(tmp_path / "a.jsonl"))

    class Broken:
        def __call__(self, line: str, event: object) -> None:
            raise OSError("disk full")

        def close(self) -> None:
            pass

    log._write = Broken()  # type: ignore[assignment]
    before = GUARD.internal_errors
    e = sa.create_engine("sqlite://")
    with e.connect() as c:
        assert c.exec_driver_sql("SELECT 7").scalar() == 7
    e.dispose()
    assert GUARD.internal_errors == before + 1


def test_forked_children_append_whole_lines(off: None, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    db = tmp_path / "f.sqlite"
    audit.enable(str(path))
    e = sa.create_engine(f"sqlite:///{db}")
    run(e, "SELECT 1")
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                e.dispose(close=False)
                for _ in range(50):
                    run(e, "SELECT 2")
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    e.dispose()
    evs = lines(path)  # every line parses: none torn
    assert len(evs) == 1 + 3 * 50
    assert {ev["pid"] for ev in evs} == {os.getpid(), *pids}


def test_record_entry_point_for_driver_wrappers(off: None, tmp_path: Path) -> None:
    import sys

    path = tmp_path / "a.jsonl"
    log = audit.enable(str(path))
    line = sys._getframe().f_lineno + 1
    log.record("SELECT * FROM t WHERE k = 'x'", seconds=0.002, dialect="mysql", connection=7,
               error=ValueError("Duplicate entry 'x' for key 'k'"))
    (ev,) = lines(path)
    assert ev["statement"] == "SELECT * FROM t WHERE k = ?"
    assert ev["site"] == {"file": __file__, "line": line,
                          "function": "test_record_entry_point_for_driver_wrappers"}
    assert ev["connection"] == 7 and ev["duration_ms"] == 2.0
    assert ev["error"] == {"type": "ValueError", "code": None,
                           "message": "Duplicate entry ? for key 'k'"}


def test_huge_statements_are_cut_and_stay_redacted(off: None, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    log = audit.enable(str(path))
    secret = "QQsecret" * 20_000  # 160 000 characters inside one literal
    log.record(f"SELECT '{secret}'", seconds=0.001, dialect="postgresql")
    (ev,) = lines(path)
    assert ev["statement"] == "SELECT ?" and ev["truncated"] is True
    assert "QQsecret" not in path.read_text()


async def test_async_engine_site_is_the_coroutine(off: None, tmp_path: Path) -> None:
    import sys

    from sqlalchemy.ext.asyncio import create_async_engine

    path = tmp_path / "a.jsonl"
    e = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'async.sqlite'}")
    audit.enable(str(path), engine=e)
    async with e.connect() as c:
        line = sys._getframe().f_lineno + 1
        await c.exec_driver_sql("SELECT 'async-secret', 5")
    await e.dispose()
    (ev,) = lines(path)
    assert ev["statement"] == "SELECT ?, ?"
    assert ev["site"] == {"file": __file__, "line": line,
                          "function": "test_async_engine_site_is_the_coroutine"}
