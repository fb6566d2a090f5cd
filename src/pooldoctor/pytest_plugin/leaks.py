"""The pytest plugin's checks, loaded only when the plugin is enabled (see ``__init__.py``).

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
import sys
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pooldoctor.findings import Finding
from pooldoctor.guard import GUARD
from pooldoctor.ledger import Hold
from pooldoctor.pytest_plugin.labels import allowed_codes, fixture_label
from pooldoctor.pytest_plugin.settings import WORKER_OUTPUT, Settings
from pooldoctor.pytest_plugin.summary import summary, write_report
from pooldoctor.pytest_plugin.telling import complain, growth_finding, known_server_ids, leak_text
from pooldoctor.pytest_plugin.xdist import Controller, is_xdist_controller, worker_id
from pooldoctor.reports import Report
from pooldoctor.runtime import sqlalchemy as sa_rt

if TYPE_CHECKING:
    from pooldoctor.pytest_plugin.server import ServerCounter

PLUGIN_KEY = pytest.StashKey["LeakCheck | Controller"]()
T = TypeVar("T")
# Before 3.14 (generational collector), objects made since the collector last passed over
# generation 1 are all in generations 0 and 1, where gc.collect(1) finds their garbage.
YOUNG_GC = sys.version_info < (3, 14)


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


@dataclass
class Owner:
    """A wider-scoped fixture and the holds created while it was being set up."""

    label: str
    holds: list[Hold]


class LeakCheck:
    """The per-test check, in every process that runs tests."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        from pooldoctor import api

        self.config = config
        self.settings = settings
        self.worker = worker_id(config)
        self.server: ServerCounter | None = None
        if settings.server:
            from pooldoctor.pytest_plugin.server import ServerCounter

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
        self.internal_errors = 0
        self.report_note = ""
        self.old_passes = 0  # the collector's passes over generation 1 or 2 so far
        self.young_since = -1  # old_passes when the running test began
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info.get("generation", 2) >= 1:
            self.old_passes += 1

    def _guarded(self, where: str, fn: Callable[[], T], default: T) -> T:
        """``fn()``; a failure of the plugin itself is counted and logged, never raised into
        the test run (a pytest outcome, such as the leak's own failure, passes through)."""
        try:
            return fn()
        except Exception:
            self.internal_errors += 1
            GUARD.internal_error(f"pytest plugin {where}")
            return default

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
        self._guarded("setup", lambda: self._begin(item), None)
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
        self.young_since = self.old_passes
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
        none: list[Finding] = []
        findings = self._allow(item, self._guarded("teardown", lambda: self._leaks(item), none))
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

    def _leaks(self, item: pytest.Item) -> list[Finding]:
        mine = [h for h in GUARD.ledger.since(self.start_id)
                if not h.ended and h.id not in self.owned and h.id not in self.reported]
        findings = self._collect(mine, lambda hid: hid > self.start_id and hid not in self.owned,
                                 when=f"at the end of test {item.nodeid}", young=True)
        if self.server is not None:
            findings += self._server_growth(item)
        return findings

    def _collect(self, holds: list[Hold], belongs: Any, when: str,
                 young: bool = False) -> list[Finding]:
        """PD102 and PD105 findings for ``holds`` and the collected holds that ``belongs``.

        ``young``: the holds were all taken since the running test began. Garbage or still
        referenced? Only a collection can tell; when the collector has not passed over the
        older generations since the test began, everything the test made is still young and a
        young collection finds the same garbage as a full one, for a fraction of its cost.
        """
        if any(h() is not None for h in holds):
            if young and YOUNG_GC and self.young_since == self.old_passes:
                gc.collect(1)
            else:
                gc.collect()
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
        return leak_text(who, findings, after, marker_hint)

    def _complain(self, who: str, findings: list[Finding], after: str = "",
                  marker_hint: bool = True) -> None:
        """Fail the running phase (fail mode) or warn (warn mode)."""
        complain(self.settings.mode, leak_text(who, findings, after, marker_hint))

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
            self._guarded("fixture setup", lambda: self._claim(fixturedef, start), None)

    def _claim(self, fixturedef: pytest.FixtureDef[Any], start: int) -> None:
        """The holds taken since ``start`` belong to the wider fixture being set up."""
        new = [h for h in GUARD.ledger.since(start) if h.id not in self.owned]
        if new:
            owner = self.owners.get(id(fixturedef))
            if owner is None:
                owner = self.owners[id(fixturedef)] = Owner(fixture_label(fixturedef), [])
            owner.holds += new
            for h in new:
                self.owned[h.id] = owner

    def pytest_fixture_post_finalizer(self, fixturedef: pytest.FixtureDef[Any],
                                      request: pytest.FixtureRequest) -> None:
        owner = self.owners.pop(id(fixturedef), None)
        if owner is None:
            return
        ids = {h.id for h in owner.holds}
        findings: list[Finding] = self._guarded("fixture teardown", lambda: self._collect(
            [h for h in owner.holds if h.id not in self.reported], lambda hid: hid in ids,
            when=f"after the teardown of {owner.label}"), [])
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
        return known_server_ids()

    def _server_lost(self, e: Exception) -> None:
        """The server count failed (server gone?): say so once and stop counting."""
        from pooldoctor.dbconnect import describe_db_error

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
        return [growth_finding(self.server, growth, item)]

    # ------------------------------------------------------------------ session

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.current = None
        live = [h for h in GUARD.ledger.since(self.base_id)
                if not h.ended and h.id not in self.reported]
        findings: list[Finding] = self._guarded("session end", lambda: self._collect(
            live, lambda hid: True, when="at the end of the test session"), [])
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
        else:
            self.report_note = write_report(report, self.settings)

    def report(self) -> Report:
        pools: list[dict[str, Any]] = self._guarded("pool figures", sa_rt.pool_infos, [])
        return Report(self.findings, pools, {"pytest": self.stats()})

    def stats(self) -> dict[str, Any]:
        return {"mode": self.settings.mode, "tests_checked": self.tests_checked,
                "leaking": list(self.tests_failed), "allowed": self.allowed,
                "session_failed": self.session_failed, "workers": 1,
                "internal_errors": self.internal_errors}

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        summary(terminalreporter, self.report(), self.settings, self.report_note)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        from pooldoctor import api

        try:
            GUARD.options.on_finding.remove(self._on_finding)
        except ValueError:
            pass
        try:
            gc.callbacks.remove(self._on_gc)
        except ValueError:
            pass
        if self.server is not None:
            self.server.close()
        if self.owns_guard:
            api.uninstrument()
