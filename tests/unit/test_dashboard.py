"""Dashboard pieces without a server: history sampling, grouping, binding rules, code pages."""

from __future__ import annotations

import pytest

from pooldoctor.dashboard.auth import _host_name, check_bind
from pooldoctor.dashboard.data import code_page, group_by_site
from pooldoctor.dashboard.history import History


def test_history_samples_at_most_once_per_interval() -> None:
    h = History(interval=1.0, maxlen=3)
    row = {"key": "p", "used": 2, "idle": 1, "overflow": 0, "waiting": 0}
    assert h.add([row], now=100.0)
    assert not h.add([dict(row, used=5)], now=100.5)  # too soon: not recorded
    assert h.add([dict(row, used=3)], now=101.0)
    for t in (102.0, 103.0):
        assert h.add([row], now=t)
    s = h.series("p")
    assert s["t"] == [101.0, 102.0, 103.0]  # the oldest fell off (maxlen 3)
    assert s["used"] == [3, 2, 2] and s["idle"] == [1, 1, 1]
    assert h.series("p", last=1)["t"] == [103.0] and h.series("p", last=0)["t"] == []
    assert h.series("unknown") == {"t": [], "used": [], "idle": [], "overflow": [],
                                   "waiting": []}


def _hold(line: int | None, age: float, pid: int = 1) -> dict[str, object]:
    site = None if line is None else {"file": "/app/db.py", "line": line, "function": "f"}
    return {"site": site, "age_s": age, "pid": pid, "pool": "sqlite://"}


def test_holds_are_grouped_by_site_oldest_first() -> None:
    groups = group_by_site([_hold(10, 1.0), _hold(20, 9.0), _hold(10, 5.0, pid=2),
                            _hold(None, 0.5)])
    assert [g["site"] and g["site"]["line"] for g in groups] == [20, 10, None]
    ten = groups[1]
    assert ten["count"] == 2 and ten["oldest_s"] == 5.0 and sorted(ten["pids"]) == [1, 2]
    assert [h["age_s"] for h in ten["holds"]] == [5.0, 1.0]
    assert groups[2]["where"] == "an unknown site"
    assert group_by_site([]) == []


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None)


@pytest.mark.parametrize("host, token, needle", [
    ("0.0.0.0", None, "without --token"),
    ("192.0.2.7", "", "without --token"),
    ("0.0.0.0", "short", "at least 8"),
    ("", None, "needs a host"),
])
def test_binding_beyond_loopback_needs_a_token(host: str, token: str | None,
                                               needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        check_bind(host, token)
    check_bind("0.0.0.0", "a-long-enough-token")


@pytest.mark.parametrize("value, host", [
    ("127.0.0.1:8765", "127.0.0.1"), ("localhost", "localhost"), ("[::1]:80", "[::1]"),
    ("evil.example:8765", "evil.example"), ("", ""),
])
def test_host_header_parsing(value: str, host: str) -> None:
    assert _host_name(value) == host


def test_code_page_has_the_explanation_and_the_fix() -> None:
    page = code_page("pd103")
    assert page is not None and page["code"] == "PD103" and page["hint"]
    assert "## Fix" in page["markdown"] and "## What it means" in page["markdown"]
    assert code_page("PD000") is None
