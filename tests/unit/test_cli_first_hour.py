"""What a new user trips over in the first hour (issue 18): help text, conflicting options,
exit codes. Each command runs in a subprocess, as a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pooldoctor.cli.main import COMMANDS, cli


def pd(*args: str, columns: int = 80, cwd: Path | None = None
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pooldoctor", *args], capture_output=True,
                          text=True, check=False, timeout=120, cwd=cwd,
                          env={**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"})


def one_usage_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pooldoctor: error: "), r.stderr
    return lines[0]


def listed(help_text: str) -> dict[str, str]:
    block = help_text.split("Commands:\n", 1)[1]
    return {line.split()[0]: line.split(None, 1)[1] for line in block.splitlines() if line}


def test_help_never_cuts_a_description_mid_sentence() -> None:
    wide = listed(pd("--help", columns=120).stdout)
    assert set(wide) == set(COMMANDS)
    for name, text in wide.items():
        cmd = cli.get_command(None, name)  # type: ignore[arg-type]
        assert cmd is not None and cmd.help is not None
        first = cmd.help.split("\n\n")[0].replace("\n", " ")
        assert first.startswith(text) and text.endswith("."), (name, text)
    narrow = listed(pd("--help", columns=80).stdout)
    assert narrow["explain"] == "Print the documentation of finding CODES such as PD101."
    for text in narrow.values():  # cut for the width is marked as cut
        assert text.endswith((".", "...")), text


def test_lint_config_and_isolated_conflict(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    line = one_usage_error(pd("lint", "--config", "/nonexistent.toml", "--isolated",
                              str(tmp_path)))
    assert "--config and --isolated" in line


def test_lint_an_empty_file_is_clean(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("")
    r = pd("lint", str(tmp_path / "empty.py"))
    assert (r.returncode, r.stdout) == (0, ""), r.stderr


@pytest.mark.parametrize("flt", [["--pid", "1"], ["--state", "idle"], ["--user", "app"]])
def test_kill_all_with_a_filter_is_a_usage_error(flt: list[str]) -> None:
    # a closed port: a usage error must come before any connection (exit 2, not 3)
    line = one_usage_error(pd("kill", "postgresql+psycopg://u@127.0.0.1:1/d", "--all", *flt))
    assert "--all means every connection: it cannot be combined with a filter" in line


def test_advise_with_nothing_to_check() -> None:
    line = one_usage_error(pd("advise"))
    assert "advise needs something to check" in line
