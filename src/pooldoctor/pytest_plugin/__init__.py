"""The pytest plugin: a test that leaves a database connection behind fails, and says where.

Registered through the ``pytest11`` entry point but inactive until asked for, with
``pytest --pooldoctor`` or ``pooldoctor = true`` in the pytest configuration. Importing this
module is cheap: it registers options and the ``pooldoctor_allow`` marker, nothing else. The
checks live in :mod:`pooldoctor.pytest_plugin.leaks` and are loaded only when the plugin is
enabled.
See docs/pytest.md.
"""

from __future__ import annotations

import pytest

from pooldoctor.pytest_plugin.common import MODES, ConnectionLeakWarning

__all__ = ["MODES", "ConnectionLeakWarning", "enabled"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pooldoctor", "database connection leaks (pooldoctor)")
    group.addoption(
        "--pooldoctor", action="store_true", default=None, dest="pooldoctor",
        help="fail tests that leave a database connection checked out or open "
             "(ini: pooldoctor = true).")
    group.addoption(
        "--no-pooldoctor", action="store_false", dest="pooldoctor",
        help="disable the check even when the configuration enables it.")
    group.addoption(
        "--pooldoctor-mode", choices=MODES, default=None, dest="pooldoctor_mode",
        help="fail (default): a leaking test errors at teardown; warn: a "
             "ConnectionLeakWarning instead (ini: pooldoctor_mode).")
    group.addoption(
        "--pooldoctor-server", metavar="URL", default=None, dest="pooldoctor_server",
        help="also count this process's connections on the database server at URL before "
             "and after each test, and report growth (ini: pooldoctor_server).")
    group.addoption(
        "--pooldoctor-report", metavar="FILE", default=None, dest="pooldoctor_report",
        help="write the pooldoctor.report/1 JSON report to FILE (ini: pooldoctor_report).")
    group.addoption(
        "--pooldoctor-leak-threshold", metavar="SECONDS", type=float, default=None,
        dest="pooldoctor_leak_threshold",
        help="report (PD101, not failing) a connection held longer than SECONDS inside a "
             "test (default 30; ini: pooldoctor_leak_threshold).")
    parser.addini("pooldoctor", type="bool", default=False,
                  help="enable the pooldoctor connection leak check")
    parser.addini("pooldoctor_mode", default="fail", help="fail or warn")
    parser.addini("pooldoctor_server", default="",
                  help="database URL whose connections from this process are counted per test")
    parser.addini("pooldoctor_report", default="", help="file for the JSON report")
    parser.addini("pooldoctor_leak_threshold", default="30",
                  help="seconds after which a held connection is reported as PD101")


@pytest.hookimpl(trylast=True)  # after pytest-xdist has decided whether this is a controller
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pooldoctor_allow(codes=None, reason=None): allow pooldoctor findings (all, or the "
        "given codes such as ['PD105']) for this test.")
    if not enabled(config):
        return
    from pooldoctor.pytest_plugin.leaks import install

    install(config)


def enabled(config: pytest.Config) -> bool:
    """``--pooldoctor`` / ``--no-pooldoctor`` if given, else the ``pooldoctor`` ini value."""
    opt = config.getoption("pooldoctor", None)
    if opt is not None:
        return bool(opt)
    return bool(config.getini("pooldoctor"))
