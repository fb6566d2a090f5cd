"""The pytest plugin's checks, loaded only when the plugin is enabled (see pytest_plugin.py).

Every hold in the guard's ledger has an increasing id. A test owns the holds created from the
start of its setup to the end of its teardown, except those created while a wider-scoped
fixture (class, module, package, session) was being set up: those belong to that fixture and
are checked when it is finalized. Holds created outside any test (imports, collection) are
checked at the end of the session. A hold still live when its owner ends is a PD105; a hold
whose object was garbage-collected is a PD102 of its owner. With ``--pooldoctor-server``,
growth of the server connections no hold or pool explains is a PD303 of the test. These three
codes fail the test (or warn, in warn mode); other findings are only reported.
"""

from __future__ import annotations

import collections
import gc
import os
import warnings
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from .findings import CATALOGUE, Finding, Site
from .guard import GUARD
from .ledger import Hold
from .pytest_plugin import MODES, ConnectionLeakWarning
from .reports import Report, merge_pools
from .runtime import sqlalchemy as sa_rt

if TYPE_CHECKING:
    from .pytest_server import ServerCounter

PLUGIN_KEY = pytest.StashKey["LeakCheck | Controller"]()
WORKER_OUTPUT = "pooldoctor"


@dataclass(frozen=True)
class Settings:
    """The plugin's options, from the command line or else the ini file."""

    mode: str
    server: str | None
    report: str | None
    leak_threshold: float

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
        folder = os.path.dirname(os.path.abspath(report)) if report else ""
        if report and not os.path.isdir(folder):  # say so now, not after the whole run
            raise pytest.UsageError(
                f"pooldoctor_report {report!r}: folder {folder!r} does not exist")
        return cls(mode=mode, server=str(pick("pooldoctor_server") or "").strip() or None,
                   report=report, leak_threshold=threshold)


def install(config: pytest.Config) -> None:
    """Register the checks (or, in a pytest-xdist controller, the report merger)."""
    settings = Settings.from_config(config)
    plugin: LeakCheck | Controller
    if is_xdist_controller(config):
        plugin = Controller(config, settings)
    else:
        plugin = LeakCheck(config, settings)
    config.stash[PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "pooldoctor-leaks")


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


@dataclass
class Owner:
    """A wider-scoped fixture and the holds created while it was being set up."""

    label: str
    holds: list[Hold]


class LeakCheck:
    """The per-test check, in every process that runs tests."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from . import api

        self.config = config
        self.settings = settings
        self.worker = worker_id(config)
        self.server: ServerCounter | None = None
        if settings.server:
            from .pytest_server import ServerCounter

            self.server = ServerCounter.open(settings.server)  # before instrumenting: unseen
        self.owns_guard = not GUARD.active
        if self.owns_guard:
            api.instrument(log=False, exit_check=False, leak_threshold=settings.leak_threshold)
        GUARD.options.on_finding.append(self._on_finding)
        self.base_id = GUARD.ledger.last_id  # holds up to here predate this session
        self.inbox: collections.deque[Finding] = collections.deque()
        self.gc_pending: dict[int, Finding] = {}  # PD102 by hold id, waiting for its owner
        self.owned: dict[int, Owner] = {}  # hold id -> wider-scoped fixture
        self.owners: dict[int, Owner] = {}  # id(fixturedef) -> its holds
        self.reported: set[int] = set()
        self.current: str | None = None
        self.in_phase = False  # inside a setup or teardown: a fixture leak can fail it
        self.start_id = 0
        self.server_before = 0
        self.findings: list[Finding] = []
        self.tests_checked = 0
        self.tests_failed: list[str] = []
        self.allowed = 0
        self.session_failed = False

    # ------------------------------------------------------------------ guard events

    def _on_finding(self, f: Finding) -> None:
        """Called by the guard, from any thread: queue it for the main thread."""
        if f.code != "PD105":
            self.inbox.append(f)

    def _process_inbox(self) -> None:
        while self.inbox:
            f = self.inbox.popleft()
            hid = f.details.get("hold_id")
            if f.code == "PD102" and isinstance(hid, int):
                if hid > self.base_id and hid not in self.reported:
                    self.gc_pending[hid] = f
                continue
            self._tag(f, self.current)
            self.findings.append(f)  # other codes are reported, never failing

    def _tag(self, f: Finding, test: str | None, fixture: str | None = None) -> None:
        if test:
            f.details["test"] = test
        if fixture:
            f.details["fixture"] = fixture
        if self.worker:
            f.details["worker"] = self.worker

    # ------------------------------------------------------------------ tests

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        self._begin(item)
        self.in_phase = True
        try:
            return (yield)
        finally:
            self.in_phase = False

    def _begin(self, item: pytest.Item) -> None:
        sa_rt.ensure_global_listeners()  # a test's teardown may clear class-level listeners
        if self._on_finding not in GUARD.options.on_finding:  # instrument() called again
            GUARD.options.on_finding.append(self._on_finding)
        self._process_inbox()
        self.current = item.nodeid
        self.start_id = GUARD.ledger.last_id
        if self.server is not None:
            try:
                self.server_before = self.server.unexplained(self._known_server_ids())
            except Exception as e:
                self._server_lost(e)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item,
                                nextitem: pytest.Item | None) -> Generator[None, None, None]:
        self.in_phase = True
        try:
            result = yield
        except pytest.fail.Exception as e:
            self.in_phase = False
            if getattr(e, "pooldoctor", False):  # a wider fixture's leak: add the test's own
                self._end(item, also=e)
            else:
                self._end(item, outcome=False)
            raise
        except BaseException:
            self.in_phase = False
            self._end(item, outcome=False)
            raise
        self.in_phase = False
        self._end(item)
        return result

    def _end(self, item: pytest.Item, outcome: bool = True,
             also: BaseException | None = None) -> None:
        """Check the test's holds; fail or warn unless the teardown failed already."""
        nodeid = item.nodeid
        self.current = None
        self.tests_checked += 1
        mine = [h for h in GUARD.ledger.since(self.start_id)
                if not h.ended and h.id not in self.owned and h.id not in self.reported]
        findings = self._collect(mine, lambda hid: hid > self.start_id and hid not in self.owned,
                                 when=f"at the end of test {nodeid}")
        if self.server is not None:
            findings += self._server_growth(item)
        findings = self._allow(item, findings)
        if not findings:
            return
        for f in findings:
            self._tag(f, nodeid)
        self.findings += findings
        self.tests_failed.append(nodeid)
        if also is not None and self.settings.mode == "fail":
            text = self._text("pooldoctor: the test left", findings)
            also.msg = f"{also.msg}\n\n{text}"  # type: ignore[attr-defined]
        elif outcome:
            self._complain("pooldoctor: the test left", findings)

    def _collect(self, holds: list[Hold], belongs: Any, when: str) -> list[Finding]:
        """PD102 and PD105 findings for ``holds`` and the collected holds that ``belongs``."""
        if any(h() is not None for h in holds):
            gc.collect()  # garbage or still referenced? only a collection can tell
        GUARD.drain()
        self._process_inbox()
        out = [self.gc_pending.pop(hid) for hid in sorted(self.gc_pending) if belongs(hid)]
        live = [h for h in holds if not h.ended and h() is not None]
        out += GUARD.check_exit(live, when=when)
        for f in out:
            hid = f.details.get("hold_id")
            if isinstance(hid, int):
                self.reported.add(hid)
        for f in out:
            if f.code == "PD105":
                GUARD.emit(f)  # PD102 was emitted by the guard already
        return out

    def _allow(self, item: pytest.Item, findings: list[Finding]) -> list[Finding]:
        """Drop the findings the test's ``pooldoctor_allow`` markers allow."""
        allowed = allowed_codes(item)
        if not findings or not allowed:
            return findings
        keep = [f for f in findings if "*" not in allowed and f.code not in allowed]
        self.allowed += len(findings) - len(keep)
        return keep

    def _text(self, who: str, findings: list[Finding], after: str = "",
              marker_hint: bool = True) -> str:
        codes = sorted({f.code for f in findings})
        first = findings[0]
        where = f" at {first.site.short()}" if first.site else ""
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        text = (f"{who} {_count(findings)} behind{after}: {first.code}{where}{more}\n"
                + Report(findings).render_text(color=False).rstrip())
        if marker_hint:
            text += ("\n(to accept this in one test: @pytest.mark.pooldoctor_allow("
                     f"codes={codes!r}, reason=...))")
        return text

    def _complain(self, who: str, findings: list[Finding], after: str = "",
                  marker_hint: bool = True) -> None:
        """Fail the running phase (fail mode) or warn (warn mode)."""
        text = self._text(who, findings, after, marker_hint)
        if self.settings.mode == "warn":
            try:
                warnings.warn(ConnectionLeakWarning(text), stacklevel=1)
                return
            except ConnectionLeakWarning as e:  # escalated with -W error: no plugin traceback
                text = str(e)
        try:
            pytest.fail(text, pytrace=False)
        except pytest.fail.Exception as e:
            e.pooldoctor = True  # type: ignore[attr-defined]
            raise

    # ------------------------------------------------------------------ wider fixtures

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any],
                             request: pytest.FixtureRequest) -> Generator[None, Any, Any]:
        if fixturedef.scope == "function":
            return (yield)
        start = GUARD.ledger.last_id
        try:
            return (yield)
        finally:
            new = [h for h in GUARD.ledger.since(start) if h.id not in self.owned]
            if new:
                owner = self.owners.get(id(fixturedef))
                if owner is None:
                    owner = self.owners[id(fixturedef)] = Owner(_fixture_label(fixturedef), [])
                owner.holds += new
                for h in new:
                    self.owned[h.id] = owner

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any],
                                      request: pytest.FixtureRequest) -> None:
        owner = self.owners.pop(id(fixturedef), None)
        if owner is None:
            return
        ids = {h.id for h in owner.holds}
        findings = self._collect([h for h in owner.holds if h.id not in self.reported],
                                 lambda hid: hid in ids,
                                 when=f"after the teardown of {owner.label}")
        for h in owner.holds:
            self.owned.pop(h.id, None)
        if not findings:
            return
        for f in findings:
            self._tag(f, None, owner.label)
        self.findings += findings
        self.tests_failed.append(owner.label)
        if not self.in_phase:  # finalized by the session's end (after ^C): no test to fail
            self.session_failed = self.session_failed or self.settings.mode == "fail"
            return
        self._complain(f"pooldoctor: {owner.label} left", findings,
                       after=" after its teardown (the test is not to blame)", marker_hint=False)

    # ------------------------------------------------------------------ server counts

    def _known_server_ids(self) -> set[int]:
        return {h.server_id for h in GUARD.ledger.holds()
                if h.server_id is not None and not h.ended}

    def _server_lost(self, e: Exception) -> None:
        """The server count failed (server gone?): say so once and stop counting."""
        from .dbconnect import describe_db_error

        assert self.server is not None
        url = self.server.url
        self.server.close()
        self.server = None
        warnings.warn(pytest.PytestWarning(
            f"pooldoctor: server count against {url} stopped: {describe_db_error(e)}"),
            stacklevel=1)

    def _server_growth(self, item: pytest.Item) -> list[Finding]:
        assert self.server is not None
        try:
            growth = self.server.growth(self.server_before, self._known_server_ids)
        except Exception as e:
            self._server_lost(e)
            return []
        if growth is None:
            return []
        path, line, _ = item.location
        site = Site(str(item.path) if hasattr(item, "path") else path, (line or 0) + 1,
                    item.name)
        return [Finding(
            code="PD303",
            message=(f"{self.server.label} connections of this process that no pool or hold "
                     f"accounts for grew from {growth.before} to {growth.after} during test "
                     f"{item.nodeid}; server connection ids: "
                     + ", ".join(f"{i} (matched by {how})"
                                 for i, how in sorted(growth.matched_by.items()))),
            site=site, pids=[os.getpid()],
            details={"server": self.server.url, "before": growth.before,
                     "after": growth.after, "server_ids": sorted(growth.ids),
                     "matched_by": growth.matched_by})]

    # ------------------------------------------------------------------ session

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.current = None
        live = [h for h in GUARD.ledger.since(self.base_id)
                if not h.ended and h.id not in self.reported]
        findings = self._collect(live, lambda hid: True, when="at the end of the test session")
        for f in findings:
            self._tag(f, None)
        self.findings += findings
        if findings and self.settings.mode == "fail" and not session.config.option.collectonly:
            self.session_failed = True
        if self.session_failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        report = self.report()
        workeroutput = getattr(self.config, "workeroutput", None)
        if isinstance(workeroutput, dict):
            workeroutput[WORKER_OUTPUT] = report.to_dict()
        elif self.settings.report:
            report.write(self.settings.report)

    def report(self) -> Report:
        return Report(self.findings, sa_rt.pool_infos(), {"pytest": self.stats()})

    def stats(self) -> dict[str, Any]:
        return {"mode": self.settings.mode, "tests_checked": self.tests_checked,
                "leaking": list(self.tests_failed), "allowed": self.allowed,
                "session_failed": self.session_failed, "workers": 1}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        summary(terminalreporter, self.report(), self.settings)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        from . import api

        try:
            GUARD.options.on_finding.remove(self._on_finding)
        except ValueError:
            pass
        if self.server is not None:
            self.server.close()
        if self.owns_guard:
            api.uninstrument()


class Controller:
    """In a pytest-xdist controller: merge the workers' reports; the workers do the checks."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.reports: list[dict[str, Any]] = []

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
        if self.settings.report:
            report.write(self.settings.report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        summary(terminalreporter, self.report(), self.settings)


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
        stats["workers"] += 1
    return Report(findings, merge_pools(pools), {"pytest": stats})


def summary(tr: Any, report: Report, settings: Settings) -> None:
    """The ``pooldoctor`` section of the terminal summary."""
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
    if settings.report:
        tr.write_line(f"report written to {settings.report}")


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


def allowed_codes(item: pytest.Item) -> set[str]:
    """The codes a test's ``pooldoctor_allow`` markers allow (``*``: all); fails on a typo."""
    out: set[str] = set()
    for mark in item.iter_markers("pooldoctor_allow"):
        codes = mark.kwargs.get("codes", mark.args[0] if mark.args else None)
        if codes is None:
            out.add("*")
            continue
        for c in [codes] if isinstance(codes, str) else codes:
            code = str(c).upper()
            if code not in CATALOGUE:
                pytest.fail(f"pooldoctor_allow on {item.nodeid}: unknown code {c!r}",
                            pytrace=False)
            out.add(code)
    return out


def _count(findings: list[Finding]) -> str:
    n = len(findings)
    return f"{n} connection{'s' if n != 1 else ''}"


def _fixture_label(fixturedef: pytest.FixtureDef[Any]) -> str:
    func = getattr(fixturedef, "func", None)
    code = getattr(getattr(func, "__wrapped__", func), "__code__", None)
    where = ""
    if code is not None:
        site = Site(code.co_filename, code.co_firstlineno, code.co_name)
        where = f", {site.short()}"
    return f"fixture {fixturedef.argname!r} ({fixturedef.scope} scope{where})"
