"""`pooldoctor advise` without a server: limits by hand, reports, source, errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pooldoctor.cli.main import main
from pooldoctor.reports import Report


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(["advise", *argv])
    out, err = capsys.readouterr()
    return int(e.value.code or 0), out, err


ISSUE = ("--max-connections", "151", "--used-by-others", "12", "--wait-timeout", "28800",
         "--workers", "8", "--pool-size", "10", "--max-overflow", "20")


def test_issue_example_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *ISSUE, "--pre-ping")
    assert code == 1, err
    assert ("PD401 error   8 workers x (pool_size 10 + max_overflow 20) = 240 connections > 139 "
            "allowed by the given limits (max_connections 151 - reserved 0 - used by others 12)"
            in out)
    assert "pool_size 10 (given)" in out and "pool_timeout 30 (default)" in out
    assert "recommended" in out and "create_engine(url, pool_size=" in out


def test_issue_example_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *ISSUE, "--format", "json")
    assert code == 1
    data = json.loads(out)
    report = Report.from_dict(data)  # a valid pooldoctor.report/1
    assert sorted(report.codes()) == ["PD401", "PD403"]
    advice = data["advice"]
    assert advice["allowance"]["allowed"] == 139
    assert advice["app"]["workers"] == {"value": 8, "source": "given"}
    assert advice["app"]["pool_recycle"]["source"] == "default"
    rec = advice["recommended"]
    assert rec["per_process"] * 8 <= 139
    assert rec["pool_recycle"] < 28800 and rec["pool_pre_ping"] is True
    assert data["pools"][0]["size"] == 10


def test_safe_configuration_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--max-connections", "151", "--wait-timeout", "28800",
                       "--workers", "4", "--threads", "8", "--pool-size", "8",
                       "--max-overflow", "0", "--pool-recycle", "1800")
    assert code == 0
    assert out.startswith("pooldoctor: no findings")


def test_from_source(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("from sqlalchemy import create_engine\n"
                   "a = create_engine(URL, pool_size=20, max_overflow=-1)\n"
                   "b = create_engine(URL, pool_size=2)\n")
    code, out, err = run(capsys, "--from-source", str(app))
    assert code == 2 and "choose one with --from-source FILE:LINE" in err
    code, out, _ = run(capsys, "--from-source", f"{app}:2", "--threads", "4")
    assert code == 1
    assert "PD404 warning max_overflow -1" in out
    assert "pool_size 20 (source)" in out and "threads 4 (given)" in out
    assert f"at {app}:2" in out or "app.py:2" in out
    # a name is not a literal: the advice says so instead of guessing
    code, out, _ = run(capsys, "--from-source", f"{app}:3")
    assert code == 0 and "pool_size 2 (source)" in out
    other = tmp_path / "other.py"
    other.write_text("import sqlalchemy\nN = 3\ne = sqlalchemy.create_engine(URL, pool_size=N, "
                     "max_overflow=1)\n")
    code, out, _ = run(capsys, "--from-source", str(other))
    assert code == 0 and "max_overflow 1 (source)" in out and "pool_size 5 (default)" in out
    assert "other.py:3 in <module> is not a literal: give it with --pool-size" in out
    # the command line wins over the source
    code, out, _ = run(capsys, "--from-source", f"{app}:2", "--max-overflow", "5")
    assert code == 0 and "max_overflow 5 (given)" in out


def _write_report(path: Path, **pool: object) -> None:
    base: dict[str, object] = {"url": "postgresql+psycopg://app:***@db/app",
                               "pool_class": "QueuePool", "size": 5, "max_overflow": 10,
                               "timeout": 30.0, "recycle": -1, "pre_ping": False}
    base.update(pool)
    Report([], [base]).write(str(path))


def test_from_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rep = tmp_path / "r.json"
    _write_report(rep, checkouts=1200, peak_checked_out=15, waits=40, timeouts=2,
                  max_wait_ms=900.0, hold_ms_total=240_000.0, observed_s=60.0)
    code, out, _ = run(capsys, "--from-report", str(rep), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert [f["code"] for f in data["findings"]] == ["PD402"]
    assert "measured: peak 15 checked out of at most 15" in data["findings"][0]["message"]
    advice = data["advice"]
    assert advice["app"]["pool_size"] == {"value": 5, "source": "report"}
    assert advice["measured"]["mean_hold_ms"] == 200.0
    assert advice["measured"]["checkout_rate_per_s"] == 20.0
    # 20/s x 0.2 s = 4 connections on average, x 1.5 = 6
    assert advice["recommended"]["pool_size"] == 6
    assert "Little's law" in advice["recommended"]["basis"]


def test_from_report_of_several_processes(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    """The docs' worked example: 8 workers, 20 checkouts/s each held 35 ms, 4 threads."""
    rep = tmp_path / "r.json"
    _write_report(rep, size=10, max_overflow=20, checkouts=96_000, peak_checked_out=4,
                  hold_ms_total=3_360_000.0, observed_s=600.0, processes=8)
    code, out, _ = run(capsys, "--max-connections", "151", "--used-by-others", "12",
                       "--wait-timeout", "28800", "--threads", "4", "--from-report", str(rep))
    assert code == 1
    assert "workers 8 (report)" in out  # the processes the report merged
    assert "20.00 checkouts/s x 35.0 ms mean hold = 0.70 connections" in out
    assert "create_engine(url, pool_size=2, max_overflow=2," in out


def test_merging_a_merged_report_keeps_its_processes() -> None:
    from pooldoctor.reports import merge_pools

    once = merge_pools([{"url": "u", "checkouts": 10, "hold_ms_total": 5.0, "observed_s": 2.0},
                        {"url": "u", "checkouts": 30, "hold_ms_total": 7.0, "observed_s": 3.0}])
    assert once == [{"url": "u", "checkouts": 40, "hold_ms_total": 12.0, "observed_s": 3.0,
                     "processes": 2}]
    again = merge_pools([*once, {"url": "u", "checkouts": 1, "processes": 3}])
    assert again[0]["processes"] == 5 and again[0]["checkouts"] == 41


def test_report_with_several_pools(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rep = tmp_path / "r.json"
    Report([], [{"url": "sqlite:///a.db", "pool_class": "QueuePool", "size": 5},
                {"url": "postgresql://u@h/d", "pool_class": "QueuePool", "size": 3}]
           ).write(str(rep))
    code, _, err = run(capsys, "--from-report", str(rep))
    assert code == 2 and "has 2 pools" in err and "--pool" in err
    code, out, _ = run(capsys, "--from-report", str(rep), "--pool", "postgresql")
    assert code == 0 and "pool_size 3 (report)" in out


@pytest.mark.parametrize(("argv", "words"), [
    (("--from-report", "/nonexistent/r.json"), "cannot read report /nonexistent/r.json"),
    (("--pool", "x"), "--pool needs --from-report"),
    (("--from-source", "/nonexistent/app.py"), "no such file or directory"),
])
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                      words: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert words in err and err.count("\n") == 1 and "Traceback" not in err


def test_not_a_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other"}')
    code, _, err = run(capsys, "--from-report", str(bad))
    assert code == 2 and "is not a pooldoctor.report/1 file" in err


def test_bad_option_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--workers", "0")
    assert code == 2 and "Traceback" not in err


@pytest.mark.parametrize("url", ["nosuchdb://app:hunter2@h/d", "postgresql+psycopg://app:hunter2@"
                                 "127.0.0.1:1/d"])
def test_bad_or_unreachable_server(capsys: pytest.CaptureFixture[str], url: str) -> None:
    code, out, err = run(capsys, url, "--connect-timeout", "1")
    assert code == (2 if url.startswith("nosuchdb") else 3)
    assert "hunter2" not in out + err
    assert err.startswith("pooldoctor: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("code", ["PD401", "PD402", "PD403", "PD404"])
def test_code_pages(capsys: pytest.CaptureFixture[str], code: str) -> None:
    from pooldoctor.findings import CATALOGUE

    with pytest.raises(SystemExit) as e:
        main(["explain", code])
    assert e.value.code == 0
    page = capsys.readouterr().out
    assert page.startswith(f"# {code} {CATALOGUE[code].name}\n")
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings == ["## What it means", "## Why it hurts", "## Example", "## Fix",
                        "## Known false positives"]


def test_advise_with_no_input_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    assert err == ("pooldoctor: error: advise needs something to check: a server URL, "
                   "--from-report FILE, --from-source PATH or pool settings "
                   "(see pooldoctor advise --help)\n")


def test_one_is_singular(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--max-connections", "10", "--used-by-others", "1",
                         "--pool-size", "1", "--max-overflow", "0")
    assert code == 0, out + err
    assert "1 connection open right now is counted as used by others" in out
    assert "  1 connection per process, 1 for 1 process" in out
    assert "1 connections" not in out
