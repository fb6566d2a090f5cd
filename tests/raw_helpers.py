"""Helpers shared by the raw-driver tests (unit and integration)."""

from __future__ import annotations

import time
from typing import Any

import pooldoctor


def raw_holds() -> list[dict[str, Any]]:
    return [h for h in pooldoctor.holds() if h["kind"] == "connection"]


def codes() -> list[str]:
    return [f.code for f in pooldoctor.report().findings]


def wait_for(code: str, deadline: float = 5.0) -> pooldoctor.Finding:
    """Poll the report until a finding with ``code`` appears, or fail at the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for f in pooldoctor.report().findings:
            if f.code == code:
                return f
        time.sleep(0.01)
    raise AssertionError(f"no {code} within {deadline} s: {codes()}")
