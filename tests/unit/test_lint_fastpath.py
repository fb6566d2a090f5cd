"""`pooldoctor lint` read without click (``cli/lintrun.py``): the same parameters as click for
every command line it accepts, and click for every other one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pooldoctor.cli.lint import lint
from pooldoctor.cli.lintrun import parse

ACCEPTED = [
    [],
    ["one.py"],
    ["a.py", "b", "--format", "json"],
    ["--format=sarif", "a.py"],
    ["-q", "--exit-zero", "--isolated", "--no-gitignore", "--force-exclude", "x"],
    ["--quiet", "x", "-q"],
    ["--select", "PD201,PD203", "--select=PD209", "--ignore", "PD202", "p"],
    ["--exclude", "build/", "--exclude=*.pyi", "src"],
    ["--config", "pyproject.toml", "--format", "text", "--format", "json"],
    ["--config=other.toml", "--", "-weird.py", "--format"],
    ["--", "x.py"],
]

REFUSED = [  # click reads these (and says what is wrong with most of them)
    ["--help"], ["-h"], ["--formt", "json"], ["--format", "xml"], ["--format"],
    ["--select"], ["--quiet=yes"], ["-q=1"], ["-qq"], ["--format", "-q"], [""], ["-"],
    ["--config", "."], ["--version"],
]


@pytest.mark.parametrize("args", ACCEPTED, ids=" ".join)
def test_same_parameters_as_click(args: list[str]) -> None:
    expected = lint.make_context("lint", list(args)).params
    assert parse(list(args)) == expected


@pytest.mark.parametrize("args", REFUSED, ids=" ".join)
def test_anything_else_goes_to_click(args: list[str]) -> None:
    assert parse(list(args)) is None


def test_a_one_file_lint_imports_no_click(tmp_path: Path) -> None:
    (tmp_path / "leak.py").write_text("import sqlite3\n\ndef f(p):\n    c = sqlite3.connect(p)\n")
    prog = ("import sys\nfrom pooldoctor.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit as e:\n    print('CODE', e.code, 'CLICK', 'click' in sys.modules)\n")
    for args, code, click in ((["lint", "leak.py"], 1, False),
                              (["lint", "--exit-zero", "-q", "leak.py"], 0, False),
                              (["lint", "--format", "xml", "leak.py"], 2, True)):
        out = subprocess.run([sys.executable, "-c", prog, *args], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120, env={**os.environ, "COLUMNS": "200"})
        assert out.stdout.splitlines()[-1] == f"CODE {code} CLICK {click}", out.stderr
        if code == 1:
            assert out.stdout.startswith("leak.py:4:9: PD201 connection `c`")
            assert out.stderr == "pooldoctor: 1 finding in 1 file (1 file checked)\n"
        if code == 2:
            assert out.stderr.startswith("pooldoctor: error: Invalid value for '--format'")
            assert "Traceback" not in out.stderr
