"""The alarms PD301-PD305 over synthetic snapshots: what they report and what they must not."""

from __future__ import annotations

import pytest

from pooldoctor.server.model import ACTIVE, IDLE, IDLE_TXN, ServerConn, Snapshot
from pooldoctor.server.watch import Thresholds, Watcher

URL = "postgresql://app@db:5432/app"


def snap(conns: list[ServerConn], max_connections: int = 100, reserved: int = 3,
         rejected: int | None = None, at: float = 0.0) -> Snapshot:
    return Snapshot("postgresql", URL, "16", taken_at=at, max_connections=max_connections,
                    reserved=reserved, conns=conns, rejected_total=rejected)


def conn(i: int, state: str = IDLE, state_s: float = 1.0, user: str = "app",
         app: str | None = "api", own: bool = False, **kw: object) -> ServerConn:
    return ServerConn(i, user=user, database="app", client="10.0.0.1", application=app,
                      state=state, connected_s=100.0, state_s=state_s, own=own, **kw)  # type: ignore[arg-type]


def codes(findings: list) -> list[str]:  # type: ignore[type-arg]
    return [f.code for f in findings]


# ----------------------------------------------------------------------------- PD301


def test_pd301_near_the_limit_counts_reserved_slots() -> None:
    conns = [conn(i) for i in range(78)]  # 78 of 97 = 80.4 %
    found = Watcher().observe(snap(conns))
    assert codes(found) == ["PD301"]
    f = found[0]
    assert "78 of 97" in f.message and "max_connections=100, reserved=3" in f.message
    assert f.details["limit"] == 97 and f.details["by_user"] == {"app": 78}


def test_pd301_not_below_the_threshold() -> None:
    assert Watcher().observe(snap([conn(i) for i in range(77)])) == []  # 79.4 %
    assert Watcher(Thresholds(near=0.9)).observe(snap([conn(i) for i in range(80)])) == []


# ----------------------------------------------------------------------------- PD302 / PD304


def test_pd302_idle_in_transaction_beyond_the_limit_only() -> None:
    conns = [conn(1, IDLE_TXN, 61.0), conn(2, IDLE_TXN, 59.0), conn(3, IDLE, 500.0),
             conn(4, ACTIVE, 900.0, xact_s=900.0)]
    found = Watcher().observe(snap(conns))
    assert codes(found) == ["PD302"]
    assert [c["id"] for c in found[0].details["connections"]] == [1]
    assert "1 connection idle in transaction longer than 60.0 s" in found[0].message


def test_pd302_and_pd304_never_for_the_watchers_own_connection() -> None:
    conns = [conn(1, IDLE_TXN, 600.0, own=True), conn(2, IDLE, 9000.0, own=True)]
    assert Watcher().observe(snap(conns)) == []


def test_pd304_idle_too_long_and_grouped_by_holding_site() -> None:
    site = {"file": "/app/db.py", "line": 22, "function": "handler"}
    held = conn(1, IDLE, 4000.0)
    held.holder = {"pid": 77, "site": site, "stack": [site], "text": "app/db.py:22"}
    conns = [held, conn(2, IDLE, 3000.0), conn(3, IDLE, 100.0)]
    found = Watcher(Thresholds(idle_s=1800)).observe(snap(conns))
    assert codes(found) == ["PD304", "PD304"]
    at_site = next(f for f in found if f.site is not None)
    assert at_site.site.line == 22 and at_site.pids == [77]
    assert "held at" in at_site.message
    other = next(f for f in found if f.site is None)
    assert [c["id"] for c in other.details["connections"]] == [2]


# ----------------------------------------------------------------------------- PD303


def series(counts: list[tuple[int, int]], app: str = "api") -> list[Snapshot]:
    """Snapshots where group ``app`` has (total, active) connections at each sample."""
    out = []
    for n, (total, active) in enumerate(counts):
        conns = [conn(i, ACTIVE if i < active else IDLE, app=app) for i in range(total)]
        conns.append(conn(10_000, ACTIVE, app="pooldoctor", own=True))
        out.append(snap(conns, max_connections=1000, at=n * 10.0))
    return out


def growth(counts: list[tuple[int, int]], **kw: int) -> list:  # type: ignore[type-arg]
    w = Watcher(Thresholds(growth_samples=kw.get("samples", 4), growth_min=kw.get("min", 3)))
    found = []
    for s in series(counts):
        found += [f for f in w.observe(s) if f.code == "PD303"]
    return found


def test_pd303_steady_growth_with_flat_active() -> None:
    found = growth([(2, 1), (4, 1), (6, 1), (8, 1)])
    assert len(found) == 1
    f = found[0]
    assert f.details["totals"] == [2, 4, 6, 8] and f.details["active"] == [1, 1, 1, 1]
    assert "grew from 2 to 8 connections in 30.0 s" in f.message
    assert f.details["group"]["application"] == "api"


def test_pd303_not_when_active_grows_with_the_count() -> None:
    assert growth([(2, 1), (4, 3), (6, 5), (8, 7)]) == []  # genuine load


def test_pd303_not_when_flat_falling_or_noisy() -> None:
    assert growth([(5, 1), (5, 1), (5, 1), (5, 1)]) == []
    assert growth([(8, 1), (6, 1), (4, 1), (2, 1)]) == []
    assert growth([(2, 1), (6, 1), (3, 1), (8, 1)]) == []  # fell once: not steady


def test_pd303_not_below_the_minimum_gain_or_before_the_window_fills() -> None:
    assert growth([(2, 1), (3, 1), (3, 1), (4, 1)]) == []  # +2 < 3
    assert growth([(2, 1), (5, 1), (9, 1)]) == []  # 3 samples, window of 4


def test_pd303_ignores_the_watchers_own_connection() -> None:
    found = growth([(2, 1), (4, 1), (6, 1), (8, 1)])
    assert all(f.details["group"]["application"] != "pooldoctor" for f in found)


# ----------------------------------------------------------------------------- PD305


def test_pd305_on_a_rising_rejection_counter_only() -> None:
    w = Watcher()
    assert w.observe(snap([], rejected=7)) == []  # first sample: no baseline
    assert w.observe(snap([], rejected=7)) == []
    found = w.observe(snap([], rejected=12))
    assert codes(found) == ["PD305"]
    assert "5 connections rejected" in found[0].message and "7 -> 12" in found[0].message
    assert w.observe(snap([], rejected=12)) == []


def test_pd305_for_the_watchers_refused_reconnects() -> None:
    w = Watcher()
    w.refused_connects = 2
    found = w.observe(snap([]))
    assert codes(found) == ["PD305"] and "refused 2 times" in found[0].message
    assert w.observe(snap([])) == []


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError, match="near"):
        Watcher(Thresholds(near=1.5))
    with pytest.raises(ValueError, match="growth_samples"):
        Watcher(Thresholds(growth_samples=2))


def test_refused_for_limit_messages() -> None:
    from pooldoctor.cli.watch import refused_for_limit

    assert refused_for_limit("cannot connect to x: FATAL: sorry, too many clients already")
    assert refused_for_limit("cannot connect: remaining connection slots are reserved for "
                             "non-replication superuser connections")
    assert refused_for_limit("cannot connect: (1040) Too many connections")
    assert not refused_for_limit("cannot connect: too many connections for role \"app\"")
    assert not refused_for_limit("cannot connect: (1045) Access denied for user")


def test_an_alarm_is_the_same_while_it_lasts() -> None:
    from pooldoctor.cli.watch import alarm_key

    w = Watcher(Thresholds(idle_in_transaction_s=10))
    first = w.observe(snap([conn(1, IDLE_TXN, 11.0)]))
    later = w.observe(snap([conn(1, IDLE_TXN, 25.0)]))
    other = w.observe(snap([conn(1, IDLE_TXN, 30.0), conn(2, IDLE_TXN, 12.0)]))
    assert first[0].message != later[0].message
    assert alarm_key(first[0]) == alarm_key(later[0]) != alarm_key(other[0])


def test_state_between_runs_keeps_growth_and_rejections() -> None:
    import json

    snaps = series([(2, 1), (4, 1), (6, 1), (8, 1)])
    first = Watcher(Thresholds(growth_samples=4))
    for s in snaps[:3]:
        s.rejected_total = 7
        assert first.observe(s) == []
    saved = json.loads(json.dumps(first.state(URL)))  # as written to the file
    later = Watcher(Thresholds(growth_samples=4))
    assert later.restore(saved, URL)
    snaps[3].rejected_total = 9
    assert sorted(codes(later.observe(snaps[3]))) == ["PD303", "PD305"]
    fresh = Watcher(Thresholds(growth_samples=4))
    assert not fresh.restore(saved, "mysql://other@db/x")  # another server's state
    assert fresh.observe(snaps[3]) == []
