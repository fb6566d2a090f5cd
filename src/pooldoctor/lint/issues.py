"""What a rule reports: a code at a line and column, before it becomes a Finding."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Issue:
    """One lint result inside one file (line and column are 1-based)."""

    code: str
    line: int
    column: int
    message: str
    function: str | None = None
    subject: str | None = None  # what the issue is about, for checks across files (PD206)


@dataclass(frozen=True)
class Kind:
    """A kind of resource and how it is closed."""

    code: str  # PD201 (DB-API), PD202 (cursor), PD203 (SQLAlchemy)
    label: str  # what opened it, for messages: "sqlite3.connect()"
    noun: str  # "connection", "session", "cursor"
    with_closes: bool = True  # does `with x:` close it?
    driver: str = ""
    slot: int = -1  # -1: the value itself; n: item n of the tuple returned by a factory
