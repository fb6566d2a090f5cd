"""The pytest plugin's pieces that need no inner test run."""

from __future__ import annotations

import socket
import subprocess
import sys

from pooldoctor.findings import Finding, Site
from pooldoctor.pytest_plugin.server import _decode, _norm, local_endpoints
from pooldoctor.pytest_plugin.xdist import merge_reports
from pooldoctor.reports import Report


def test_importing_the_entry_point_is_cheap() -> None:
    code = ("import sys, pooldoctor.pytest_plugin as p; "
            "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'pooldoctor'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "sqlalchemy" not in out
    assert "pooldoctor.pytest_plugin.leaks" not in out
    assert "pooldoctor.guard" not in out


def _report(worker: str, test: str, line: int, checked: int) -> dict[str, object]:
    f = Finding("PD105", f"connection checked out at the end of test {test}",
                site=Site("/src/t.py", line, "test_x"), details={"test": test, "worker": worker})
    return Report([f], [{"url": "sqlite:///x", "pool_class": "QueuePool", "checkouts": 3,
                         "peak_checked_out": checked}],
                  {"pytest": {"tests_checked": checked, "leaking": [test], "allowed": 1,
                              "session_failed": False}}).to_dict()


def test_merge_reports_adds_up_workers() -> None:
    merged = merge_reports([_report("gw0", "t.py::a", 3, 2), _report("gw1", "t.py::b", 9, 5)],
                           "fail")
    stats = merged.extra["pytest"]
    assert stats == {"mode": "fail", "tests_checked": 7, "leaking": ["t.py::a", "t.py::b"],
                     "allowed": 2, "session_failed": False, "workers": 2,
                     "internal_errors": 0}
    assert sorted(f.site.line for f in merged.findings if f.site) == [3, 9]
    [pool] = merged.pools
    assert pool["checkouts"] == 6 and pool["peak_checked_out"] == 5 and pool["processes"] == 2


def test_merge_reports_same_site_is_one_finding_with_a_count() -> None:
    merged = merge_reports([_report("gw0", "t.py::a", 3, 1), _report("gw1", "t.py::a", 3, 1)],
                           "warn")
    [f] = merged.findings
    assert f.count == 2


def test_merge_reports_of_no_worker() -> None:
    merged = merge_reports([], "fail")
    assert merged.findings == [] and merged.extra["pytest"]["workers"] == 0


def test_decode_proc_net_addresses() -> None:
    assert _decode("0100007F") == "127.0.0.1"
    assert _decode("0000000000000000FFFF00000100007F") == "127.0.0.1"  # v4-mapped v6
    assert _decode("00000000000000000000000001000000") == "::1"
    assert _norm("[::ffff:10.0.0.5]") == "10.0.0.5"
    assert _norm("localhost") == "127.0.0.1"
    assert _norm("10.1.2.3") == "10.1.2.3"


def test_local_endpoints_sees_our_sockets_only() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    local = ("127.0.0.1", client.getsockname()[1])
    try:
        mine = local_endpoints(port)
        assert local in mine
        # the accepted side's remote port is the client's, not ``port``: not listed
        assert all(p != port for _, p in mine)
        assert local_endpoints(1) == set()
    finally:
        accepted.close()
        client.close()
        server.close()
    assert local not in local_endpoints(port)  # closed: gone


def test_the_plugin_modules_import_no_cycle() -> None:
    """The plugin's modules import one another in one direction only (no import cycle, lazy
    imports included)."""
    import ast
    import pathlib

    import pooldoctor.pytest_plugin as pkg

    folder = pathlib.Path(pkg.__file__).parent
    edges: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        name = "pooldoctor.pytest_plugin" + ("" if path.stem == "__init__" else f".{path.stem}")
        edges[name] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module if node.level == 0 else None
                assert mod is not None, f"{path.name}: relative import"  # absolute imports only
                if mod.startswith("pooldoctor.pytest_plugin"):
                    edges[name].add(mod)
    assert len(edges) >= 5
    seen: set[str] = set()

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, f"import cycle: {' -> '.join((*path, mod))}"
        if mod in seen:
            return
        for nxt in edges.get(mod, ()):
            visit(nxt, (*path, mod))
        seen.add(mod)

    for mod in edges:
        visit(mod, ())
