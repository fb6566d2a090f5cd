"""Records (``pooldoctor.record``) keep the value semantics the @dataclass classes had."""

from __future__ import annotations

import copy
import pickle

import pytest

from pooldoctor.findings import CATALOGUE, Finding, Site
from pooldoctor.lint.issues import Issue, Kind


def test_site_is_a_frozen_hashable_value() -> None:
    a, b = Site("/app/db.py", 3, "load"), Site("/app/db.py", 3, "load")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Site("/app/db.py", 3, "load", 7) and a != ("/app/db.py", 3, "load", None)
    assert repr(a) == "Site(file='/app/db.py', line=3, function='load', column=None)"
    with pytest.raises(AttributeError):
        a.line = 4  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a and copy.deepcopy(a) == a


def test_finding_is_mutable_unhashable_and_checks_its_code() -> None:
    f = Finding("PD101", "held", site=Site("a.py", 1), first_seen="2026-01-01T00:00:00Z")
    assert f.last_seen == f.first_seen and f.stack == [] and f.details == {}
    g = Finding.from_dict(f.to_dict())
    assert g == f and g is not f
    g.count += 1
    assert g != f
    with pytest.raises(TypeError):
        hash(f)
    assert pickle.loads(pickle.dumps(f)) == f
    assert Finding("PD101", "x").stack is not Finding("PD101", "x").stack  # no shared default
    with pytest.raises(ValueError, match="unknown finding code 'PD999'"):
        Finding("PD999", "x")


def test_issues_sort_by_their_fields_in_order() -> None:
    issues = [Issue("PD202", 1, 1, "b"), Issue("PD201", 9, 1, "a"), Issue("PD201", 2, 5, "c"),
              Issue("PD201", 2, 1, "z", "f")]
    assert [(i.code, i.line, i.column) for i in sorted(issues)] == [
        ("PD201", 2, 1), ("PD201", 2, 5), ("PD201", 9, 1), ("PD202", 1, 1)]
    assert Issue("PD201", 1, 1, "m") <= Issue("PD201", 1, 1, "m")
    k = Kind("PD201", "sqlite3.connect()", "connection")
    assert k.replace(slot=1) == Kind("PD201", "sqlite3.connect()", "connection", slot=1)
    assert k.slot == -1 and k.with_closes


def test_catalogue_entries_are_frozen() -> None:
    with pytest.raises(AttributeError):
        CATALOGUE["PD101"].name = "x"  # type: ignore[misc]
