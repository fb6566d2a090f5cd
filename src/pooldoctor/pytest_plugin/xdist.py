"""pytest-xdist: tell the controller from a worker; merge the workers' reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pooldoctor.findings import Finding
from pooldoctor.pytest_plugin.settings import WORKER_OUTPUT, Settings
from pooldoctor.pytest_plugin.summary import summary, write_report
from pooldoctor.reports import Report, merge_pools


def is_xdist_controller(config: pytest.Config) -> bool:
    """True in the pytest-xdist process that hands tests to workers (it runs none)."""
    if hasattr(config, "workerinput") or config.getoption("collectonly", False):
        return False
    if config.pluginmanager.has_plugin("dsession"):
        return True
    return (config.getoption("dist", "no") or "no") != "no" and bool(config.getoption("tx", None))


def worker_id(config: pytest.Config) -> str | None:
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if isinstance(workerinput, dict) else None


class Controller:
    """In a pytest-xdist controller: merge the workers' reports; the workers do the checks."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.reports: list[dict[str, Any]] = []
        self.note = ""

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        data = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT)
        if isinstance(data, dict):
            self.reports.append(data)

    def report(self) -> Report:
        return merge_reports(self.reports, self.settings.mode)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        report = self.report()
        if report.extra["pytest"]["session_failed"] and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self.note = write_report(report, self.settings)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        summary(terminalreporter, self.report(), self.settings, self.note)


def merge_reports(reports: Iterable[dict[str, Any]], mode: str) -> Report:
    """One report from the workers' reports: findings merged by code and site."""
    findings: list[Finding] = []
    pools: list[dict[str, Any]] = []
    stats: dict[str, Any] = {"mode": mode, "tests_checked": 0, "leaking": [], "allowed": 0,
                             "session_failed": False, "workers": 0}
    for d in reports:
        r = Report.from_dict(d)
        findings += r.findings
        pools += r.pools
        s = r.extra.get("pytest", {})
        stats["tests_checked"] += s.get("tests_checked", 0)
        stats["leaking"] += s.get("leaking", [])
        stats["allowed"] += s.get("allowed", 0)
        stats["session_failed"] = stats["session_failed"] or bool(s.get("session_failed"))
        stats["internal_errors"] = stats.get("internal_errors", 0) + s.get("internal_errors", 0)
        stats["workers"] += 1
    return Report(findings, merge_pools(pools), {"pytest": stats})
