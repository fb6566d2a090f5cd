"""The Grafana fleet dashboard users import: a valid dashboard, every query on metric names a
live exposition has, valid PromQL (promtool), and the fleet panels giving the right figures
on series taken from a live exposition of two processes on two hosts."""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.pool import QueuePool

import pooldoctor
from pooldoctor import metrics
from pooldoctor.findings import shorten_path
from pooldoctor.guard import GUARD
from pooldoctor.metrics import prometheus

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "pooldoctor-fleet.json"
PROMTOOL = shutil.which("promtool")
REQUIRE = os.environ.get("POOLDOCTOR_REQUIRE_SERVERS") == "1"

# PromQL words that are not metric names
FUNCTIONS = {
    "sum", "count", "max", "min", "avg", "topk", "bottomk", "by", "without", "on", "ignoring",
    "group_left", "group_right", "rate", "irate", "increase", "histogram_quantile", "vector",
    "sort_desc", "sort", "or", "and", "unless", "label_values", "offset", "bool",
}


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in load()["panels"] if p["type"] != "row"]


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def concrete(expr: str) -> str:
    """The query with Grafana's variables as Grafana would fill them in."""
    return (expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
            .replace('"$pool"', '".*"').replace('"$host"', '".*"'))


def metric_names(expr: str) -> set[str]:
    text = re.sub(r'"[^"]*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", text))
    return words - FUNCTIONS


def needs_promtool() -> None:
    if PROMTOOL is None:
        if REQUIRE:
            pytest.fail("POOLDOCTOR_REQUIRE_SERVERS=1 but promtool is not installed "
                        "(Debian package prometheus)", pytrace=False)
        pytest.skip("promtool is not installed (Debian package prometheus)")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def exposition(guard: Any, tmp_path: Path) -> Iterator[str]:
    """The /metrics text of this process with one pool: a connection held, a checkout timed
    out, a connection leaked to the garbage collector (PD102)."""
    metrics.enable()
    registry = CollectorRegistry()
    prometheus.register(registry)
    e = sa.create_engine(f"sqlite:///{tmp_path / 'd.sqlite'}", poolclass=QueuePool,
                         pool_size=2, max_overflow=0, pool_timeout=0.05)
    pooldoctor.instrument(e, name="fleet-orders", log=False, exit_check=False)

    def leak() -> None:
        e.connect().exec_driver_sql("SELECT 1")

    try:
        leak()
        gc.collect()
        GUARD.drain()
        held = [e.connect(), e.connect()]
        with pytest.raises(sa.exc.TimeoutError):
            e.connect()
        held.pop().close()
        yield generate_latest(registry).decode()
        held.pop().close()
    finally:
        prometheus.unregister(registry)
        e.dispose()
        metrics.disable()


def test_valid_grafana_dashboard() -> None:
    d = load()
    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time"):
        assert key in d, key
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", d["uid"])
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for p in d["panels"]:
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and g["x"] >= 0 and g["x"] + g["w"] <= 24
        assert p["title"]
        if p["type"] == "row":
            continue
        assert p["type"] in {"stat", "timeseries", "table", "bargauge", "gauge"}
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert p["description"] and p["targets"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["expr"].count("(") == t["expr"].count(")")
            used = set(re.findall(r"\$\{?(\w+)", t["expr"])) - {"__range", "__rate_interval"}
            assert used <= set(variables), used - set(variables)


def test_shows_what_the_fleet_needs() -> None:
    titles = " ".join(p["title"].lower() for p in panels())
    assert "exhaustion" in " ".join(p["title"].lower() for p in load()["panels"])
    assert "by site" in titles and "by host" in titles
    text = " ".join(exprs())
    assert "pooldoctor_findings_by_site_total" in text and "target_info" in text
    assert "db_client_connection_max" in text and "db_client_connection_pending_requests" in text


def _exported(text: str) -> dict[str, set[str]]:
    """Sample name -> its label names, over a Prometheus exposition."""
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, set()).update(s.labels)
    return out


def test_every_query_uses_metrics_and_labels_we_export(exposition: str) -> None:
    exported = _exported(exposition)
    for expr in exprs():
        names = metric_names(expr)
        assert names, expr
        assert names <= set(exported), (names - set(exported), expr)
    for v in load()["templating"]["list"]:
        m = re.fullmatch(r"label_values\((\w+), (\w+)\)", v.get("definition", ""))
        if v["type"] == "query":
            assert m, v["name"]
            assert m.group(2) in exported[m.group(1)], v["definition"]
    # every label a query groups or filters by is on some metric it reads
    labels = set().union(*exported.values()) | {"job", "instance", "le"}
    for expr in exprs():
        for group in re.findall(r"\b(?:by|on|group_left)\s*\(([^)]*)\)", expr):
            assert {x.strip() for x in group.split(",") if x.strip()} <= labels, expr
        for matchers in re.findall(r"\{([^}]*)\}", expr):
            assert set(re.findall(r"(\w+)\s*=~?", matchers)) <= labels, expr


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    needs_promtool()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel{i}", "expr": concrete(e)} for i, e in enumerate(exprs())]}]}
    f = tmp_path / "dashboard-rules.yml"
    f.write_text(yaml.safe_dump(rules))
    r = promtool("check", "rules", str(f))
    assert r.returncode == 0, r.stdout + r.stderr


def _panel_expr(title: str) -> str:
    (p,) = [p for p in panels() if p["title"] == title]
    return concrete(p["targets"][0]["expr"])


def _series(exposition: str, instance: str, host: str) -> list[dict[str, str]]:
    """The live exposition's samples as promtool input series of one process on ``host``,
    counters rising from 0 to their value, gauges constant, over 10 minutes."""
    out = []
    for fam in text_string_to_metric_families(exposition):
        for s in fam.samples:
            if s.name.startswith("db_client_connection_pool") or not s.name.startswith(
                    ("db_client_connection_", "pooldoctor_findings_by_site", "target_info")):
                continue
            labels = dict(s.labels, job="app", instance=instance)
            if s.name == "target_info":
                labels["host_name"] = host
            sel = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            value = int(s.value) if float(s.value).is_integer() else s.value
            rising = fam.type in ("counter", "histogram") and not s.name.endswith("_sum")
            values = f"0 {value}x10" if rising else f"{value}x10"
            out.append({"series": f"{s.name}{{{sel}}}", "values": values})
    return out


def test_fleet_panels_on_two_hosts(exposition: str, tmp_path: Path) -> None:
    """Two processes of the same program on two hosts: the panels add them up by host and by
    site, and find the pool that is fully used."""
    needs_promtool()
    exported = {(s.name, tuple(sorted(s.labels.items()))): s.value
                for fam in text_string_to_metric_families(exposition) for s in fam.samples}
    used = exported[("db_client_connection_count", (
        ("db_client_connection_pool_name", "fleet-orders"),
        ("db_client_connection_state", "used")))]
    assert used == 1
    timeouts = exported[("db_client_connection_timeouts_total", (
        ("db_client_connection_pool_name", "fleet-orders"),))]
    assert timeouts >= 1
    # the panel adds up every pool of the exposition (earlier tests' pools stay counted)
    all_timeouts = sum(v for k, v in exported.items()
                       if k[0] == "db_client_connection_timeouts_total")
    here = socket.gethostname()
    # every leak finding of the process (earlier tests' too: the recorder is process-wide)
    leaks = {(dict(k[1])["code"], dict(k[1])["site"]): v for k, v in exported.items()
             if k[0] == "pooldoctor_findings_by_site_total"
             and dict(k[1])["code"] in ("PD101", "PD102", "PD105") and v > 0}
    line = Path(__file__).read_text().splitlines().index(
        '        e.connect().exec_driver_sql("SELECT 1")') + 1
    site = f"{shorten_path(__file__)}:{line} in leak"  # the leak of the exposition fixture
    assert leaks.get(("PD102", site), 0) >= 1

    series = _series(exposition, "a:9464", here) + _series(exposition, "b:9464", "other-host")
    # a third process whose pool is fully used
    series += [
        {"series": 'db_client_connection_count{job="app",instance="c:9464",'
                   'db_client_connection_pool_name="fleet-orders",'
                   'db_client_connection_state="used"}', "values": "2x10"},
        {"series": 'db_client_connection_max{job="app",instance="c:9464",'
                   'db_client_connection_pool_name="fleet-orders"}', "values": "2x10"},
        {"series": 'target_info{job="app",instance="c:9464",host_name="other-host"}',
         "values": "1x10"}]
    unit = {
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": _panel_expr("Connections in use by host"), "eval_time": "5m",
                 "exp_samples": [{"labels": "{host_name=\"other-host\"}", "value": 3},
                                 {"labels": f"{{host_name=\"{here}\"}}", "value": 1}]},
                {"expr": _panel_expr("Leak findings by site"), "eval_time": "5m",
                 "exp_samples": [{"labels": f'{{code="{code}", site="{where}"}}',
                                  "value": 2 * n} for (code, where), n in leaks.items()]},
                {"expr": _panel_expr("Pools above 90% used"), "eval_time": "5m",
                 "exp_samples": [{"labels": "{}", "value": 1}]},
                {"expr": _panel_expr("Checkout timeouts"), "eval_time": "5m",
                 "exp_samples": [{"labels": "{}", "value": 2 * all_timeouts}]},
            ],
        }],
    }
    f = tmp_path / "dashboard-test.yml"
    f.write_text(yaml.safe_dump(unit))
    r = promtool("test", "rules", str(f))
    assert r.returncode == 0, r.stdout + r.stderr
