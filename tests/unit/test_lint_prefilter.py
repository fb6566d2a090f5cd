"""The prefilter: files without a database word are not parsed, and nothing is lost by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pooldoctor.lint import lint_paths
from pooldoctor.lint.prefilter import relevant

CORPUS = Path(__file__).parent.parent / "lint_corpus"

# a project whose users of a factory say no database word: they are checked because they name
# what another module offers (a factory, a wrapper of it, a re-export, a scoped_session)
PROJECT = {
    "app/__init__.py": "",
    "app/db.py": "import sqlite3\n\ndef make_handle(path):\n    return sqlite3.connect(path)\n",
    "app/wrap.py": "from .db import make_handle\n\n"
                   "def default_handle():\n    return make_handle('x.db')\n",
    "app/use.py": "from .wrap import default_handle\n\n"
                  "def job():\n    h = default_handle()\n    h.execute('select 1')\n",
    "app/again/__init__.py": "from ..db import make_handle as mk\n",
    "app/use2.py": "from .again import mk\n\ndef job2():\n    h = mk('y.db')\n    return 1\n",
    "app/fine.py": "from .wrap import default_handle\n\n"
                   "def job3():\n    h = default_handle()\n    try:\n"
                   "        h.execute('select 1')\n    finally:\n        h.close()\n",
    "app/sess.py": "from sqlalchemy.orm import scoped_session, sessionmaker\n\n"
                   "Registry = scoped_session(sessionmaker())\n",
    "app/teardown.py": "from .sess import Registry\n\ndef teardown(exc):\n    Registry.remove()\n",
    "app/runner.py": "def run_with(make):\n    h = make()\n    return h.execute('select 1')\n",
    "app/use3.py": "from .db import make_handle\nfrom .runner import run_with\n\n"
                   "def job4():\n    return run_with(make_handle)\n",
    "app/store.py": "import sqlite3\n\nclass Store:\n    def handle(self):\n"
                    "        return sqlite3.connect('s.db')\n",
    "app/use4.py": "from .store import Store\n\ndef job5():\n    h = Store().handle()\n"
                   "    return 1\n",
    "app/plain.py": "def add(a, b):\n    return a + b\n",
    "app/notes.py": "def broken(:\n",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, text in PROJECT.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _found(run: object) -> list[tuple[str, int, str, str]]:
    return [(p, i.line, i.code, i.message) for p, i in run.issues()]  # type: ignore[attr-defined]


def test_users_without_a_database_word_are_followed(project: Path) -> None:
    run = lint_paths(["app"], jobs=1)
    found = {(p, line, code) for p, line, code, _ in _found(run)}
    assert found == {("app/use.py", 4, "PD201"), ("app/use2.py", 4, "PD201"),
                     ("app/runner.py", 2, "PD201"), ("app/use4.py", 4, "PD201")}
    skipped = sorted(r.path for r in run.results if r.skipped)
    assert skipped == ["app/__init__.py", "app/notes.py", "app/plain.py"]
    assert run.errors() == []  # a syntax error in a file of no database word is not ours
    assert run.files == len(PROJECT) and run.lines == sum(
        len(t.splitlines()) for t in PROJECT.values())


def test_the_same_findings_with_and_without_the_prefilter(project: Path) -> None:
    with_it = lint_paths(["app"], jobs=1)
    without = lint_paths(["app"], jobs=1, prefilter=False)
    assert _found(with_it) == _found(without)
    assert [p for p, _ in without.errors()] == ["app/notes.py"]


def test_the_corpus_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    with_it = lint_paths(["."], jobs=1)
    without = lint_paths(["."], jobs=1, prefilter=False)
    assert _found(with_it) and _found(with_it) == _found(without)


@pytest.mark.parametrize("text", [
    b"import sqlite3\n", b"from app.database import get_db\n", b"x.dispose()\n",
    b"URL = 'redis://a:b@h'\n", b"value = next(gen())\n", b"from .models import *\n",
    b"MAX_OVERFLOW = 3\n", b"with x.begin():\n    pass\n", b"Session = sessionmaker()\n",
])
def test_database_words_make_a_file_relevant(text: bytes) -> None:
    assert relevant(text)


@pytest.mark.parametrize("text", [
    b"def add(a, b):\n    return a + b\n", b"import os\nprint(os.getcwd())\n",
    b"from .utils import make_handle\n",
])
def test_files_without_them_are_not(text: bytes) -> None:
    assert not relevant(text)


def test_workers_find_the_same_and_the_collector_is_given_back(project: Path) -> None:
    import gc

    alone = _found(lint_paths(["app"], jobs=1))
    assert gc.isenabled()  # lint_paths turns the cyclic collector off only while it runs
    assert _found(lint_paths(["app"], jobs=2)) == alone
    gc.disable()
    try:
        lint_paths(["app"], jobs=1)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
