"""How the pytest plugin tells what a test left behind: the text, failing or warning, and the
PD303 finding of server connections no hold explains."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

import pytest

from pooldoctor.findings import Finding, Site
from pooldoctor.guard import GUARD
from pooldoctor.pytest_plugin.common import ConnectionLeakWarning
from pooldoctor.pytest_plugin.labels import count_text
from pooldoctor.reports import Report

if TYPE_CHECKING:
    from pooldoctor.pytest_plugin.server import Growth, ServerCounter


def leak_text(who: str, findings: list[Finding], after: str = "",
              marker_hint: bool = True) -> str:
    """The failure's or warning's text: the first finding in one line, then the report."""
    codes = sorted({f.code for f in findings})
    first = findings[0]
    where = f" at {first.where()}" if first.site else ""
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    text = (f"{who} {count_text(findings)} behind{after}: {first.code}{where}{more}\n"
            + Report(findings).render_text(color=False).rstrip())
    if marker_hint:
        text += ("\n(to accept this in one test: @pytest.mark.pooldoctor_allow("
                 f"codes={codes!r}, reason=...))")
    return text


def complain(mode: str, text: str) -> None:
    """Fail the running phase (mode 'fail') or warn (mode 'warn')."""
    if mode == "warn":
        try:
            warnings.warn(ConnectionLeakWarning(text), stacklevel=1)
            return
        except ConnectionLeakWarning as e:  # escalated with -W error: no plugin traceback
            text = str(e)
    try:
        pytest.fail(text, pytrace=False)
    except pytest.fail.Exception as e:
        e.pooldoctor = True  # type: ignore[attr-defined]
        raise


def known_server_ids() -> set[int]:
    """The server ids of the connections the live holds use."""
    return {h.server_id for h in GUARD.ledger.holds()
            if h.server_id is not None and not h.ended}


def growth_finding(server: ServerCounter, growth: Growth, item: pytest.Item) -> Finding:
    """PD303: server connections of this process no pool or hold accounts for grew during
    the test ``item``."""
    path, line, _ = item.location
    site = Site(str(item.path) if hasattr(item, "path") else path, (line or 0) + 1,
                item.name)
    return Finding(
        code="PD303",
        message=(f"{server.label} connections of this process that no pool or hold "
                 f"accounts for grew from {growth.before} to {growth.after} during test "
                 f"{item.nodeid}; server connection ids: "
                 + ", ".join(f"{i} (matched by {how})"
                             for i, how in sorted(growth.matched_by.items()))),
        site=site, pids=[os.getpid()],
        details={"server": server.url, "before": growth.before,
                 "after": growth.after, "server_ids": sorted(growth.ids),
                 "matched_by": growth.matched_by})
