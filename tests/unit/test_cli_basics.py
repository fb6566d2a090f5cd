"""The command line's shared behaviour: explain, demo, errors, version."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from pooldoctor.cli.explain import doc_page
from pooldoctor.cli.main import COMMANDS, cli
from pooldoctor.findings import CATALOGUE

SECTIONS = ("## What it means", "## Why it hurts", "## Example", "## Fix",
            "## Known false positives")


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_code_has_a_doc_page(code: str) -> None:
    page = doc_page(code)
    assert page is not None, f"src/pooldoctor/codes/{code}.md is missing"
    assert page.startswith(f"# {code} {CATALOGUE[code].name}")
    for section in SECTIONS:
        assert section in page, f"{code}.md lacks {section!r}"


def test_explain_prints_the_page_and_rejects_unknown_codes() -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["explain", "pd103"])
    assert out.exit_code == 0
    assert "# PD103 pool-exhausted" in out.output
    out = runner.invoke(cli, ["explain", "--list"])
    assert out.exit_code == 0
    assert len(out.output.splitlines()) == len(CATALOGUE)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pooldoctor", *args], capture_output=True,
                          text=True, check=False, timeout=180)


def test_unknown_code_is_one_line_and_exit_2() -> None:
    out = run_cli("explain", "PD999")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "pooldoctor: error: unknown code 'PD999'; `pooldoctor explain --list` shows them all"]


def test_every_command_in_the_table_exists() -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["--help"])
    for name in ("run", "demo", "explain"):
        assert name in out.output
    assert set(COMMANDS) >= {"run", "demo", "explain", "lint", "snapshot", "top", "watch",
                             "advise"}


def test_run_without_command_is_a_usage_error() -> None:
    out = run_cli("run", "--", "no-such-program-xyz")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "command not found: 'no-such-program-xyz'" in out.stderr


def test_demo_lists_and_runs_every_scenario() -> None:
    out = run_cli("demo", "--list")
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.splitlines()]
    assert {"never_returned", "gc_reclaimed", "small_pool", "engine_per_call",
            "long_transaction", "fork", "ended_thread"} <= set(names)
    out = run_cli("demo")
    assert out.returncode == 0, out.stderr
    for code in ("PD101", "PD102", "PD103", "PD104", "PD105", "PD106", "PD107", "PD109",
                 "PD110"):
        assert code in out.stdout
    assert "scenario" in out.stdout.splitlines()[-1]


def test_demo_unknown_scenario() -> None:
    out = run_cli("demo", "nope")
    assert out.returncode == 2
    assert "unknown scenario 'nope'" in out.stderr
