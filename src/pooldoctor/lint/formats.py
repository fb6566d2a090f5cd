"""Renderers for a lint run: text (``path:line:col: CODE message``), JSON report, SARIF 2.1.0."""

from __future__ import annotations

import os

from ..findings import CATALOGUE, doc_page
from . import LintRun

# json, pathlib, urllib.parse, reports and urls are imported by the renderers that use them:
# a clean one-file text run (a pre-commit hook) needs none of them.
from .rules import RULE_CODES

TYPE_CHECKING = False  # no typing at run time (start-up: docs/benchmarks.md)
if TYPE_CHECKING:
    from typing import Any

# Where each code's page is published (docs/codes/PDxxx.md in the repository).
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_text(run: LintRun) -> str:
    lines = [f"{path}:{i.line}:{i.column}: {i.code} {i.message}" for path, i in run.issues()]
    if not lines:
        return ""
    from ..urls import mask_text

    return mask_text("\n".join(lines) + "\n")


def summary(run: LintRun) -> str:
    """``pooldoctor: 2 findings in 1 file (3 files checked, 1 could not be checked)``."""
    n = len(run.issues())
    files = len({p for p, _ in run.issues()})
    errors = len(run.errors())
    ok = run.files - errors
    checked = f"{ok} file{'s' if ok != 1 else ''} checked"
    if errors:
        checked += f", {errors} could not be checked"
    if not n:
        return f"pooldoctor: no findings ({checked})"
    return (f"pooldoctor: {n} finding{'s' if n != 1 else ''} in {files} "
            f"file{'s' if files != 1 else ''} ({checked})")


def render_json(run: LintRun) -> str:
    from ..reports import Report

    extra = {"lint": {
        "files": run.files,
        "lines": run.lines,
        "errors": [{"file": p, "message": e} for p, e in run.errors()],
    }}
    return Report(run.findings(), [], extra).to_json()


def _uri(path: str, root: str) -> str:
    from pathlib import Path
    from urllib.parse import quote

    absolute = os.path.abspath(path)
    try:
        rel = os.path.relpath(absolute, root)
    except ValueError:
        rel = absolute
    if rel.startswith(".."):
        return Path(absolute).as_uri()
    return quote(rel.replace(os.sep, "/"))


def sarif_dict(run: LintRun, root: str | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log fit for GitHub code scanning (paths relative to ``root``)."""
    from pathlib import Path

    from ..reports import tool_version
    from ..urls import mask_text

    root = os.path.abspath(root or os.getcwd())
    rules = []
    index = {}
    for n, code in enumerate(RULE_CODES):
        c = CATALOGUE[code]
        index[code] = n
        rules.append({
            "id": code,
            "name": "".join(w.capitalize() for w in c.name.split("-")),
            "shortDescription": {"text": c.title},
            "fullDescription": {"text": f"{c.title}. Fix: {c.hint}."},
            "help": {"text": f"{c.hint}. See `pooldoctor explain {code}`.",
                     "markdown": doc_page(code) or f"{c.hint}."},
            "defaultConfiguration": {"level": _LEVEL[c.severity]},
            "properties": {"tags": ["reliability", "database", "connection-leak"],
                           "problem.severity": c.severity},
        })
    results = []
    for path, i in run.issues():
        c = CATALOGUE[i.code]
        results.append({
            "ruleId": i.code,
            "ruleIndex": index[i.code],
            "level": _LEVEL[c.severity],
            "message": {"text": mask_text(i.message)},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(path, root), "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": i.line, "startColumn": i.column},
            }}],
        })
    notifications = [{
        "level": "error",
        "message": {"text": e},
        "locations": [{"physicalLocation": {"artifactLocation": {
            "uri": _uri(p, root), "uriBaseId": "%SRCROOT%"}}}],
    } for p, e in run.errors()]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "pooldoctor",
                "version": tool_version(),
                "semanticVersion": tool_version(),
                "rules": rules,
            }},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(root).as_uri() + "/"}},
            "invocations": [{"executionSuccessful": True,
                             "toolExecutionNotifications": notifications}],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }


def render_sarif(run: LintRun, root: str | None = None) -> str:
    import json

    return json.dumps(sarif_dict(run, root), indent=2)
