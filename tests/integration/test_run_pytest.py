"""`pooldoctor run -- pytest` with strict warning settings, and the summary of a program that
failed before doing anything (issue 19, item 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pooldoctor", "run", *argv],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)


def test_suite_with_filterwarnings_error(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    (tmp_path / "test_strict.py").write_text(
        f"import sqlite3\n\ndef test_leak():\n"
        f"    test_leak.kept = sqlite3.connect({str(tmp_path / 'db.sqlite')!r})  # LEAK\n")
    out = run(tmp_path, "--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
              "-p", "no:hypothesispytest", "-p", "no:asyncio")  # their own warnings
    assert "PytestAssertRewriteWarning" not in out.stdout + out.stderr
    assert "1 passed" in out.stdout, out.stdout + out.stderr
    assert out.returncode == 0
    assert "PD105" in out.stderr and "test_strict.py:4" in out.stderr


def test_program_failing_at_start_is_not_a_clean_bill(tmp_path: Path) -> None:
    out = run(tmp_path, "--", sys.executable, "-c", "raise SystemExit(3)")
    assert out.returncode == 3
    assert out.stderr.strip().splitlines()[-1] == (
        "pooldoctor: no findings, but nothing was checked: the program exited with status 3 "
        "before taking any database connection")


def test_clean_program_that_took_no_connection(tmp_path: Path) -> None:
    out = run(tmp_path, "--", sys.executable, "-c", "print('hello')")
    assert out.returncode == 0
    assert out.stderr.strip() == ("pooldoctor: no findings (the program took no database "
                                  "connection)")


def test_clean_program_with_connections(tmp_path: Path) -> None:
    code = f"import sqlite3; sqlite3.connect({str(tmp_path / 'db.sqlite')!r}).close()"
    out = run(tmp_path, "--", sys.executable, "-c", code)
    assert out.returncode == 0
    assert out.stderr.strip() == "pooldoctor: no findings"
