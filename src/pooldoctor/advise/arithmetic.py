"""Pure arithmetic of pool sizing: bounds, totals against limits, Little's law, recycle.

No I/O here; every function takes numbers and returns numbers (or a short explanation), so the
unit tests can drive them with tables of cases.
"""

from __future__ import annotations

import math

from .model import Allowance, ServerLimits

HEADROOM = 1.5  # pool_size = mean concurrency x headroom (bursts exceed the mean)
RECYCLE_CAP_S = 3600  # SQLAlchemy's docs and the field's usual pool_recycle
RECYCLE_MARGIN = 0.8  # recycle at 80 % of the server's idle timeout
MAX_POOL_TIMEOUT_S = 30.0  # waiting longer than this only hides a leak
PER_CHECKOUT_POOLS = frozenset({"NullPool", "SingletonThreadPool"})


def is_queue_pool(pool_class: str) -> bool:
    """QueuePool and its asyncio variants (AsyncAdaptedQueuePool, ...)."""
    return pool_class.endswith("QueuePool")


def pool_bound(pool_size: int, max_overflow: int, pool_class: str = "QueuePool") -> int | None:
    """The most connections one pool can hold at once; None when unbounded.

    QueuePool (and the asyncio AsyncAdaptedQueuePool) is unbounded with ``max_overflow=-1`` and
    with ``pool_size=0`` ("no limit" in SQLAlchemy); NullPool (one connection per checkout) and
    SingletonThreadPool (one per thread) are bounded only by the program's concurrency;
    StaticPool holds one connection.
    """
    if pool_class in PER_CHECKOUT_POOLS:
        return None
    if pool_class == "StaticPool":
        return 1
    if pool_size <= 0 or max_overflow < 0:
        return None
    return pool_size + max_overflow


def per_process(bound: int | None, concurrency: int | None) -> int | None:
    """Connections one process can open: the pool's bound, or its concurrency if unbounded."""
    return bound if bound is not None else concurrency


def total(instances: int, workers: int, per_proc: int) -> int:
    """Connections all processes together can open."""
    return instances * workers * per_proc


def available(max_connections: int, reserved: int, used_by_others: int) -> int:
    """Server-wide slots left for the application (never negative)."""
    return max(0, max_connections - reserved - used_by_others)


def allowance(limits: ServerLimits) -> Allowance | None:
    """The binding limit among server-wide, per-user and per-database; None if none is known."""
    candidates: list[Allowance] = []
    if limits.max_connections is not None:
        others = limits.used_by_others or 0
        n = available(limits.max_connections, limits.reserved, others)
        parts = [f"max_connections {limits.max_connections}", f"reserved {limits.reserved}"]
        if limits.used_by_others is not None:
            parts.append(f"used by others {others}")
        who = "the server" if limits.source == "server" else "the given limits"
        candidates.append(Allowance(n, "server" if limits.source == "server" else "given",
                                    f"{n} allowed by {who} ({' - '.join(parts)})"))
    if limits.user_limit is not None:
        used = limits.used_by_user or 0
        n = max(0, limits.user_limit - used)
        candidates.append(Allowance(
            n, "user", f"{n} allowed for user {limits.user!r} ({limits.user_limit_name} "
            f"{limits.user_limit} - used by its other sessions {used})"))
    if limits.db_limit is not None:
        used = limits.used_by_db or 0
        n = max(0, limits.db_limit - used)
        candidates.append(Allowance(
            n, "database", f"{n} allowed for database {limits.database!r} ({limits.db_limit_name}"
            f" {limits.db_limit} - used by other sessions {used})"))
    if not candidates:
        return None
    return min(candidates, key=lambda a: a.allowed)  # first of equals: server before user


def mean_concurrency(hold_ms_total: float, observed_s: float, processes: int = 1) -> float:
    """Little's law from totals: mean connections held per process = total hold / time."""
    if observed_s <= 0:
        raise ValueError(f"observed_s must be positive, got {observed_s!r}")
    return hold_ms_total / 1000.0 / observed_s / max(processes, 1)


def littles_law(rate_per_s: float, mean_hold_s: float) -> float:
    """Connections needed on average = checkout rate x mean hold time."""
    if rate_per_s < 0 or mean_hold_s < 0:
        raise ValueError("rate and hold time must not be negative")
    return rate_per_s * mean_hold_s


def size_for(mean: float, peak: int, headroom: float = HEADROOM) -> tuple[int, int]:
    """(pool_size, max_overflow): the mean with headroom kept open, bursts up to ``peak``."""
    if headroom < 1:
        raise ValueError(f"headroom must be at least 1, got {headroom!r}")
    peak = max(1, peak)
    size = max(1, min(peak, math.ceil(mean * headroom - 1e-9)))
    return size, peak - size


def fit(size: int, overflow: int, budget: int) -> tuple[int, int]:
    """Shrink (size, overflow) to at most ``budget`` connections: overflow goes first."""
    if size + overflow <= budget:
        return size, overflow
    if budget <= 0:
        return 0, 0
    if size >= budget:
        return budget, 0
    return size, budget - size


def budget_per_process(allowed: int, instances: int, workers: int) -> int:
    """Connections each process may hold so that all of them fit in ``allowed``."""
    return allowed // max(1, instances * workers)


def max_instances(allowed: int, workers: int, per_proc: int | None) -> int | None:
    """How many instances of ``workers`` processes the server can take; None if unbounded."""
    if per_proc is None or per_proc <= 0:
        return None
    return allowed // (max(1, workers) * per_proc)


def recycle_ok(pool_recycle: float, idle_timeout_s: float | None, pre_ping: bool) -> bool:
    """False when pooled connections can outlive the server's idle timeout unnoticed."""
    if pre_ping or not idle_timeout_s or idle_timeout_s <= 0:
        return True
    return 0 < pool_recycle < idle_timeout_s


def recommended_recycle(idle_timeout_s: float | None) -> int:
    """A pool_recycle below the server's idle timeout (80 %, at most 3600 s, at least 1 s)."""
    if not idle_timeout_s or idle_timeout_s <= 0:
        return RECYCLE_CAP_S
    return max(1, min(RECYCLE_CAP_S, int(idle_timeout_s * RECYCLE_MARGIN)))


def recommended_timeout(pool_timeout: float) -> float:
    """Keep pool_timeout short: a checkout that waits long is waiting for a leak."""
    if pool_timeout <= 0:
        return MAX_POOL_TIMEOUT_S
    return min(pool_timeout, MAX_POOL_TIMEOUT_S)
