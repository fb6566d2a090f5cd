"""The alert rule set users load: valid, consistent with the metrics we export, and firing
(and staying quiet) on synthetic series when promtool is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from pooldoctor.metrics import prometheus

RULES = Path(__file__).resolve().parents[2] / "docs" / "alerts" / "pooldoctor-rules.yml"


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return data


def rules() -> list[dict[str, Any]]:
    return [r for g in load()["groups"] for r in g["rules"]]


def test_structure() -> None:
    data = load()
    assert set(data) == {"groups"}
    names = [g["name"] for g in data["groups"]]
    assert len(names) == len(set(names))
    alerts = [r["alert"] for r in rules()]
    assert len(alerts) == len(set(alerts))
    for r in rules():
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r["alert"]
        assert isinstance(r["expr"], str) and r["expr"].strip()
        assert r["labels"]["severity"] in ("warning", "critical")
        assert r["annotations"]["summary"] and r["annotations"]["description"]
        if "for" in r:
            assert re.fullmatch(r"\d+[smh]", r["for"])
        assert r["expr"].count("(") == r["expr"].count(")")


def test_covers_what_the_issue_asks() -> None:
    text = " ".join(r["expr"] for r in rules())
    assert "PD101" in text and "PD102" in text  # leaks found
    assert "pooldoctor_checkout_wait_seconds_bucket" in text  # pool wait time
    assert "pooldoctor_checkout_timeouts_total" in text  # timeouts
    assert "PD301" in text and "max_connections" in text  # near the server limit


def test_every_pooldoctor_metric_named_is_exported(guard: Any) -> None:
    registry = CollectorRegistry()
    prometheus.register(registry)
    try:
        exported = set(re.findall(r"^# TYPE (\S+) (\S+)", generate_latest(registry).decode(),
                                  re.M))
    finally:
        prometheus.unregister(registry)
    names = set()
    for name, kind in exported:
        names.add(name)
        if kind == "counter":
            names.add(name + "_total")
        if kind == "histogram":
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
    text = " ".join(r["expr"] for r in rules())
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(by|on)\s*\([^)]*\)", "", text)  # label lists
    used = set(re.findall(r"\b(?:pooldoctor|db_client_connection)_[a-z_]+", text))
    assert used and used <= names, used - names
    assert any(n.startswith("db_client_connection_") for n in used)  # the fleet group


PROMTOOL = shutil.which("promtool")
REQUIRE = os.environ.get("POOLDOCTOR_REQUIRE_SERVERS") == "1"


def _needs_promtool(fn: Any) -> Any:
    """Skip without promtool (Debian package prometheus), except on CI where it must run."""
    if PROMTOOL is not None:
        return fn
    if REQUIRE:
        def missing(*args: Any, **kwargs: Any) -> None:
            pytest.fail("POOLDOCTOR_REQUIRE_SERVERS=1 but promtool is not installed (Debian "
                        "package prometheus)", pytrace=False)

        missing.__name__ = fn.__name__
        return missing
    return pytest.mark.skip(reason="promtool is not installed (Debian package prometheus)")(fn)


needs_promtool = _needs_promtool


@needs_promtool
def test_promtool_check_rules() -> None:
    r = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"SUCCESS: {len(rules())} rules found" in r.stdout


UNIT = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'pooldoctor_checkout_timeouts_total{{job="app",instance="a",pool="bad"}}'
        values: '0 0 1 1 1 1'
      - series: 'pooldoctor_checkout_timeouts_total{{job="app",instance="a",pool="good"}}'
        values: '0x5'
      - series: 'pooldoctor_findings_total{{job="app",instance="a",code="PD102",severity="error"}}'
        values: '0 1 1 1'
      - series: 'pooldoctor_findings_total{{job="app",instance="a",code="PD109",severity="info"}}'
        values: '0 5 9 12'
      - series: 'pooldoctor_connections{{job="app",instance="a",pool="bad",state="used"}}'
        values: '10x15'
      - series: 'pooldoctor_connections_max{{job="app",instance="a",pool="bad"}}'
        values: '10x15'
      - series: 'pooldoctor_connections{{job="app",instance="a",pool="good",state="used"}}'
        values: '2x15'
      - series: 'pooldoctor_connections_max{{job="app",instance="a",pool="good"}}'
        values: '10x15'
    alert_rule_test:
      - eval_time: 3m
        alertname: PooldoctorPoolExhausted
        exp_alerts:
          - exp_labels: {{severity: critical, job: app, instance: a, pool: bad}}
            exp_annotations:
              summary: "pool bad exhausted on a"
              description: "1 checkout(s) timed out in the last 5 minutes: every connection \\
                of the pool was checked out for longer than pool_timeout. The PD103 finding \\
                lists who held them."
      - eval_time: 3m
        alertname: PooldoctorConnectionLeak
        exp_alerts:
          - exp_labels: {{severity: warning, job: app, instance: a, code: PD102}}
            exp_annotations:
              summary: "connection leak found (PD102) on a"
              description: "pooldoctor reported 1 PD102 finding(s) in the last 15 minutes: a \\
                connection held too long (PD101), reclaimed by the garbage collector (PD102) \\
                or still held at exit (PD105). The finding names the site in the code; \\
                `pooldoctor explain PD102` says what to do."
      - eval_time: 15m
        alertname: PooldoctorPoolSaturated
        exp_alerts:
          - exp_labels: {{severity: warning, job: app, instance: a, pool: bad}}
            exp_annotations:
              summary: "pool bad is 100% checked out"
              description: "More than 90% of the connections the pool may open have been \\
                checked out for 10 minutes; the next burst will wait, then time out."
      - eval_time: 5m
        alertname: PooldoctorPoolSaturated
        exp_alerts: []
      - eval_time: 3m
        alertname: PooldoctorNearServerLimit
        exp_alerts: []

  # the fleet: two hosts, the same leaking line in both; one pool full on host b
  - interval: 1m
    input_series:
      - series: 'pooldoctor_findings_by_site_total{{job="app",
          instance="a",
          code="PD101",
          severity="warning",
          site="app/orders.py:42 in checkout"}}'
        values: '0 1 2 2'
      - series: 'pooldoctor_findings_by_site_total{{job="app",
          instance="b",
          code="PD101",
          severity="warning",
          site="app/orders.py:42 in checkout"}}'
        values: '0 0 1 1'
      - series: 'pooldoctor_findings_by_site_total{{job="app",
          instance="b",
          code="PD109",
          severity="info",
          site="app/report.py:7 in run"}}'
        values: '0 4 9 12'
      - series: 'db_client_connection_count{{job="app",
          instance="a",
          db_client_connection_pool_name="db:5432/app",
          db_client_connection_state="used"}}'
        values: '3x10'
      - series: 'db_client_connection_max{{job="app",
          instance="a",
          db_client_connection_pool_name="db:5432/app"}}'
        values: '15x10'
      - series: 'db_client_connection_count{{job="app",
          instance="b",
          db_client_connection_pool_name="db:5432/app",
          db_client_connection_state="used"}}'
        values: '15x10'
      - series: 'db_client_connection_max{{job="app",
          instance="b",
          db_client_connection_pool_name="db:5432/app"}}'
        values: '15x10'
      - series: 'db_client_connection_pending_requests{{job="app",
          instance="b",
          db_client_connection_pool_name="db:5432/app"}}'
        values: '4x10'
      - series: 'db_client_connection_pending_requests{{job="app",
          instance="a",
          db_client_connection_pool_name="db:5432/app"}}'
        values: '0x10'
      - series: 'db_client_connection_timeouts_total{{job="app",
          instance="a",
          db_client_connection_pool_name="db:5432/app"}}'
        values: '0x10'
      - series: 'db_client_connection_timeouts_total{{job="app",
          instance="b",
          db_client_connection_pool_name="db:5432/app"}}'
        values: '0 0 2 3 3'
    alert_rule_test:
      - eval_time: 3m
        alertname: PooldoctorLeakSite
        exp_alerts:
          - exp_labels: {{severity: warning, code: PD101, site: "app/orders.py:42 in checkout"}}
            exp_annotations:
              summary: "connection leak (PD101) at app/orders.py:42 in checkout"
              description: "3 PD101 finding(s) at app/orders.py:42 in checkout in the last 15 \\
                minutes, across every process. Fix that line: `pooldoctor explain PD101`."
      - eval_time: 6m
        alertname: PooldoctorPoolNearExhaustion
        exp_alerts:
          - exp_labels: {{severity: warning,
              job: app,
              instance: b,
              db_client_connection_pool_name: "db:5432/app"}}
            exp_annotations:
              summary: "pool db:5432/app on b is 100% used"
              description: "More than 90% of the connections this process's pool may open have \\
                been in use for 5 minutes; the next burst waits, then times out. Look for leak \\
                findings of the same process (PD101, PD102) before raising the pool size."
      - eval_time: 4m
        alertname: PooldoctorPoolNearExhaustion
        exp_alerts: []
      - eval_time: 6m
        alertname: PooldoctorCheckoutsQueued
        exp_alerts:
          - exp_labels: {{severity: warning,
              job: app,
              instance: b,
              db_client_connection_pool_name: "db:5432/app"}}
            exp_annotations:
              summary: "checkouts queue for pool db:5432/app on b"
              description: "4 request(s) have been waiting for a connection of this pool for 5 \\
                minutes without a break: the pool is exhausted."
      - eval_time: 4m
        alertname: PooldoctorFleetCheckoutTimeouts
        exp_alerts:
          - exp_labels: {{severity: critical, db_client_connection_pool_name: "db:5432/app"}}
            exp_annotations:
              summary: "checkouts from pool db:5432/app time out"
              description: "3 checkout(s) timed out in the last 5 minutes across the fleet. \\
                The PD103 findings name the holders."
      - eval_time: 10m
        alertname: PooldoctorFleetCheckoutTimeouts
        exp_alerts: []
"""


@needs_promtool
def test_promtool_rules_fire_and_stay_quiet(tmp_path: Path) -> None:
    unit = tmp_path / "unit.yml"
    unit.write_text(UNIT.format(rules=RULES))
    r = subprocess.run([str(PROMTOOL), "test", "rules", str(unit)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
