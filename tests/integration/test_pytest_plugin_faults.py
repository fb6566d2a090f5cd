"""The pytest plugin and the guard never raise into the program: a working folder deleted
under them, a report folder gone at the end, a relative source file name (issue 19, item 1)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import pooldoctor.api
import pooldoctor.pytest_plugin.leaks
import pooldoctor.runtime.sqlalchemy  # shared by the in-process inner runs

pytest_plugins = ["pytester"]

INI = ("[pytest]\naddopts = -p no:hypothesispytest -p no:cacheprovider\n"
       "asyncio_default_fixture_loop_scope = function\n")

GONE = """
    import os, shutil, tempfile
    import sqlalchemy as sa
    import pytest

    ENGINE = sa.create_engine({url!r})
    KEEP = []

    @pytest.fixture(autouse=True, scope="module")
    def lost_cwd():
        # the suite's own fault: chdir into a temporary folder, then delete it
        old = os.getcwd()
        tmp = tempfile.mkdtemp()
        os.chdir(tmp)
        shutil.rmtree(tmp)
        yield
        os.chdir(old)

    def test_cwd_is_gone():
        with pytest.raises(FileNotFoundError):
            os.getcwd()

    def test_clean():
        with ENGINE.connect() as conn:
            conn.exec_driver_sql("select 1")

    def test_leak():
        KEEP.append(ENGINE.connect())  # LEAK

    def test_dropped():
        conn = ENGINE.connect()  # DROPPED
        box = {{"conn": conn}}
        box["self"] = box

    def test_after():
        pass
"""


def line_of(source: str, marker: str) -> int:
    for i, line in enumerate(textwrap.dedent(source).strip().splitlines(), 1):
        if marker in line:
            return i
    raise AssertionError(f"{marker!r} not in source")


@pytest.fixture
def suite(pytester: pytest.Pytester, guard: object) -> Iterator[pytest.Pytester]:
    pytester.makeini(INI)
    yield pytester
    gc.collect()
    pooldoctor.runtime.sqlalchemy.reset_stats()


def test_suite_that_deletes_its_working_folder(suite: pytest.Pytester) -> None:
    db = suite.path / "db.sqlite"
    suite.makepyfile(test_gone=GONE.format(url=f"sqlite:///{db}"))
    os.mkdir(suite.path / "out")
    result = suite.runpytest("--pooldoctor", "--pooldoctor-report", "out/report.json")
    result.assert_outcomes(passed=5, errors=2)
    out = result.stdout.str()
    assert "FileNotFoundError" not in out and "INTERNALERROR" not in out
    assert "internal error" not in out
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_leak*",
        f"*PD105 at *test_gone.py:{line_of(GONE, '# LEAK')} in test_leak",
        "*ERROR at teardown of test_dropped*",
        f"*PD102 at *test_gone.py:{line_of(GONE, '# DROPPED')} in test_dropped",
        "*report written to out/report.json",
    ])
    # relative to where pytest started, not to the folder the suite went to
    report = json.loads((suite.path / "out" / "report.json").read_text())
    assert sorted(f["code"] for f in report["findings"]) == ["PD102", "PD105"]
    assert report["pytest"]["internal_errors"] == 0


def test_report_folder_deleted_during_the_run(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_rm="""
        import shutil

        def test_remove_the_report_folder():
            shutil.rmtree({out!r})
    """.format(out=str(suite.path / "out")))
    os.mkdir(suite.path / "out")
    result = suite.runpytest("--pooldoctor", "--pooldoctor-report", "out/report.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["pooldoctor: cannot write the report to *report.json: *"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_paths_without_a_working_folder(tmp_path: Path) -> None:
    """Site.short(), the user-frame filter and the text report, with the cwd deleted."""
    code = textwrap.dedent("""
        import os, shutil, tempfile
        from pooldoctor.findings import Finding, Site, shorten_path
        from pooldoctor.reports import Report
        from pooldoctor.sites import is_internal_file

        tmp = tempfile.mkdtemp()
        os.chdir(tmp)
        shutil.rmtree(tmp)
        assert shorten_path("/srv/app/x.py") == "/srv/app/x.py"
        assert Site("/srv/app/x.py", 3, "f").short() == "/srv/app/x.py:3 in f"
        assert is_internal_file("relative/app.py") is False
        f = Finding("PD105", "m", site=Site("app.py", 3, "f"),
                    stack=[Site("app.py", 3, "f"), Site("lib/caller.py", 9, "g")])
        text = Report([f]).render_text(color=False)
        assert "lib/caller.py:9 in g" in text, text
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_run_in_a_deleted_working_folder(tmp_path: Path) -> None:
    """`pooldoctor run`: a program that loses its cwd still gets its finding, and the guard
    no internal error."""
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(f"""
        import os, shutil, sqlite3, tempfile
        tmp = tempfile.mkdtemp()
        os.chdir(tmp)
        shutil.rmtree(tmp)
        KEEP = sqlite3.connect({str(tmp_path / 'db.sqlite')!r})  # OPEN
    """))
    report = tmp_path / "r.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pooldoctor", "run", "--quiet", "--report", str(report), "--",
         sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr
    data = json.loads(report.read_text())
    assert [(f["code"], f["site"]["line"]) for f in data["findings"]] == [("PD105", 6)]


OLD_CYCLE = """
    import gc
    import sqlalchemy as sa

    ENGINE = sa.create_engine({url!r})
    KEEP = []

    def test_cycle_promoted_to_the_oldest_generation():
        conn = ENGINE.connect()  # OLD
        box = {{"conn": conn}}
        box["self"] = box
        KEEP.append(box)
        del conn, box
        gc.collect()  # the cycle survives, now in the oldest generation
        KEEP.clear()  # and becomes garbage there

    def test_young_cycle():
        conn = ENGINE.connect()  # YOUNG
        box = {{"conn": conn}}
        box["self"] = box

    def test_referenced():
        KEEP.append(ENGINE.connect())  # KEPT

    @pytest.mark.parametrize("n", range(3))
    def test_clean(n):
        with ENGINE.connect() as conn:
            conn.exec_driver_sql("select 1")
"""


def test_verdict_does_not_depend_on_the_collector(suite: pytest.Pytester) -> None:
    """A cycle the collector promoted to its oldest generation is still a PD102 of its test
    (a full collection), a young one too (a young collection), a referenced one a PD105."""
    src = "import pytest\n" + textwrap.dedent(OLD_CYCLE)
    suite.makepyfile(test_gc=src.format(url=f"sqlite:///{suite.path / 'db.sqlite'}"))
    result = suite.runpytest("--pooldoctor")
    result.assert_outcomes(passed=6, errors=3)
    result.stdout.fnmatch_lines([
        f"*PD102 at test_gc.py:{line_of(src, '# OLD')} in test_cycle_promoted*",
        f"*PD102 at test_gc.py:{line_of(src, '# YOUNG')} in test_young_cycle",
        f"*PD105 at test_gc.py:{line_of(src, '# KEPT')} in test_referenced",
    ])


def test_relative_events_file_survives_a_lost_working_folder(tmp_path: Path) -> None:
    """instrument(events_path=relative) is fixed at start: the findings still reach the file
    after the program moves to a folder it then deletes."""
    work, other = tmp_path / "work", tmp_path / "other"
    work.mkdir()
    other.mkdir()
    code = textwrap.dedent(f"""
        import os, shutil, sqlite3
        import pooldoctor
        pooldoctor.instrument(log=False, events_path="events.jsonl")
        os.chdir({str(other)!r})
        shutil.rmtree({str(other)!r})
        KEEP = sqlite3.connect(":memory:")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=work, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr
    events = [json.loads(line) for line in (work / "events.jsonl").read_text().splitlines()]
    assert [e["finding"]["code"] for e in events if e.get("event") == "finding"] == ["PD105"]
