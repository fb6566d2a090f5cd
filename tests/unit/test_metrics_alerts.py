"""The alert rule set users load: valid, consistent with the metrics we export, and firing
(and staying quiet) on synthetic series when promtool is installed."""

from __future__ import annotations

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
    used = set(re.findall(r"\bpooldoctor_[a-z_]+", " ".join(r["expr"] for r in rules())))
    assert used and used <= names, used - names


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")


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
"""


@needs_promtool
def test_promtool_rules_fire_and_stay_quiet(tmp_path: Path) -> None:
    unit = tmp_path / "unit.yml"
    unit.write_text(UNIT.format(rules=RULES))
    r = subprocess.run([str(PROMTOOL), "test", "rules", str(unit)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
