"""The public runtime API: instrument(), uninstrument(), report(), holds()."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from .findings import Finding
from .guard import GUARD, Options
from .reports import Report


def instrument(
    engine: Any = None,
    *,
    leak_threshold: float = 30.0,
    transaction_threshold: float = 10.0,
    wait_threshold: float = 0.1,
    many_threshold: int = 10,
    engine_threshold: int = 3,
    stack_depth: int = 8,
    fork_safety: Literal["warn", "repair"] = "warn",
    name: str | None = None,
    drivers: bool = True,
    log: bool = True,
    exit_check: bool = True,
    on_finding: Callable[[Finding], None] | None = None,
    events_path: str | None = None,
) -> None:
    """Install the runtime guard.

    With ``engine`` (an ``Engine`` or ``AsyncEngine``), guard that engine; with none, guard
    every engine of the process, including engines created later, and (``drivers=True``) the
    ``connect()`` of every importable DB-API driver. Options apply to the whole process; calling
    again replaces them. Thresholds are in seconds.
    """
    options = Options(
        leak_threshold=leak_threshold,
        transaction_threshold=transaction_threshold,
        wait_threshold=wait_threshold,
        many_threshold=many_threshold,
        engine_threshold=engine_threshold,
        stack_depth=stack_depth,
        fork_safety=fork_safety,
        log=log,
        exit_check=exit_check,
        events_path=events_path,
        on_finding=[on_finding] if on_finding is not None else [],
    )
    from .runtime import registry

    GUARD.configure(options)
    GUARD.pool_infos = registry.pool_infos
    registry.set_repair_mode(options.fork_safety == "repair")
    if engine is None:
        registry.install(drivers=drivers)
    else:
        from .runtime import sqlalchemy as sa  # the program has an engine: SQLAlchemy is in

        sa.set_repair_mode(options.fork_safety == "repair")
        sa.install_engine(engine, name=name)
    try:  # publish holds for the server watch's attribution (runtime/publish.py)
        from .runtime import publish

        publish.install(GUARD)
    except Exception:
        GUARD.internal_error("publish install")


def uninstrument() -> None:
    """Remove the guard; findings made so far stay available through :func:`report`."""
    from .runtime import registry

    GUARD.drain()
    GUARD.deactivate()
    registry.uninstall()


def report(*, include_held: bool = False) -> Report:
    """The findings of this process so far and the figures of every guarded pool.

    With ``include_held``, connections still held right now are added as PD105 findings.
    """
    from .runtime import registry

    GUARD.drain()
    findings = GUARD.collector.findings()
    if include_held:
        findings += GUARD.check_exit(when="still held")
    return Report(findings, registry.pool_infos())


def holds() -> list[dict[str, Any]]:
    """The live holds of this process, oldest first, as plain data."""
    GUARD.drain()
    return [h.describe() for h in GUARD.ledger.holds() if not h.ended]
