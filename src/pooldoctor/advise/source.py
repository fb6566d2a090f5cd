"""Read pool settings from source: literal keyword arguments of ``create_engine(...)`` calls.

A small, self-contained AST reader (the linter has its own engine): it finds calls named
``create_engine`` / ``create_async_engine`` (plain or as an attribute), keeps the keyword
arguments whose values are literals, and names the ones it had to skip.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..findings import Site
from ..urls import mask_url

ENGINE_FUNCTIONS = frozenset({"create_engine", "create_async_engine"})
# create_engine keyword -> PoolConfig field
KEYWORDS = {"pool_size": "pool_size", "max_overflow": "max_overflow",
            "pool_timeout": "pool_timeout", "pool_recycle": "pool_recycle",
            "pool_pre_ping": "pre_ping", "poolclass": "pool_class"}
SKIP_DIRS = frozenset({".git", ".venv", "venv", "env", "node_modules", "__pycache__",
                       "site-packages", ".tox", ".nox", "build", "dist"})


@dataclass
class EngineCall:
    """One ``create_engine(...)`` call and what could be read from it."""

    site: Site
    settings: dict[str, Any] = field(default_factory=dict)  # PoolConfig field -> value
    skipped: list[str] = field(default_factory=list)  # keywords whose value is not a literal
    url: str | None = None  # masked literal URL
    backend: str | None = None  # "postgresql" | "mysql" | "sqlite" | ...

    def describe(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings.items()) or "no pool keywords"
        return f"{self.site.short()}: {shown}"


def iter_python_files(path: str) -> Iterator[str]:
    """``path`` itself if it is a file, else every ``*.py`` below it (skipping venvs)."""
    if os.path.isfile(path):
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".py"):
                yield os.path.join(root, name)


def find_engine_calls(path: str) -> tuple[list[EngineCall], list[str]]:
    """Every engine call under ``path`` and notes about files that could not be read."""
    calls: list[EngineCall] = []
    notes: list[str] = []
    for file in iter_python_files(path):
        try:
            with open(file, encoding="utf-8") as fh:
                text = fh.read()
            tree = ast.parse(text, filename=file)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as e:
            notes.append(f"skipped {file}: {type(e).__name__}: {e}".splitlines()[0])
            continue
        visitor = _Visitor(os.path.abspath(file))
        visitor.visit(tree)
        calls.extend(visitor.calls)
    return calls, notes


def backend_of(url: str) -> str | None:
    scheme = url.split("://", 1)[0] if "://" in url else url.split(":", 1)[0]
    name = scheme.split("+", 1)[0].lower()
    if name == "mariadb":
        return "mysql"
    if name == "postgres":
        return "postgresql"
    return name or None


class _Visitor(ast.NodeVisitor):
    def __init__(self, file: str) -> None:
        self.file = file
        self.functions: list[str] = []
        self.calls: list[EngineCall] = []

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = _scoped
    visit_AsyncFunctionDef = _scoped
    visit_ClassDef = _scoped

    def visit_Call(self, node: ast.Call) -> None:
        if _callee(node.func) in ENGINE_FUNCTIONS:
            self.calls.append(self._read(node))
        self.generic_visit(node)

    def _read(self, node: ast.Call) -> EngineCall:
        site = Site(self.file, node.lineno,
                    ".".join(self.functions) if self.functions else "<module>", node.col_offset)
        call = EngineCall(site)
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(
                node.args[0].value, str):
            call.url = mask_url(node.args[0].value)
            call.backend = backend_of(node.args[0].value)
        for kw in node.keywords:
            if kw.arg is None:
                call.skipped.append("**" + (_callee(kw.value) or "kwargs"))
                continue
            target = KEYWORDS.get(kw.arg)
            if target is None:
                continue
            if kw.arg == "poolclass":
                name = _callee(kw.value)
                if name:
                    call.settings[target] = name
                else:
                    call.skipped.append(kw.arg)
                continue
            try:
                value = ast.literal_eval(kw.value)
            except (ValueError, SyntaxError, TypeError):
                call.skipped.append(kw.arg)
                continue
            if target == "pre_ping":
                call.settings[target] = bool(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                call.settings[target] = value
            else:
                call.skipped.append(kw.arg)
        return call


def _callee(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None
