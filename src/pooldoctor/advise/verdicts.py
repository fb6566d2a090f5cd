"""Verdicts (findings PD401-PD404) and a recommended configuration, with the numbers behind them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..findings import Finding
from . import arithmetic as ar
from .model import Allowance, Measured, PoolConfig, Recommendation, ServerLimits


@dataclass
class Advice:
    """Everything ``pooldoctor advise`` says: inputs, verdicts, recommendation, notes."""

    config: PoolConfig
    limits: ServerLimits | None
    measured: Measured | None
    allowance: Allowance | None
    findings: list[Finding]
    recommendation: Recommendation
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "app": self.config.to_dict(),
            "server": self.limits.to_dict() if self.limits else None,
            "measured": self.measured.to_dict() if self.measured else None,
            "allowance": None if self.allowance is None else {
                "allowed": self.allowance.allowed, "limit": self.allowance.limit,
                "explanation": self.allowance.explanation},
            "recommended": self.recommendation.to_dict(),
            "notes": list(self.notes),
        }


def _s(n: float) -> str:
    return f"{n:g}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{'es' if word.endswith('s') else 's'}"


def _pool_text(c: PoolConfig) -> str:
    return f"pool_size {c.pool_size} + max_overflow {c.max_overflow}"


def evaluate(config: PoolConfig, limits: ServerLimits | None = None,
             measured: Measured | None = None, headroom: float = ar.HEADROOM) -> Advice:
    """Check ``config`` against ``limits`` and ``measured``; recommend a configuration."""
    allowance = ar.allowance(limits) if limits is not None else None
    bound = ar.pool_bound(config.pool_size, config.max_overflow, config.pool_class)
    per = ar.per_process(bound, config.threads)
    findings: list[Finding] = []
    notes: list[str] = list(limits.notes) if limits else []

    f401 = _check_total(config, bound, per, allowance)
    if f401:
        findings.append(f401)
    f402 = _check_concurrency(config, bound, measured)
    if f402:
        findings.append(f402)
    f403 = _check_recycle(config, limits)
    if f403:
        findings.append(f403)
    f404 = _check_unbounded(config, bound)
    if f404:
        findings.append(f404)

    rec = recommend(config, bound, per, allowance, limits, measured, headroom)
    if allowance is not None and per is not None:
        tot = ar.total(config.instances, config.workers, per)
        if tot <= allowance.allowed < 2 * tot:
            notes.append(f"a rolling deploy that runs old and new workers side by side needs up "
                         f"to 2 x {tot} = {2 * tot} connections; {allowance.allowed} are allowed")
    if limits is None:
        notes.append("no server limits: give the server URL, or --max-connections and "
                     "--wait-timeout, to check the totals and pool_recycle")
    elif limits.used_by_others:
        n = limits.used_by_others
        notes.append(f"{_plural(n, 'connection')} open right now {'is' if n == 1 else 'are'} "
                     "counted as used by others; if the application is running, its own are "
                     "among them")
    return Advice(config, limits, measured, allowance, findings, rec, notes)


# ----------------------------------------------------------------------------- checks


def _check_total(c: PoolConfig, bound: int | None, per: int | None,
                 allowance: Allowance | None) -> Finding | None:
    if per is None or allowance is None:
        return None
    tot = ar.total(c.instances, c.workers, per)
    if tot <= allowance.allowed:
        return None
    shape = f"{_plural(c.instances, 'instance')} x " if c.instances > 1 else ""
    shape += f"{_plural(c.workers, 'worker')} x "
    if bound is not None:
        shape += f"({_pool_text(c)})" if c.pool_class != "StaticPool" else "1 (StaticPool)"
    else:
        kind = c.pool_class if c.pool_class in ar.PER_CHECKOUT_POOLS else "pool unbounded"
        shape += f"{c.threads} threads ({kind})"
    return Finding("PD401", f"{shape} = {_plural(tot, 'connection')} > {allowance.explanation}",
                   site=c.site, details={
                       "instances": c.instances, "workers": c.workers, "per_process": per,
                       "total": tot, "allowed": allowance.allowed, "limit": allowance.limit,
                       "pool_size": c.pool_size, "max_overflow": c.max_overflow})


def _check_concurrency(c: PoolConfig, bound: int | None,
                       m: Measured | None) -> Finding | None:
    if bound is None:
        return None
    parts: list[str] = []
    details: dict[str, Any] = {"bound": bound}
    if c.threads is not None and c.threads > bound:
        parts.append(f"{c.threads} threads per worker share a pool of at most "
                     f"{_plural(bound, 'connection')} ({_pool_text(c)}): "
                     f"{c.threads - bound} of them "
                     f"wait{'s' if c.threads - bound == 1 else ''} up to "
                     f"pool_timeout {_s(c.pool_timeout)} s when all hold one")
        details["threads"] = c.threads
    if m is not None and (m.timeouts > 0 or (m.waits > 0 and m.peak_checked_out >= bound)):
        parts.append(f"measured: peak {m.peak_checked_out} checked out of at most {bound} "
                     f"({_pool_text(c)}), {_plural(m.waits, 'checkout')} waited "
                     f"(max {m.max_wait_ms:.0f} ms), {m.timeouts} timed out")
        details.update(peak_checked_out=m.peak_checked_out, waits=m.waits,
                       timeouts=m.timeouts, max_wait_ms=m.max_wait_ms)
    if not parts:
        return None
    return Finding("PD402", "; ".join(parts), site=c.site, details=details)


def _check_recycle(c: PoolConfig, limits: ServerLimits | None) -> Finding | None:
    if limits is None or limits.idle_timeout_s is None:
        return None
    t = limits.idle_timeout_s
    if ar.recycle_ok(c.pool_recycle, t, c.pre_ping):
        return None
    name = limits.idle_timeout_name or "idle timeout"
    if c.pool_recycle <= 0:
        msg = (f"pool_recycle is not set ({_s(c.pool_recycle)}) and pool_pre_ping is off, but the "
               f"server closes connections idle for {name} {_s(t)} s: the first checkout after "
               "a quiet spell fails with a lost connection")
    else:
        msg = (f"pool_recycle {_s(c.pool_recycle)} s >= the server's {name} {_s(t)} s and "
               "pool_pre_ping is off: the server closes an idle pooled connection before the "
               "pool recycles it")
    return Finding("PD403", msg, site=c.site, details={
        "pool_recycle": c.pool_recycle, "idle_timeout_s": t, "idle_timeout_name": name,
        "pre_ping": c.pre_ping, "recommended_recycle": ar.recommended_recycle(t)})


def _check_unbounded(c: PoolConfig, bound: int | None) -> Finding | None:
    if bound is not None or not ar.is_queue_pool(c.pool_class):
        return None
    if c.max_overflow < 0:
        why = f"max_overflow {c.max_overflow}: the pool opens a new connection for every " \
              "concurrent checkout, with no bound"
    else:
        why = f"pool_size {c.pool_size}: QueuePool takes 0 as 'no limit'"
    if c.threads is not None:
        why += f"; only the program's {c.threads} threads per worker limit it"
    return Finding("PD404", why, site=c.site, details={
        "pool_size": c.pool_size, "max_overflow": c.max_overflow})


# ----------------------------------------------------------------------------- recommendation


def recommend(c: PoolConfig, bound: int | None, per: int | None, allowance: Allowance | None,
              limits: ServerLimits | None, m: Measured | None,
              headroom: float = ar.HEADROOM) -> Recommendation:
    """A configuration sized from the program's concurrency and fitted to the server."""
    reasons: list[str] = []
    mean: float | None = None
    if m is not None and m.hold_ms_total is not None and m.observed_s:
        mean = ar.mean_concurrency(m.hold_ms_total, m.observed_s, m.processes)
    # the peak number of connections one process wants at once
    if c.threads is not None:
        peak, peak_from = c.threads, f"threads {c.threads} ({c.source_of('threads')})"
    elif m is not None and m.checkouts > 0:
        peak, peak_from = max(1, m.peak_checked_out), f"measured peak {m.peak_checked_out}"
        if bound is not None and m.peak_checked_out >= bound and (m.waits or m.timeouts):
            reasons.append("the pool was saturated while measured: the real demand is higher "
                           "than the measured peak; give --threads to size for it")
    else:
        peak, peak_from = 0, ""
    if mean is not None and m is not None:
        rate, hold = m.checkout_rate or 0.0, m.mean_hold_s or 0.0
        basis = (f"Little's law: {rate:.2f} checkouts/s x {hold * 1000:.1f} ms mean hold = "
                 f"{mean:.2f} connections in use on average, x headroom {headroom:g}")
        size, overflow = ar.size_for(mean, max(peak, math.ceil(mean * headroom - 1e-9)),
                                     headroom)
        if peak_from:
            basis += f"; overflow up to the {peak_from}"
    elif peak:
        size, overflow = max(1, peak), 0
        basis = f"one connection for each of the {peak_from}"
    elif bound is not None:
        size, overflow = c.pool_size, c.max_overflow
        basis = "the current pool (no concurrency given or measured)"
    else:
        size = c.pool_size if c.pool_size > 0 else 5
        overflow = 10
        basis = "SQLAlchemy's defaults (the pool is unbounded; no concurrency given or measured)"

    max_inst_current: int | None = None
    max_inst: int | None = None
    if allowance is not None:
        budget = ar.budget_per_process(allowance.allowed, c.instances, c.workers)
        processes = c.instances * c.workers
        if budget <= 0:
            reasons.append(f"the server has no room for {_plural(processes, 'process')} "
                           f"({allowance.explanation}): run fewer workers or raise the limit")
            size, overflow = 1, 0
        elif size + overflow > budget:
            size, overflow = ar.fit(size, overflow, budget)
            reasons.append(f"fitted to {_plural(budget, 'connection')} per process = "
                           f"{allowance.allowed} allowed / {_plural(processes, 'process')}")
            if peak and size + overflow < peak:
                reasons.append(f"{peak - size - overflow} of the {peak_from} will wait for a "
                               "connection at peak: run fewer workers or raise the limit")
        max_inst = ar.max_instances(allowance.allowed, c.workers, size + overflow)
        max_inst_current = ar.max_instances(allowance.allowed, c.workers, per)

    idle = limits.idle_timeout_s if limits else None
    recycle = ar.recommended_recycle(idle)
    if 0 < c.pool_recycle <= recycle:
        recycle = int(c.pool_recycle)
    if idle:
        name = limits.idle_timeout_name if limits else "idle timeout"
        reasons.append(f"pool_recycle {recycle} s < the server's {name} {_s(idle)} s")
    timeout = ar.recommended_timeout(c.pool_timeout)
    if timeout != c.pool_timeout:
        reasons.append(f"pool_timeout {_s(timeout)} s: a checkout that waits longer is waiting "
                       "for a leak")
    reasons.append("pool_pre_ping=True: a connection the server, a failover or a firewall closed "
                   "is replaced at checkout instead of failing the request")
    return Recommendation(pool_size=size, max_overflow=overflow, pool_timeout=timeout,
                          pool_recycle=recycle, pool_pre_ping=True, per_process=size + overflow,
                          total=ar.total(c.instances, c.workers, size + overflow),
                          max_instances=max_inst, max_instances_current=max_inst_current,
                          basis=basis, reasons=reasons)
