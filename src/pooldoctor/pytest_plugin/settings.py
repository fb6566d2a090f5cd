"""The plugin's options: from the command line, else from the ini file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

from pooldoctor.pytest_plugin.common import MODES

WORKER_OUTPUT = "pooldoctor"


@dataclass(frozen=True)
class Settings:
    """The plugin's options, from the command line or else the ini file."""

    mode: str
    server: str | None
    report: str | None
    leak_threshold: float
    report_path: str | None = None  # ``report`` made absolute at start

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        def pick(name: str) -> Any:
            value = config.getoption(name, None)
            return value if value is not None else config.getini(name)

        mode = str(pick("pooldoctor_mode") or "fail").strip().lower()
        if mode not in MODES:
            raise pytest.UsageError(f"pooldoctor_mode must be 'fail' or 'warn', got {mode!r}")
        raw = pick("pooldoctor_leak_threshold")
        try:
            threshold = float(raw)
        except (TypeError, ValueError):
            raise pytest.UsageError(
                f"pooldoctor_leak_threshold must be a number of seconds, got {raw!r}") from None
        if threshold <= 0:
            raise pytest.UsageError(
                f"pooldoctor_leak_threshold must be positive, got {threshold:g}")
        report = str(pick("pooldoctor_report") or "").strip() or None
        # relative to where pytest started, fixed now: a test may change or delete the cwd
        report_path = (os.path.join(str(config.invocation_params.dir), report)
                       if report else None)
        folder = os.path.dirname(report_path) if report_path else ""
        if report and not os.path.isdir(folder):  # say so now, not after the whole run
            raise pytest.UsageError(
                f"pooldoctor_report {report!r}: folder {folder!r} does not exist")
        return cls(mode=mode, server=str(pick("pooldoctor_server") or "").strip() or None,
                   report=report, leak_threshold=threshold, report_path=report_path)
