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
