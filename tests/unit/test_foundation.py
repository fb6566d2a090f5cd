"""Findings, reports, URL masking and the user-frame filter."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy

from pooldoctor.findings import CATALOGUE, Finding, Site, merge_findings
from pooldoctor.reports import SCHEMA, Report, merge_pools
from pooldoctor.sites import capture, is_internal_file, site_of
from pooldoctor.urls import BadURL, mask_text, mask_url, parse_url


def test_catalogue_has_every_design_code() -> None:
    expected = ([f"PD1{n:02d}" for n in range(1, 10)] + [f"PD2{n:02d}" for n in range(1, 12)]
                + [f"PD3{n:02d}" for n in range(1, 6)] + [f"PD4{n:02d}" for n in range(1, 5)])
    assert sorted(CATALOGUE) == sorted(expected)
    names = [c.name for c in CATALOGUE.values()]
    assert len(names) == len(set(names))


def test_unknown_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown finding code 'PD999'"):
        Finding("PD999", "x")


def test_findings_merge_by_code_and_site() -> None:
    site = Site("/a.py", 3, "f")
    a = Finding("PD101", "first", site, pids=[1], first_seen="2026-01-01T00:00:00Z")
    b = Finding("PD101", "second", site, pids=[2], first_seen="2026-01-02T00:00:00Z")
    c = Finding("PD101", "other site", Site("/a.py", 4, "f"), pids=[1])
    merged = merge_findings([a, b, c])
    assert [m.count for m in merged] == [2, 1]
    assert merged[0].pids == [1, 2]
    assert merged[0].message == "second"
    assert merged[0].first_seen == "2026-01-01T00:00:00Z"
    assert a.count == 1  # inputs untouched


def test_report_json_round_trip_and_schema() -> None:
    f = Finding("PD102", "gone", Site("/x.py", 9, "g"), stack=[Site("/x.py", 9, "g")],
                details={"pool": "p"})
    r = Report([f], [{"url": "sqlite://", "pool_class": "QueuePool", "checkouts": 3}])
    d = json.loads(r.to_json())
    assert d["schema"] == SCHEMA
    assert d["findings"][0]["name"] == "garbage-collected"
    assert d["findings"][0]["severity"] == "error"
    assert set(d["findings"][0]) >= {"code", "message", "site", "stack", "count", "pids",
                                     "first_seen", "last_seen", "details"}
    back = Report.from_json(r.to_json())
    assert back.findings[0].to_dict() == r.findings[0].to_dict()
    assert back.pools == r.pools


def test_report_text_masks_passwords_and_gives_hint() -> None:
    f = Finding("PD103", "pool 'postgresql://u:hunter2@db/app' exhausted", Site("/x.py", 1, "f"))
    text = Report([f]).render_text(color=False)
    assert "hunter2" not in text
    assert "hint:" in text
    assert Report().render_text(color=False) == "pooldoctor: no findings\n"


def test_merge_pools_sums_counters_and_keeps_peaks() -> None:
    pools = merge_pools([
        {"url": "u", "pool_class": "QueuePool", "checkouts": 2, "peak_checked_out": 3},
        {"url": "u", "pool_class": "QueuePool", "checkouts": 5, "peak_checked_out": 1},
    ])
    assert pools == [{"url": "u", "pool_class": "QueuePool", "checkouts": 7,
                      "peak_checked_out": 3, "processes": 2}]


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://app:s3cr%40t@db:5432/app",
    "mysql+pymysql://root:pa:ss@localhost/test?charset=utf8mb4",
])
def test_mask_url_hides_password(url: str) -> None:
    masked = mask_url(url)
    assert "s3cr" not in masked and "pa:ss" not in masked
    assert "***" in masked


def test_mask_text_finds_urls_and_password_pairs() -> None:
    text = ("cannot connect to mysql://root:topsecret@h/db; dsn host=x password=hunter2 "
            "user=y; PASSWORD='abc123'")
    out = mask_text(text, secrets=("extra-secret",))
    for secret in ("topsecret", "hunter2", "abc123"):
        assert secret not in out
    assert mask_text("no secrets here: SELECT 1") == "no secrets here: SELECT 1"


def test_bad_url_is_one_masked_line() -> None:
    with pytest.raises(BadURL) as info:
        parse_url("not a url with password=hunter2")
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_internal_files() -> None:
    assert is_internal_file(sqlalchemy.__file__)
    assert is_internal_file(os.__file__)
    assert is_internal_file(sqlite3.__file__)
    assert is_internal_file("<frozen importlib._bootstrap>")
    assert is_internal_file("<sqlalchemy generated warned() wrapper>")
    assert not is_internal_file(__file__)
    assert not is_internal_file("<string>")


def _user_function() -> object:
    return capture(0)


def test_capture_starts_at_the_first_user_frame() -> None:
    frames = _user_function()
    site = site_of(frames)  # type: ignore[arg-type]
    assert site is not None
    assert site.file == __file__
    assert site.function == "_user_function"


def test_merge_pools_counts_processes_by_pid() -> None:
    from pooldoctor.reports import merge_pools

    one = {"url": "u", "pool_class": "QueuePool", "checkouts": 1}
    merged = merge_pools([{**one, "pids": [7]}, {**one, "pids": [7]}, {**one, "pids": [9]}])
    assert [(m["processes"], m["pids"], m["checkouts"]) for m in merged] == [(2, [7, 9], 3)]
    # a merged report merged again keeps its count; entries without pids count as before
    again = merge_pools([*merged, {**one, "processes": 3}])
    assert [(m["processes"], m["pids"]) for m in again] == [(5, [7, 9])]


def test_the_site_is_written_in_one_form(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pooldoctor.findings import Finding, Site
    from pooldoctor.reports import Report

    monkeypatch.chdir(tmp_path)
    site = Site(str(tmp_path / "app" / "db.py"), 42, "load")
    written = [f"held at {tmp_path}/app/db.py:42 in load",  # absolute: outside its cwd
               f"held at {str(tmp_path)[1:]}/app/db.py:42 in load",  # relative to "/"
               "held at app/db.py:42 in load"]  # relative to the same directory
    for message in written:
        text = Report([Finding("PD101", message, site=site)]).render_text(color=False)
        assert text.splitlines()[:2] == ["PD101 warning held at app/db.py:42 in load",
                                         "    at app/db.py:42 in load"], text
    other = "held at lib/db.py:42 in load and app/db.py:420"  # not the site: unchanged
    text = Report([Finding("PD101", other, site=site)]).render_text(color=False)
    assert text.splitlines()[0] == f"PD101 warning {other}"


def test_a_removed_working_directory_never_raises(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pooldoctor.findings import Site

    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    site = Site(str(tmp_path / "app.py"), 3, "f")
    assert site.short() == f"{tmp_path}/app.py:3 in f"
