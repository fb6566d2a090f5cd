"""The ``pooldoctor_allow`` marker and the labels in the plugin's messages."""

from __future__ import annotations

from typing import Any

import pytest

from pooldoctor.findings import CATALOGUE, Finding, Site


def allowed_codes(item: pytest.Item) -> set[str]:
    """The codes a test's ``pooldoctor_allow`` markers allow (``*``: all); fails on a typo."""
    out: set[str] = set()
    for mark in item.iter_markers("pooldoctor_allow"):
        codes = mark.kwargs.get("codes", mark.args[0] if mark.args else None)
        if codes is None:
            out.add("*")
            continue
        for c in [codes] if isinstance(codes, str) else codes:
            code = str(c).upper()
            if code not in CATALOGUE:
                pytest.fail(f"pooldoctor_allow on {item.nodeid}: unknown code {c!r}",
                            pytrace=False)
            out.add(code)
    return out


def count_text(findings: list[Finding]) -> str:
    n = len(findings)
    return f"{n} connection{'s' if n != 1 else ''}"


def fixture_label(fixturedef: pytest.FixtureDef[Any]) -> str:
    func = getattr(fixturedef, "func", None)
    code = getattr(getattr(func, "__wrapped__", func), "__code__", None)
    where = ""
    if code is not None:
        site = Site(code.co_filename, code.co_firstlineno, code.co_name)
        where = f", {site.short()}"
    return f"fixture {fixturedef.argname!r} ({fixturedef.scope} scope{where})"
