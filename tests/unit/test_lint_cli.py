"""`pooldoctor lint`: output formats, exit codes, options, configuration, file discovery."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pooldoctor.cli.main import main

LEAK = "import sqlite3\n\ndef f(p):\n    conn = sqlite3.connect(p)\n    return 1\n"
CLEAN = "import sqlite3\n\ndef f(p):\n    with sqlite3.connect(p) as c:\n        pass\n"
SECRET = 'URL = "postgresql://app:hunter2@db/app"\n'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["lint", *args])
    except SystemExit as e:
        code = int(e.code or 0)
    else:  # pragma: no cover - main always exits
        code = 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "leak.py").write_text(LEAK)
    (tmp_path / "app" / "ok.py").write_text("import os\n")
    return tmp_path


def test_text_output_and_exit_1(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "app")
    assert code == 1
    assert re.fullmatch(r"app/leak\.py:4:12: PD201 connection `conn` from sqlite3\.connect\(\) "
                        r"is never closed; .*\n", out)
    assert "1 finding in 1 file (2 files checked)" in err


def test_clean_and_empty_exit_0(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "empty").mkdir()
    assert run(capsys, "empty")[:2] == (0, "")
    assert run(capsys, "app/ok.py")[:2] == (0, "")


def test_default_path_is_the_working_directory(project: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 1 and out.startswith("app/leak.py:4:12: PD201")


def test_select_ignore_and_unknown_codes(project: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (project / "app" / "secret.py").write_text(SECRET)
    assert [ln.split()[1] for ln in run(capsys, "app")[1].splitlines()] == ["PD201", "PD209"]
    assert run(capsys, "app", "--select", "PD209")[1].count("PD209") == 1
    assert "PD201" not in run(capsys, "app", "--select", "PD209")[1]
    code, out, _ = run(capsys, "app", "--ignore", "PD201,PD209")
    assert (code, out) == (0, "")
    code, out, err = run(capsys, "app", "--select", "PD299")
    assert code == 2 and out == ""
    assert err.strip() == ("pooldoctor: error: unknown lint code 'PD299'; lint codes are "
                           "PD201..PD211")
    assert run(capsys, "app", "--ignore", "E501")[0] == 2


def test_missing_path_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "nope")
    assert code == 2 and "path nope does not exist" in err and "Traceback" not in err


def test_unparsable_files_are_one_line_and_the_run_goes_on(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "app" / "broken.py").write_text("import sqlite3\ndef f(:\n")
    (project / "app" / "binary.py").write_bytes(b"\x00\x01\x02")
    (project / "app" / "latin.py").write_bytes(b"x = '\xe9'\n")
    (project / "app" / "cookie.py").write_bytes(b"# -*- coding: latin-1 -*-\nx = '\xe9'\n")
    code, out, err = run(capsys, "app")
    assert code == 1 and out.startswith("app/leak.py:4:12: PD201")
    lines = [ln for ln in err.splitlines() if "cannot parse" in ln]
    assert sorted(ln.split(":")[0] for ln in lines) == ["app/binary.py", "app/broken.py",
                                                        "app/latin.py"]
    assert "app/broken.py: cannot parse: line 2: " in err
    assert "3 could not be checked" in err
    (project / "app" / "leak.py").unlink()
    assert run(capsys, "app")[0] == 0  # parse failures alone do not fail the run


def test_json_report(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "app" / "secret.py").write_text(SECRET)
    (project / "app" / "broken.py").write_text("import sqlite3\ndef f(:\n")
    code, out, _ = run(capsys, "app", "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["schema"] == "pooldoctor.report/1"
    f201, f209 = report["findings"]
    assert f201["code"] == "PD201" and f201["name"] == "dbapi-not-closed"
    assert f201["site"] == {"file": str(project / "app" / "leak.py"), "line": 4,
                            "function": "f", "column": 12}
    assert f209["severity"] == "error" and "hunter2" not in out
    assert report["lint"]["files"] == 4
    assert report["lint"]["errors"][0]["file"] == "app/broken.py"


def test_sarif_for_code_scanning(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "app" / "broken.py").write_text("import sqlite3\ndef f(:\n")
    code, out, _ = run(capsys, "app", "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (sarif_run,) = log["runs"]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "pooldoctor"
    ids = [r["id"] for r in driver["rules"]]
    assert ids == [f"PD2{n:02d}" for n in range(1, 12)]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"]
        assert rule["help"]["markdown"].startswith(f"# {rule['id']}")  # the code's doc page
        assert rule["defaultConfiguration"]["level"] in ("error", "warning", "note")
    (result,) = sarif_run["results"]
    assert result["ruleId"] == "PD201" and driver["rules"][result["ruleIndex"]]["id"] == "PD201"
    assert result["level"] == "error" and result["message"]["text"]
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "app/leak.py", "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 4, "startColumn": 12}
    assert sarif_run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.as_uri() + "/"
    (note,) = sarif_run["invocations"][0]["toolExecutionNotifications"]
    assert note["level"] == "error" and "cannot parse" in note["message"]["text"]


def test_pyproject_configuration(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "app" / "secret.py").write_text(SECRET)
    (project / "legacy").mkdir()
    (project / "legacy" / "old.py").write_text(LEAK)
    (project / "pyproject.toml").write_text(
        '[tool.pooldoctor.lint]\nignore = ["PD209"]\nexclude = ["legacy/"]\n'
        'per-file-ignores = {"app/leak.py" = ["PD201"]}\n')
    assert run(capsys, ".")[:2] == (0, "")
    assert run(capsys, ".", "--isolated")[1].count("\n") == 3
    assert "PD201" in run(capsys, "legacy/old.py")[1]  # a file named explicitly is checked
    assert run(capsys, "legacy/old.py", "--force-exclude")[:2] == (0, "")  # pre-commit


@pytest.mark.parametrize("toml, fragment", [
    ('[tool.pooldoctor.lint]\nselect = ["PD999"]\n', "unknown lint code 'PD999'"),
    ('[tool.pooldoctor.lint]\nselekt = ["PD201"]\n', "unknown key 'selekt'"),
    ('[tool.pooldoctor.lint]\nignore = "PD201\n', "cannot read"),
    ('[tool.pooldoctor.lint]\nexclude = [1]\n', "exclude must be a list of strings"),
])
def test_bad_configuration_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str],
                                            toml: str, fragment: str) -> None:
    (project / "pyproject.toml").write_text(toml)
    code, _, err = run(capsys, "app")
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_a_pyproject_that_never_names_pooldoctor_is_not_parsed(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Other tools' settings are not read (TOML parsing cost a one-file lint more than its
    checks), so a mistake in them does not stop the lint; ours are read as before."""
    (project / "pyproject.toml").write_text('[tool.ruff]\nline-length = "100\n')
    code, out, err = run(capsys, "app")
    assert code == 1 and out.startswith("app/leak.py:4:12: PD201") and "cannot read" not in err
    (project / "pyproject.toml").write_text('[tool.ruff]\nline-length = "100\n'
                                            '[tool.pooldoctor.lint]\nignore = ["PD201"]\n')
    code, _, err = run(capsys, "app")
    assert code == 2 and "cannot read" in err


def test_gitignore_virtualenvs_and_tool_folders_are_skipped(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / ".git").mkdir()
    (project / ".gitignore").write_text("generated/\n*_pb2.py\n!keep_pb2.py\n")
    for folder in ("generated", "env", "node_modules", ".tox", "app/sub"):
        (project / folder).mkdir(parents=True)
    (project / "env" / "pyvenv.cfg").write_text("home = /usr\n")
    for path in ("generated/x.py", "env/x.py", "node_modules/x.py", ".tox/x.py",
                 "app/sub/msg_pb2.py", "app/sub/keep_pb2.py"):
        (project / path).write_text(LEAK)
    out = run(capsys, ".")[1]
    assert sorted(ln.split(":")[0] for ln in out.splitlines()) == ["app/leak.py",
                                                                   "app/sub/keep_pb2.py"]
    out = run(capsys, ".", "--no-gitignore")[1]
    assert "generated/x.py" in out and "env/x.py" not in out
    assert "generated/x.py" in run(capsys, "generated")[1]  # named on the command line


def test_exclude_option_and_exit_zero(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, ".", "--exclude", "leak.py")[:2] == (0, "")
    code, out, _ = run(capsys, ".", "--exit-zero")
    assert code == 0 and "PD201" in out


def test_explain_every_lint_code(capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(1, 12):
        code = f"PD2{n:02d}"
        try:
            main(["explain", code])
        except SystemExit as e:
            assert not e.code
        page = capsys.readouterr().out
        assert page.startswith(f"# {code} ")
        for section in ("## What it means", "## Why it hurts", "## Example", "## Fix",
                        "## Known false positives"):
            assert section in page, (code, section)


def test_pre_commit_hook_definition() -> None:
    yaml = pytest.importorskip("yaml")
    root = Path(__file__).resolve().parents[2]
    (hook,) = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "pooldoctor-lint" and hook["language"] == "python"
    assert hook["entry"].split()[:2] == ["pooldoctor", "lint"]
    assert "--force-exclude" in hook["entry"] and hook["types"] == ["python"]


def test_a_crashing_rule_costs_one_file_not_the_run(
        project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from pooldoctor.lint import checker

    real_load = checker.load

    def load(codes: frozenset[str]) -> list[object]:
        def boom(ctx: object) -> None:
            if str(getattr(ctx, "path", "")).endswith("ok.py"):
                raise KeyError("boom")
        return [*real_load(codes), boom]

    monkeypatch.delenv("POOLDOCTOR_DEBUG", raising=False)
    monkeypatch.setattr(checker, "load", load)
    (project / "app" / "ok.py").write_text("import sqlite3\n")  # parsed: it names a driver
    code, out, err = run(capsys, "app")
    assert code == 1 and out.startswith("app/leak.py:4:12: PD201")
    assert "app/ok.py: internal error while checking: KeyError: 'boom'" in err


def test_summary_of_a_clean_run_counts_the_files_checked(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "empty.py").write_text("")
    code, out, err = run(capsys, "empty.py")
    assert (code, out) == (0, "")
    assert err.strip() == "pooldoctor: no findings (1 file checked)"
    code, _, err = run(capsys, "app/ok.py", "empty.py")
    assert err.strip() == "pooldoctor: no findings (2 files checked)"
