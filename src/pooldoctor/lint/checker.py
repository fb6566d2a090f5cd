"""Check one source file: parse (never import or run), index, apply the rules, honour noqa."""

from __future__ import annotations

import ast
import os
import re
import warnings

from ..lazyre import lazy
from ..record import Record
from .context import build
from .index import Externals, Summary
from .issues import Issue
from .prefilter import relevant
from .rules import RULE_CODES, load

_NOQA = lazy(r"#\s*noqa(?::\s*(?P<codes>[A-Za-z]+[0-9]+(?:\s*,\s*[A-Za-z]+[0-9]+)*))?",
             re.IGNORECASE)


class FileResult(Record):
    """The issues of one file, or why it could not be checked."""

    __slots__ = _fields = ("path", "issues", "error", "lines", "remove_refs", "summary",
                           "skipped")

    def __init__(self, path: str, issues: list[Issue] | None = None, error: str | None = None,
                 lines: int = 0, remove_refs: set[str] | None = None,
                 summary: Summary | None = None, skipped: bool = False) -> None:
        self.path = path
        self.issues: list[Issue] = [] if issues is None else issues
        self.error = error
        self.lines = lines
        self.remove_refs: set[str] = set() if remove_refs is None else remove_refs  # PD206
        self.summary = summary  # what the module offers the others (project.py)
        self.skipped = skipped  # not parsed: mentions no database word (prefilter.py)


def decode(data: bytes) -> str:
    """Source bytes to text: a PEP 263 coding cookie, else UTF-8 (raises UnicodeDecodeError)."""
    import io
    import tokenize

    if b"\0" in data:
        raise ValueError("binary file (NUL byte)")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as e:
        raise ValueError(str(e)) from None
    return data.decode(encoding)


def noqa_codes(line: str) -> frozenset[str] | None:
    """None when the line has no noqa; an empty set for a bare ``# noqa`` (all codes)."""
    if "noqa" not in line and "NOQA" not in line:
        return None
    m = _NOQA.search(line)
    if m is None:
        return None
    codes = m.group("codes")
    if not codes:
        return frozenset()
    return frozenset(c.strip().upper() for c in codes.split(","))


def check_source(path: str, text: str, codes: frozenset[str] = frozenset(RULE_CODES),
                 external: Externals | None = None, summarize: bool = False) -> FileResult:
    """Lint ``text`` (the content of ``path``) for ``codes``; ``external``: what the other
    modules of the run offer; ``summarize``: keep what this module offers them."""
    lines = text.splitlines()
    result = FileResult(path, lines=len(lines))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes etc. are not ours to report
            tree = ast.parse(text, filename=path)
    except SyntaxError as e:
        where = f"line {e.lineno}: " if e.lineno else ""
        result.error = f"cannot parse: {where}{e.msg}"
        return result
    except (ValueError, RecursionError, MemoryError) as e:
        result.error = f"cannot parse: {type(e).__name__}: {e}"
        return result
    try:
        ctx = build(path, tree, lines, external)
        for check in load(frozenset(codes)):
            check(ctx)
        if summarize:
            from .project import summarize as summarize_module

            result.summary = summarize_module(ctx)
    except RecursionError:
        result.error = "cannot check: the code is nested too deeply"
        return result
    except Exception as e:  # a bug of ours must not stop the run over the other files
        if os.environ.get("POOLDOCTOR_DEBUG"):
            raise
        result.error = f"internal error while checking: {type(e).__name__}: {e} " \
                       "(set POOLDOCTOR_DEBUG=1 for the traceback)"
        return result
    result.remove_refs = {name for name, attr in ctx.attr_refs if attr == "remove"}
    kept: list[Issue] = []
    seen: set[tuple[str, int, int]] = set()
    for issue in sorted(ctx.issues, key=lambda i: (i.line, i.column, i.code)):
        if issue.code not in codes:
            continue
        key = (issue.code, issue.line, issue.column)
        if key in seen:
            continue
        seen.add(key)
        if 0 < issue.line <= len(lines):
            suppressed = noqa_codes(lines[issue.line - 1])
            if suppressed is not None and (not suppressed or issue.code in suppressed):
                continue
        kept.append(issue)
    result.issues = kept
    return result


def check_file(path: str, display: str | None = None,
               codes: frozenset[str] = frozenset(RULE_CODES),
               external: Externals | None = None, summarize: bool = False,
               prefilter: bool = False) -> FileResult:
    """Read and lint one file; unreadable or unparsable files give a result with ``error``.
    ``prefilter``: a file without a database word is decoded but not parsed (``skipped``)."""
    name = display or path
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        text = decode(data)
        if prefilter and not relevant(data):
            return FileResult(name, lines=len(text.splitlines()), skipped=True)
    except UnicodeDecodeError as e:
        return FileResult(name, error=f"cannot parse: not valid {e.encoding} text "
                                      f"(byte {e.start})")
    except (OSError, ValueError, LookupError) as e:
        reason = (e.strerror or str(e)).lower() if isinstance(e, OSError) else str(e)
        return FileResult(name, error=f"cannot parse: {reason}")
    return check_source(name, text, codes, external, summarize)
