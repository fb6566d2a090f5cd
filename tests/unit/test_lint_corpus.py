"""Recall and precision of `pooldoctor lint` over tests/lint_corpus (`# expect:` markers)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pooldoctor.lint import RULE_CODES, lint_paths

CORPUS = Path(__file__).resolve().parents[1] / "lint_corpus"
_EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>PD\d{3}(?:\s*,\s*PD\d{3})*)")


def expected() -> set[tuple[str, int, str]]:
    out = set()
    for path in sorted(CORPUS.rglob("*.py")):
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            m = _EXPECT.search(line)
            if m:
                for code in m.group("codes").split(","):
                    out.add((path.name, n, code.strip()))
    return out


@pytest.fixture(scope="module")
def found() -> set[tuple[str, int, str]]:
    run = lint_paths([str(CORPUS)])
    assert run.errors() == []
    return {(Path(p).name, i.line, i.code) for p, i in run.issues()}


def test_every_rule_has_bad_cases_in_the_corpus() -> None:
    codes = {code for _, _, code in expected()}
    assert codes == set(RULE_CODES)


def test_recall_and_precision_are_total(found: set[tuple[str, int, str]]) -> None:
    want = expected()
    tp = want & found
    missed = sorted(want - found)
    extra = sorted(found - want)
    recall = len(tp) / len(want)
    precision = len(tp) / len(found) if found else 1.0
    assert (missed, extra) == ([], []), f"recall {recall:.1%} precision {precision:.1%}"
    assert recall == precision == 1.0


@pytest.mark.parametrize("code", RULE_CODES)
def test_each_rule_alone_finds_exactly_its_lines(code: str) -> None:
    run = lint_paths([str(CORPUS)], codes=[code])
    got = {(Path(p).name, i.line, i.code) for p, i in run.issues()}
    assert got == {e for e in expected() if e[2] == code}


def test_good_files_stay_silent() -> None:
    silent = [p for p in CORPUS.glob("*.py") if "# expect:" not in p.read_text("utf-8")]
    assert silent, "the corpus has files with no finding at all"
    run = lint_paths([str(p) for p in silent])
    assert run.issues() == []


@pytest.mark.slow
def test_a_large_real_tree_is_checked_without_errors() -> None:
    """SQLAlchemy's own source: every file checked; what is reported was reviewed (docs/lint.md)."""
    import sqlalchemy

    tree = Path(sqlalchemy.__file__).parent
    run = lint_paths([str(tree)])
    assert run.errors() == []
    assert run.files > 200 and run.lines > 100_000
    assert len(run.issues()) <= 10  # precision guard: 3 reviewed findings at SQLAlchemy 2.1.9
