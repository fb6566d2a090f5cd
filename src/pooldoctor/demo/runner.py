"""Run the demo's scenarios, each in its own guarded process, and show what pooldoctor says."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import tempfile
from dataclasses import dataclass
from types import ModuleType

from ..reports import Report
from ..runtime.runner import run_guarded
from . import scenarios

ORDER = ["never_returned", "gc_reclaimed", "small_pool", "engine_per_call", "long_transaction",
         "fork", "raw_sqlite", "ended_thread"]


@dataclass
class Outcome:
    name: str
    title: str
    expected: list[str]
    report: Report
    exit_code: int
    output: str

    @property
    def missing(self) -> list[str]:
        got = set(self.report.codes())
        return [c for c in self.expected if c not in got]


def available() -> dict[str, ModuleType]:
    names = [m.name for m in pkgutil.iter_modules(scenarios.__path__)]
    ordered = [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)
    return {n: importlib.import_module(f"{scenarios.__name__}.{n}") for n in ordered}


def run_one(name: str, module: ModuleType) -> Outcome:
    options = dict(getattr(module, "OPTIONS", {}))
    options.setdefault("log", False)
    with tempfile.TemporaryDirectory(prefix="pooldoctor-demo-") as workdir:
        code = (f"from {module.__name__} import main; main({workdir!r})")
        result, completed = run_guarded([sys.executable, "-c", code], options, capture=True,
                                        cwd=workdir)
    output = (completed.stdout + completed.stderr) if completed else ""
    return Outcome(name, module.TITLE, list(module.EXPECT), result.report, result.exit_code,
                   output)
