"""The checkout's hot path: the C module (pooldoctor._speedups) and its pure-Python twin
(runtime/hotpath.py) must behave the same; both are exercised here on a real SQLite pool.

CI sets POOLDOCTOR_REQUIRE_SPEEDUPS=1: there the C module must be built and in use. The
runtime tests run a second time with POOLDOCTOR_NO_SPEEDUPS=1 (the pure-Python path).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from pooldoctor import api
from pooldoctor.guard import GUARD
from pooldoctor.ledger import Hold
from pooldoctor.runtime import hotpath
from pooldoctor.runtime import sqlalchemy as sa_rt
from pooldoctor.runtime.sqlalchemy import pools as sa_pools
from pooldoctor.sites import is_internal_file, pairs

C = hotpath._c
needs_c = pytest.mark.skipif(C is None, reason="pooldoctor._speedups is not built or is off")

IMPLS: list[Any] = [pytest.param("python", id="python"),
                    pytest.param("c", id="c", marks=needs_c)]


def impl(name: str) -> tuple[Callable[..., Any], Callable[[Hold], bool]]:
    """(checkout, checkin); checkout(info, d, proxy) called from a test captures the test's
    stack, as the pool's connect() calling the real one captures its caller's."""
    assert name == "python" or C is not None
    real = C.checkout if name == "c" else hotpath.checkout_py  # type: ignore[union-attr]

    def connect(info: Any, d: dict[str, Any], proxy: Any) -> Any:
        return real(info, d, proxy)

    return connect, (C.checkin if name == "c" else hotpath.checkin_py)  # type: ignore[union-attr]


def test_speedups_in_use_when_required() -> None:
    if os.environ.get("POOLDOCTOR_REQUIRE_SPEEDUPS") != "1":
        pytest.skip("POOLDOCTOR_REQUIRE_SPEEDUPS is not set")
    assert hotpath.SPEEDUPS, "pooldoctor._speedups is not built or could not be configured"
    assert sa_pools._fast_checkout is C.checkout  # type: ignore[union-attr]


def test_no_speedups_env_turns_them_off(tmp_path: Path) -> None:
    import subprocess

    code = "from pooldoctor.runtime import hotpath; print(hotpath.SPEEDUPS)"
    env = {**os.environ, hotpath.NO_SPEEDUPS_ENV: "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "False"


# --------------------------------------------------------------------------- the stack


def _nest(n: int, fn: Callable[[FrameType], Any]) -> Any:
    """Call fn with the frame at the bottom of n nested calls of this function."""
    if n == 0:
        return fn(sys._getframe())
    return _nest(n - 1, fn)


@needs_c
@pytest.mark.parametrize("depth", [1, 2, 3, 8, 20])
def test_c_and_python_capture_the_same_stack(depth: int) -> None:
    is_internal_file(__file__)  # judged, as a checkout would have it

    def both(f: FrameType) -> tuple[Any, Any]:
        return C.user_stack(f, depth), hotpath.user_stack_py(f, depth)  # type: ignore[union-attr]

    c, py = _nest(4, both)
    assert c == py
    assert len(c) == 2 * depth  # pytest's stack is deeper than 20 frames
    assert c[0] is _nest.__code__


@pytest.mark.parametrize("name", IMPLS)
def test_user_stack_starts_at_the_first_user_frame_and_declines_unjudged_files(
        name: str, tmp_path: Path) -> None:
    user_stack = C.user_stack if name == "c" else hotpath.user_stack_py  # type: ignore[union-attr]
    is_internal_file(__file__)
    lib = tmp_path / "somelib.py"
    lib.write_text("def call(fn):\n    import sys\n    return fn(sys._getframe())\n")
    ns: dict[str, Any] = {}
    exec(compile(lib.read_text(), str(lib), "exec"), ns)

    def through_lib() -> Any:
        return ns["call"](lambda f: user_stack(f, 8))

    assert through_lib() is None  # somelib.py not judged yet: the careful path judges it
    hotpath._judged[str(lib)] = True  # now judged internal (as a library would be)
    frames = through_lib()
    assert frames is not None
    # the walk starts in somelib's call(), which is skipped: through_lib is the first user frame
    assert [code for code, _ in pairs(frames)[:2]] == [
        through_lib.__code__,
        test_user_stack_starts_at_the_first_user_frame_and_declines_unjudged_files.__code__]
    del hotpath._judged[str(lib)]


# --------------------------------------------------------------------------- holds


@pytest.fixture
def pool_info(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    api.instrument(log=False, exit_check=False, drivers=False)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    info = sa_rt.adopt_pool(engine.pool)
    try:
        yield engine, info
    finally:
        engine.dispose()
        api.uninstrument()
        GUARD.clear()
        gc.collect()


class Proxy:
    """Stands in for SQLAlchemy's connection proxy (the hold's weak referent)."""


@pytest.fixture(params=IMPLS)
def hot(request: pytest.FixtureRequest, pool_info: Any,
        monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """One implementation's checkout and checkin, a guarded pool's info, a proxy; no
    observers (other tests may leave the metrics recorder installed: it is process-wide)."""
    checkout, checkin = impl(request.param)
    monkeypatch.setattr(GUARD, "observers", [])
    is_internal_file(__file__)  # judged, as a checkout would have it
    return SimpleNamespace(checkout=checkout, checkin=checkin, info=pool_info[1],
                           proxy=Proxy())


def test_checkout_fills_the_hold_and_checkin_ends_it(hot: SimpleNamespace) -> None:
    checkout, checkin, info, proxy = hot.checkout, hot.checkin, hot.info, hot.proxy
    d: dict[str, Any] = {"_pd_pid": GUARD.pid, "_pd_server_id": 4242}
    before = info.checkouts
    t0 = time.monotonic()
    h = checkout(info, d, proxy)
    assert isinstance(h, Hold)
    assert d["_pd_hold"] is h and info.holds[h.id] is h
    assert h() is proxy and h.pool is info and h.pid == GUARD.pid
    assert h.server_id == 4242 and h.reported is False and h.task is None
    assert t0 <= h.since <= time.monotonic()
    assert h.thread_id == __import__("threading").get_ident()
    assert pairs(h.frames)[0][0] is test_checkout_fills_the_hold_and_checkin_ends_it.__code__
    assert h.id == GUARD.ledger.last_id
    assert info.checkouts == before + 1 and info.peak_checked_out >= 1
    total = info.hold_s_total
    del d["_pd_hold"]
    assert checkin(h) is True
    assert h.id not in info.holds
    assert info.hold_s_total > total
    assert checkin(h) is True  # ended already: nothing more to do


def test_checkout_declines_what_needs_the_careful_path(hot: SimpleNamespace) -> None:
    checkout, info, proxy = hot.checkout, hot.info, hot.proxy
    assert checkout(None, {"_pd_pid": GUARD.pid}, proxy) is None  # no pool info
    assert checkout(info, {}, proxy) is None  # made before the guard
    assert checkout(info, {"_pd_pid": -1}, proxy) is None  # made in another process
    held = {"_pd_pid": GUARD.pid, "_pd_hold": object()}
    assert checkout(info, held, proxy) is None  # a hold left over: _track ends it
    assert not info.holds


def test_checkin_declines_reported_observed_and_collected(hot: SimpleNamespace) -> None:
    checkout, checkin, info, proxy = hot.checkout, hot.checkin, hot.info, hot.proxy

    h = checkout(info, {"_pd_pid": GUARD.pid}, proxy)
    h.reported = True  # PD101 told: the careful path says "unleaked"
    assert checkin(h) is False and h.id in info.holds

    h2 = checkout(info, {"_pd_pid": GUARD.pid}, proxy)
    observer = object()
    GUARD.observers.append(observer)
    try:
        assert checkin(h2) is False and h2.id in info.holds
    finally:
        GUARD.observers.remove(observer)

    gone = Proxy()
    h3 = checkout(info, {"_pd_pid": GUARD.pid}, gone)
    del gone
    gc.collect()
    assert h3() is None
    assert checkin(h3) is False  # the garbage collector's checkin: PD102's path


def test_checkout_in_a_running_loop_names_the_task(hot: SimpleNamespace) -> None:
    async def main() -> Hold:
        h: Hold = hot.checkout(hot.info, {"_pd_pid": GUARD.pid}, hot.proxy)
        return h

    h = asyncio.run(main())
    assert h.task is not None and h.task.startswith("Task-")


@needs_c
def test_configure_refuses_a_hold_type_that_does_not_fit() -> None:
    class Other(Hold):
        def __init__(self, *args: Any) -> None:  # C would skip this
            super().__init__()

    args = (GUARD, Other, GUARD.on_collected, hotpath._judged, GUARD.ledger.ids,
            asyncio._get_running_loop, lambda: None, hotpath.capture)
    with pytest.raises(TypeError, match="__init__"):
        C.configure(*args)  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        C.configure(GUARD, dict, *args[2:])  # type: ignore[union-attr]
    # the module keeps its configuration: a checkout still works
    assert hotpath.checkout is C.checkout  # type: ignore[union-attr]


def test_pool_cycle_uses_the_fast_path_and_names_the_line(pool_info: Any) -> None:
    engine, info = pool_info
    c = engine.pool.connect()  # the line the hold must name
    line = sys._getframe().f_lineno - 1
    (h,) = info.holds.values()
    from pooldoctor.sites import site_of

    site = site_of(h.frames)
    assert site is not None and site.line == line and site.file == __file__
    c.close()
    assert not info.holds


@needs_c
def test_c_and_python_checkouts_capture_the_same_stack(pool_info: Any) -> None:
    """The C module reads the interpreter's frames (3.11, 3.12) or the public frame API;
    either way, the stack is the one the pure-Python checkout captures."""
    _, info = pool_info
    is_internal_file(__file__)
    proxies = [Proxy(), Proxy()]

    def connect(real: Callable[..., Any], proxy: Proxy) -> Any:  # stands for Pool.connect()
        return real(info, {"_pd_pid": GUARD.pid}, proxy)

    def user_code(real: Callable[..., Any], proxy: Proxy) -> Any:
        return connect(real, proxy)

    def one(real: Callable[..., Any], proxy: Proxy) -> Any:
        return _nest(3, lambda f: user_code(real, proxy))

    def both() -> list[Any]:  # both captured from the same line of the same frames
        return [one(real, proxy) for real, proxy in
                zip((C.checkout, hotpath.checkout_py), proxies)]  # type: ignore[union-attr]

    hc, hpy = both()
    assert hc.frames == hpy.frames
    names = [code.co_name for code, _ in pairs(hc.frames)]
    assert names[:7] == ["user_code", "<lambda>", "_nest", "_nest", "_nest", "_nest", "one"]
    assert all(lasti >= 0 for _, lasti in pairs(hc.frames))


@needs_c
def test_txn_hook_records_the_transaction_and_passes_errors_through(pool_info: Any) -> None:
    """The C transaction hooks: a begin and an end are recorded on the hold of the proxy they
    are given; the dialect method's result and exceptions pass through untouched; anything
    that is not a pool's proxy is left alone."""
    engine, info = pool_info
    calls: list[Any] = []

    def begin(conn: Any) -> None:
        calls.append(("begin", conn))

    def rollback(conn: Any) -> None:
        calls.append(("rollback", conn))
        raise RuntimeError("server went away")

    hook_begin = C.TxnHook(begin, True)  # type: ignore[union-attr]
    hook_end = C.TxnHook(rollback, False)  # type: ignore[union-attr]
    assert hook_begin.orig is begin
    fairy = engine.pool.connect()
    (h,) = info.holds.values()
    assert h.txn_since is None and h.txn_begun is False
    assert hook_begin(fairy) is None
    assert h.txn_since is not None and h.txn_begun is True and h.txn_frames is None
    with pytest.raises(RuntimeError, match="server went away"):
        hook_end(fairy)
    assert h.txn_since is None  # failed or not, the transaction is over

    def begin_impl(conn: Any) -> None:  # stands for SQLAlchemy's Connection._begin_impl()
        hook_begin(conn)

    begin_impl(fairy)  # a second transaction on the same checkout: its own begin stack
    assert pairs(h.txn_frames)[0][0] is \
        test_txn_hook_records_the_transaction_and_passes_errors_through.__code__
    hook_begin(object())  # not a pool's proxy: nothing to record, no error
    with pytest.raises(TypeError):
        C.TxnHook(42, True)  # type: ignore[union-attr]
    assert [c[0] for c in calls] == ["begin", "rollback", "begin", "begin"]
    fairy.close()
