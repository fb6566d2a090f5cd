"""`.gitignore`-style patterns used for excludes."""

from __future__ import annotations

import os

import pytest

from pooldoctor.lint.discovery import compile_pattern, ignored

BASE = os.path.abspath("/repo")


@pytest.mark.parametrize("pattern, path, is_dir, hit", [
    ("build/", "build", True, True),
    ("build/", "build", False, False),  # dir-only pattern, a file named build
    ("build/", "src/build", True, True),  # unanchored: any depth
    ("/build", "src/build", True, False),  # anchored to the base
    ("/build", "build/x.py", False, True),  # inside an ignored folder
    ("*.py", "a/b/c.py", False, True),
    ("*_pb2.py", "pkg/msg_pb2.py", False, True),
    ("docs/*.py", "docs/a.py", False, True),
    ("docs/*.py", "docs/sub/a.py", False, False),  # * does not cross /
    ("docs/**/*.py", "docs/sub/deep/a.py", False, True),
    ("**/migrations", "app/db/migrations", True, True),
    ("a?c.py", "abc.py", False, True),
    ("[ab].py", "b.py", False, True),
    ("[!ab].py", "b.py", False, False),
])
def test_pattern(pattern: str, path: str, is_dir: bool, hit: bool) -> None:
    p = compile_pattern(pattern, BASE)
    assert p is not None
    assert p.matches(os.path.join(BASE, path), is_dir) is hit


def test_comments_blanks_and_negation() -> None:
    assert compile_pattern("# comment", BASE) is None
    assert compile_pattern("   ", BASE) is None
    patterns = [p for p in (compile_pattern(x, BASE) for x in ("*.py", "!keep.py")) if p]
    assert ignored(os.path.join(BASE, "x.py"), False, patterns)
    assert not ignored(os.path.join(BASE, "keep.py"), False, patterns)


def test_paths_outside_the_base_never_match() -> None:
    p = compile_pattern("*.py", BASE)
    assert p is not None and not p.matches(os.path.abspath("/elsewhere/x.py"), False)
