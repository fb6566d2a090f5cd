"""Static checker: finds leak patterns (PD201-PD211) in Python source without running it.

``lint_paths(paths)`` checks files and folders; ``lint_source(text)`` checks one string.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterable

from ..findings import Finding, Site
from ..record import Record
from .checker import FileResult, check_source
from .config import Config
from .discovery import discover
from .index import Externals
from .issues import Issue
from .rules import RULE_CODES

__all__ = ["RULE_CODES", "Config", "FileResult", "Issue", "LintRun", "lint_paths", "lint_source"]


class LintRun(Record):
    """The results of one run over many files."""

    __slots__ = _fields = ("results",)

    def __init__(self, results: list[FileResult] | None = None) -> None:
        self.results: list[FileResult] = [] if results is None else results

    @property
    def files(self) -> int:
        return len(self.results)

    @property
    def lines(self) -> int:
        return sum(r.lines for r in self.results)

    def issues(self) -> list[tuple[str, Issue]]:
        """``(path, issue)`` pairs in path, line, column order."""
        return [(r.path, i) for r in self.results for i in r.issues]

    def errors(self) -> list[tuple[str, str]]:
        """Files that could not be checked: ``(path, reason)``."""
        return [(r.path, r.error) for r in self.results if r.error]

    def findings(self) -> list[Finding]:
        out = []
        for path, issue in self.issues():
            site = Site(os.path.abspath(path), issue.line, issue.function, issue.column)
            out.append(Finding(issue.code, f"{issue.message}", site=site, stack=[site],
                               details={"path": path}))
        return out


def lint_source(text: str, path: str = "<string>",
                codes: Iterable[str] = RULE_CODES) -> list[Issue]:
    """Lint one module's source text."""
    result = check_source(path, text, frozenset(codes))
    if result.error:
        raise SyntaxError(f"{path}: {result.error}")
    run = LintRun([result])
    resolve_across_files(run)
    return run.results[0].issues


def lint_paths(paths: Iterable[str], config: Config | None = None,
               codes: Iterable[str] | None = None, jobs: int | None = None,
               prefilter: bool = True) -> LintRun:
    """Lint files and folders (folders are walked, see ``discovery``) as one project: factories,
    closers and generators of one module are followed into the others (``project.py``).
    ``jobs``: worker processes (default: one per core when the run is large enough to pay);
    ``prefilter``: files that mention no database word are not parsed (``prefilter.py``)."""
    was_collecting = gc.isenabled()
    gc.disable()  # see _run
    try:
        return _run(paths, config, codes, jobs, prefilter)
    finally:
        if was_collecting:
            gc.enable()


def _run(paths: Iterable[str], config: Config | None, codes: Iterable[str] | None,
         jobs: int | None, prefilter: bool) -> LintRun:
    """``lint_paths`` with the cyclic garbage collector off: the checker makes no reference
    cycles (trees, indexes and results are freed by their reference counts), and the collector
    would only scan, again and again, the large trees of the files in progress (about 15 % of
    the CPU on SQLAlchemy's sources). Worker processes run with it off too."""
    from .parallel import check_many
    from .project import Project

    config = config or Config()
    chosen = frozenset(codes) if codes is not None else config.codes()
    todo = [(path, display_path(path), config.codes_for(path, chosen))
            for path in discover(paths, config.exclude, config.respect_gitignore,
                                 config.force_exclude)]
    results = check_many([(p, d, c, None, prefilter) for p, d, c in todo], jobs)
    _check_skipped_users(todo, results, jobs)
    project = Project(r.summary for r in results if r.summary is not None)
    again: list[int] = []
    externals = []
    for n, r in enumerate(results):
        if r.summary is None:
            continue
        ext = project.externals(r.summary)
        if (ext or (ext.plain and any(i.code == "PD211" for i in r.issues))) \
                and _mentions(todo[n][0], ext):
            again.append(n)
            externals.append(ext)
    if again:
        redone = check_many([(*todo[n], ext, False) for n, ext in zip(again, externals)],
                            jobs)
        for n, r in zip(again, redone):
            results[n] = r
    run = LintRun(results)
    resolve_across_files(run)
    return run


def _check_skipped_users(todo: list[tuple[str, str, frozenset[str]]],
                         results: list[FileResult], jobs: int | None) -> None:
    """Check the files the prefilter skipped that name something another module offers (a
    factory, closer, generator, engine builder, scoped_session), until no new name appears."""
    from . import prefilter
    from .parallel import check_many
    from .project import Project

    skipped = [n for n, r in enumerate(results) if r.skipped]
    seen: set[str] = set()
    while skipped:
        summaries = [r.summary for r in results if r.summary is not None]
        project = Project(summaries)  # resolves the wrappers of factories into factories
        scoped = {i.subject for r in results for i in r.issues if i.code == "PD206" and i.subject}
        new = prefilter.names(summaries, scoped, project.pass_callees) - seen
        seen |= new
        pattern = prefilter.pattern(new)
        if pattern is None:
            return
        hits = [n for n in skipped if pattern.search(_read(todo[n][0])) is not None]
        if not hits:
            return
        redone = check_many([(*todo[n], None, False) for n in hits], jobs)
        for n, r in zip(hits, redone):
            results[n] = r
        skipped = [n for n in skipped if results[n].skipped]


def _mentions(path: str, ext: Externals) -> bool:
    """Does the file name anything ``ext`` offers? A module that imports another only for
    names that are not factories needs no second look (9 of 19 files in SQLAlchemy)."""
    from . import prefilter

    names = ext.names() | ext.plain | {k.rsplit(".", 1)[-1] for k in ext.classes}
    pattern = prefilter.pattern(names)
    return pattern is not None and pattern.search(_read(path)) is not None


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def resolve_across_files(run: LintRun) -> None:
    """PD206: a scoped_session removed in another checked file is removed."""
    removed: set[str] = set()
    for r in run.results:
        removed |= r.remove_refs
    for r in run.results:
        if any(i.code == "PD206" for i in r.issues):
            r.issues = [i for i in r.issues if not (i.code == "PD206" and i.subject in removed)]


def display_path(path: str) -> str:
    """The path relative to the working directory when it is inside it."""
    if not os.path.isabs(path):
        return os.path.normpath(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
