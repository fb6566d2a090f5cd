"""Which files to check: Python files under the given paths, minus ignored ones.

Skipped while walking a folder (never when a file is named on the command line):
virtualenvs (a folder with ``pyvenv.cfg``), the usual tool and build folders, hidden folders,
paths matched by ``.gitignore`` files (when asked) and by the configured ``exclude`` patterns.
Patterns follow ``.gitignore`` syntax: ``*``, ``**``, ``?``, ``[...]``, a leading ``/`` anchors,
a trailing ``/`` matches folders only, ``!`` re-includes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

from ..record import FrozenRecord

DEFAULT_EXCLUDES = frozenset({
    ".bzr", ".direnv", ".eggs", ".git", ".hg", ".mypy_cache", ".nox", ".pytype", ".ruff_cache",
    ".svn", ".tox", ".venv", "__pycache__", "__pypackages__", "_build", "buck-out", "build",
    "dist", "node_modules", "site-packages", "venv", ".pytest_cache",
})


class Pattern(FrozenRecord):
    """One compiled ``.gitignore``-style pattern, relative to ``base``."""

    __slots__ = ("_prefix", "base", "dir_only", "negate", "regex")
    _fields = ("base", "regex", "negate", "dir_only")
    base: str
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool
    _prefix: str  # base, absolute, with a trailing separator

    def __init__(self, base: str, regex: re.Pattern[str], negate: bool, dir_only: bool) -> None:
        set_ = object.__setattr__
        set_(self, "base", base)
        set_(self, "regex", regex)
        set_(self, "negate", negate)
        set_(self, "dir_only", dir_only)
        set_(self, "_prefix", os.path.join(os.path.abspath(base), ""))

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        if os.path.isabs(path):  # the common case, and much cheaper than relpath
            if not path.startswith(self._prefix):
                return False
            rel = path[len(self._prefix):].replace(os.sep, "/")
        else:
            rel = os.path.relpath(path, self.base).replace(os.sep, "/")
            if rel.startswith(".."):
                return False
        return bool(self.regex.match(rel))


def compile_pattern(line: str, base: str) -> Pattern | None:
    """Compile one line of a .gitignore (None for blanks and comments)."""
    line = line.rstrip("\n").rstrip()
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    if line.startswith("\\"):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = line.startswith("/") or "/" in line
    line = line.lstrip("/")
    regex = _translate(line)
    if not anchored:
        regex = r"(?:.*/)?" + regex
    return Pattern(base, re.compile(regex + r"(?:/.*)?$"), negate, dir_only)


def _translate(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**/", i):
            out.append(r"(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append(r"/.*")
            i += 3
        elif glob.startswith("**", i):
            out.append(r".*")
            i += 2
        elif c == "*":
            out.append(r"[^/]*")
            i += 1
        elif c == "?":
            out.append(r"[^/]")
            i += 1
        elif c == "[":
            j = glob.find("]", i + 1)
            if j == -1:
                out.append(r"\[")
                i += 1
            else:
                body = glob[i + 1:j].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def read_ignore_file(path: str) -> list[Pattern]:
    base = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return []
    return [p for p in (compile_pattern(line, base) for line in lines) if p is not None]


def ignored(path: str, is_dir: bool, patterns: Iterable[Pattern]) -> bool:
    """The last matching pattern decides (as in git)."""
    result = False
    for p in patterns:
        if p.matches(path, is_dir):
            result = not p.negate
    return result


def _git_root(start: str) -> str | None:
    cur = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(cur, ".git")):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def discover(paths: Iterable[str], excludes: Iterable[Pattern] = (),
             respect_gitignore: bool = True, force_exclude: bool = False) -> Iterator[str]:
    """Python files under ``paths``.

    Files named explicitly are always yielded, unless ``force_exclude`` applies the exclude
    patterns to them too (for pre-commit, which names every file).
    """
    excludes = list(excludes)
    seen: set[str] = set()
    for root in paths:
        if os.path.isfile(root):
            if force_exclude and any(ignored(parent, parent != root, excludes)
                                     for parent in _self_and_parents(root)):
                continue
            key = os.path.abspath(root)
            if key not in seen:
                seen.add(key)
                yield root
            continue
        if not os.path.isdir(root):
            raise FileNotFoundError(root)
        inherited: list[Pattern] = []
        if respect_gitignore:
            top = _git_root(root)
            cur = os.path.abspath(root)
            chain = []
            while top is not None:
                chain.append(cur)
                if cur == top:
                    break
                cur = os.path.dirname(cur)
            for folder in reversed(chain[1:]):  # parents of root, down from the git root
                inherited.extend(read_ignore_file(os.path.join(folder, ".gitignore")))
            # a folder named on the command line is checked even when it is ignored itself
            inherited = [p for p in inherited if not p.matches(root, True)]
        yield from _walk(root, excludes, inherited, respect_gitignore, seen)


def _self_and_parents(path: str) -> Iterator[str]:
    cur = os.path.abspath(path)
    while True:
        yield cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return
        cur = parent


def _walk(folder: str, excludes: list[Pattern], patterns: list[Pattern], gitignore: bool,
          seen: set[str]) -> Iterator[str]:
    if gitignore and os.path.isfile(os.path.join(folder, ".gitignore")):
        patterns = patterns + read_ignore_file(os.path.join(folder, ".gitignore"))
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    absolute = os.path.abspath(folder)  # patterns match absolute paths without relpath()
    for entry in entries:
        path = entry.path
        try:
            is_dir = entry.is_dir()
        except OSError:
            continue
        key = os.path.join(absolute, entry.name)
        if is_dir:
            if entry.name in DEFAULT_EXCLUDES or entry.name.startswith(".") \
                    or os.path.exists(os.path.join(path, "pyvenv.cfg")):
                continue
            if ignored(key, True, excludes) or ignored(key, True, patterns):
                continue
            yield from _walk(path, excludes, patterns, gitignore, seen)
        elif entry.name.endswith(".py"):
            if ignored(key, False, excludes) or ignored(key, False, patterns):
                continue
            if key not in seen:
                seen.add(key)
                yield path
