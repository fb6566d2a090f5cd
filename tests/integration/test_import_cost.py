"""Commands that need no engine import no SQLAlchemy (it costs a third of a second): checked in
``sys.modules`` of a fresh process per command, not in times."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("sqlalchemy", "greenlet", "psycopg", "psycopg2", "pymysql", "MySQLdb", "mysql")

PROGRAM = r"""
import atexit, sys
HEAVY = set({heavy!r})

@atexit.register
def _show():
    loaded = sorted({{m.partition(".")[0] for m in sys.modules}} & HEAVY)  # packages, not modules
    sys.__stderr__.write("LOADED " + " ".join(loaded) + "\n")

from pooldoctor.cli.main import main
main(sys.argv[1:])
"""


def loaded_by(tmp_path: Path, *args: str) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    script = tmp_path / "cmd.py"
    script.write_text(PROGRAM.format(heavy=HEAVY))
    out = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    line = [x for x in out.stderr.splitlines() if x.startswith("LOADED")]
    assert line, out.stderr
    return line[-1].split()[1:], out


@pytest.mark.parametrize("args", [
    ["--help"],
    ["--version"],
    ["explain", "PD101"],
    ["lint", "one.py"],
    ["lint", "--format", "json", "one.py"],
    *[[cmd, "--help"] for cmd in ("snapshot", "top", "watch", "kill", "advise", "run",
                                  "dashboard", "demo", "lint", "explain")],
], ids=" ".join)
def test_no_sqlalchemy_without_an_engine(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "one.py").write_text("import sqlite3\n\n\ndef f():\n    return 1\n")
    loaded, out = loaded_by(tmp_path, *args)
    assert out.returncode == 0, out.stderr
    assert loaded == [], f"{' '.join(args)} imported {loaded}"


@pytest.mark.parametrize("cmd", ["snapshot", "top", "watch", "kill", "advise"])
def test_a_bad_url_is_refused_before_any_import(tmp_path: Path, cmd: str) -> None:
    args = [cmd, "mysql+pymysql://root:s3cr@t:w@127.0.0.1/test"]
    if cmd == "kill":
        args += ["--all"]
    loaded, out = loaded_by(tmp_path, *args)
    assert out.returncode == 2, out.stderr
    assert "percent-encoded" in out.stderr and "s3cr" not in out.stderr
    assert "invalid literal" not in out.stderr
    assert loaded == []


def test_postgres_scheme_works_for_server_commands(tmp_path: Path) -> None:
    """``postgres://`` (Heroku and many hosting services) is PostgreSQL, as for libpq."""
    from tests.conftest import PG_URL, need_server

    url = need_server(PG_URL).replace("postgresql+psycopg://", "postgres+psycopg://", 1)
    for args in (["snapshot", "--format", "json", url],
                 ["advise", "--workers", "1", "--pool-size", "1", "--max-overflow", "0", url]):
        _, out = loaded_by(tmp_path, *args)
        assert out.returncode in (0, 1), out.stderr
        assert "postgresql" in out.stdout


# the driver each URL names: the only heavy package a server command may import
DRIVERS = {"psycopg": "psycopg", "psycopg2": "psycopg2", "pymysql": "pymysql",
           "mysqldb": "MySQLdb", "mysqlconnector": "mysql"}


@pytest.mark.parametrize("which", ["pg", "mysql", "mysqlconnector", "mysqldb"])
@pytest.mark.parametrize("cmd", ["snapshot", "top", "watch", "kill", "advise"])
def test_server_commands_import_only_their_driver(tmp_path: Path, cmd: str, which: str) -> None:
    """Against a real server, the server commands import the URL's driver and no SQLAlchemy."""
    from pooldoctor.urls import parse_url
    from tests.conftest import MYSQL_URL, PG_URL, need_server

    url = need_server(PG_URL if which == "pg" else MYSQL_URL)
    if which in ("mysqlconnector", "mysqldb"):  # the same server through another driver
        pytest.importorskip({"mysqlconnector": "mysql.connector", "mysqldb": "MySQLdb"}[which])
        url = f"mysql+{which}://" + url.partition("://")[2]
    driver = DRIVERS.get(parse_url(url).get_driver_name())
    if driver is None:
        pytest.skip(f"{url.partition(':')[0]} goes through SQLAlchemy")
    args = {"snapshot": ["snapshot", "--format", "json", url],
            "top": ["top", url, "--iterations", "1"],
            "watch": ["watch", url, "--once"],
            "kill": ["kill", url, "--user", "pooldoctor-nobody-" + tmp_path.name[-8:]],
            "advise": ["advise", "--workers", "1", "--pool-size", "1", "--max-overflow", "0",
                       url]}[cmd]
    loaded, out = loaded_by(tmp_path, *args)
    assert out.returncode in (0, 1), out.stderr
    assert loaded == [driver], f"{cmd} imported {loaded}"


def test_help_lists_every_command_without_importing_them(tmp_path: Path) -> None:
    from pooldoctor.cli.main import COMMANDS, SUMMARIES

    assert set(SUMMARIES) == set(COMMANDS)
    script = tmp_path / "help.py"
    script.write_text("import sys\nfrom pooldoctor.cli.main import main\n"
                      "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                      "print(sorted(m for m in sys.modules if m.startswith('pooldoctor.cli.')))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=True, env={**os.environ, "COLUMNS": "200"})
    assert out.stdout.strip().splitlines()[-1] == str([
        "pooldoctor.cli.commands", "pooldoctor.cli.common", "pooldoctor.cli.errors",
        "pooldoctor.cli.group", "pooldoctor.cli.main"])
    for name, summary in SUMMARIES.items():  # wide enough: no summary is cut
        assert f"  {name}" in out.stdout and summary in out.stdout


# what a clean one-file lint (a pre-commit hook) must not import: the URL parser and its
# urllib.parse, the json/SARIF writers, pathlib, worker processes, a TOML reader without a config,
# click (cli/lintrun.py reads its command line), typing (TYPE_CHECKING = False)
NOT_FOR_ONE_FILE = ("click", "typing", "pooldoctor.urls", "pooldoctor.reports", "urllib.parse",
                    "ipaddress", "json", "pathlib", "multiprocessing", "concurrent.futures",
                    "tomllib", "tomli")

ONE_FILE_PROGRAM = r"""
import sys
from pooldoctor.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("CODE", code)
print("LOADED", " ".join(sorted(m for m in {names!r} if m in sys.modules)))
"""


@pytest.mark.parametrize("extra", [[], ["-q"], ["--isolated"]], ids=" ".join)
def test_one_file_lint_imports_only_what_it_needs(tmp_path: Path, extra: list[str]) -> None:
    (tmp_path / "one.py").write_text(
        "import sqlite3\n\n\ndef load(path):\n    conn = sqlite3.connect(path)\n    try:\n"
        "        return conn.execute('SELECT 1').fetchall()\n    finally:\n        conn.close()\n")
    script = tmp_path / "cmd.py"
    script.write_text(ONE_FILE_PROGRAM.format(names=NOT_FOR_ONE_FILE))
    out = subprocess.run([sys.executable, str(script), "lint", *extra, "one.py"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert "CODE 0" in lines, out.stderr
    assert "no findings (1 file checked)" in out.stderr or "-q" in extra, out.stderr
    loaded = [x for x in lines if x.startswith("LOADED")][-1].split()[1:]
    assert loaded == [], f"a one-file lint imported {loaded}"


def test_lint_with_findings_and_json_still_loads_its_writers(tmp_path: Path) -> None:
    """The lazy imports are there when needed: findings are masked, json and sarif render."""
    (tmp_path / "leak.py").write_text(
        "import sqlite3\n\n\ndef load(path):\n    conn = sqlite3.connect(path)\n"
        "    return conn.execute('SELECT 1').fetchall()\n")
    script = tmp_path / "cmd.py"
    script.write_text(ONE_FILE_PROGRAM.format(names=NOT_FOR_ONE_FILE))
    for fmt, wanted in (("text", "pooldoctor.urls"), ("json", "json"), ("sarif", "json")):
        out = subprocess.run([sys.executable, str(script), "lint", "--format", fmt, "leak.py"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert "CODE 1" in out.stdout.splitlines(), (fmt, out.stderr)
        assert "PD20" in out.stdout, (fmt, out.stdout)
        assert wanted in out.stdout.splitlines()[-1].split(), (fmt, out.stdout)
