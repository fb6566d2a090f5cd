"""The ``pooldoctor`` section of pytest's terminal summary."""

from __future__ import annotations

from typing import Any

from pooldoctor.pytest_plugin.settings import Settings
from pooldoctor.reports import Report


def write_report(report: Report, settings: Settings) -> str:
    """Write the JSON report if asked; the line that says so, or why it could not be."""
    path = settings.report_path or settings.report
    if not path:
        return ""
    try:
        report.write(path)
    except OSError as e:  # the folder went away during the run: say so, no traceback
        return f"pooldoctor: cannot write the report to {path}: {e.strerror or e}"
    return f"report written to {settings.report}"


def summary(tr: Any, report: Report, settings: Settings, note: str = "") -> None:
    """The ``pooldoctor`` section of the terminal summary (``note``: the report's line)."""
    stats = report.extra["pytest"]
    tr.write_sep("=", "pooldoctor")
    leaking = stats["leaking"]
    allowed = f", {stats['allowed']} allowed by marker" if stats["allowed"] else ""
    checked = stats["tests_checked"]
    checked_text = f"{checked} test{'s' if checked != 1 else ''} checked"
    if not report.findings:
        tr.write_line(f"{checked_text}, no connections left behind{allowed}")
    else:
        _write_findings(tr, report, f"{checked_text}, {len(leaking)} left connections "
                        f"behind{allowed}")
    errors = stats.get("internal_errors", 0)
    if errors:
        tr.write_line(f"pooldoctor: {errors} internal error(s) in the plugin, logged; the "
                      "tests themselves were not affected")
    if note:
        tr.write_line(note)


def _write_findings(tr: Any, report: Report, head: str) -> None:
    stats = report.extra["pytest"]
    leaking = stats["leaking"]
    tr.write_line(head)
    if stats["session_failed"]:
        tr.write_line("connections found left behind only at the end of the session, where "
                      "no test can fail for them (see below): the session fails", red=True)
    for name in leaking[:20]:
        tr.write_line(f"  {name}")
    if len(leaking) > 20:
        tr.write_line(f"  ... and {len(leaking) - 20} more")
    color = bool(getattr(tr, "hasmarkup", False))  # pytest's writer knows NO_COLOR etc.
    text = report.render_text(color=color, stacks=False)
    for line in text.rstrip("\n").splitlines():
        tr.write_line(line)
