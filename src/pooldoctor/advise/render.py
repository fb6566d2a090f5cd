"""Text and JSON renderings of an :class:`~pooldoctor.advise.verdicts.Advice`."""

from __future__ import annotations

from ..reports import Report, render_text
from ..urls import mask_text
from .model import PoolConfig, ServerLimits
from .verdicts import Advice


def to_report(advice: Advice) -> Report:
    """A ``pooldoctor.report/1`` report: the findings, the pool advised on, ``advice``."""
    c = advice.config
    url = c.url or (advice.limits.url if advice.limits else None)
    pool = {"url": url, "pool_class": c.pool_class, "size": c.pool_size,
            "max_overflow": c.max_overflow, "timeout": c.pool_timeout,
            "recycle": c.pool_recycle, "pre_ping": c.pre_ping}
    if advice.measured is not None:
        pool.update({k: v for k, v in advice.measured.to_dict().items() if v is not None})
    return Report(list(advice.findings), [pool], {"advice": advice.to_dict()})


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _limit(n: int | None) -> str:
    return "no limit" if n is None else str(n)


def _server_lines(lim: ServerLimits) -> list[str]:
    head = f"server   {lim.backend}" + (f" {lim.version}" if lim.version else "")
    if lim.url:
        head += f" at {lim.url}"
    if lim.source != "server":
        head += " (limits given by hand)"
    lines = [head]
    if lim.max_connections is not None:
        used = "" if lim.used_by_others is None else f", used by others {lim.used_by_others}"
        reserved = f"reserved {lim.reserved}" + (
            f" ({lim.reserved_detail})" if lim.reserved_detail else "")
        lines.append(f"  max_connections {lim.max_connections}, {reserved}{used}")
    if lim.user is not None:
        text = f"  user {lim.user!r}: {lim.user_limit_name or 'limit'} {_limit(lim.user_limit)}"
        if lim.used_by_user is not None:
            text += f", its other sessions {lim.used_by_user}"
        if lim.database is not None:
            text += f"; database {lim.database!r}"
            if lim.db_limit_name:
                text += f": {lim.db_limit_name} {_limit(lim.db_limit)}"
        lines.append(text)
    if lim.backend in ("postgresql", "mysql") or lim.idle_timeout_s:
        idle = (f"{lim.idle_timeout_name} {lim.idle_timeout_s:g} s" if lim.idle_timeout_s
                else f"none ({lim.idle_timeout_name or 'idle timeout'} off)")
        line = f"  idle timeout: {idle}"
        if lim.idle_in_transaction_timeout_s:
            line += f"; idle in transaction: {lim.idle_in_transaction_timeout_s:g} s"
        lines.append(line)
    return lines


def _config_lines(c: PoolConfig) -> list[str]:
    def fig(name: str, label: str | None = None) -> str:
        value = getattr(c, name)
        if isinstance(value, bool):
            value = "on" if value else "off"
        elif isinstance(value, float):
            value = f"{value:g}"
        elif value is None:
            value = "unknown"
        return f"{label or name} {value} ({c.source_of(name)})"

    lines = ["app      " + ", ".join([fig("pool_class"), fig("pool_size"), fig("max_overflow")]),
             "  " + ", ".join([fig("pool_timeout"), fig("pool_recycle"),
                               fig("pre_ping", "pool_pre_ping")]),
             "  " + ", ".join([fig("workers"), fig("instances"), fig("threads")])]
    if c.site is not None:
        lines.append(f"  create_engine at {c.site.short()}")
    return lines


def render_advice(advice: Advice, color: bool | None = None) -> str:
    """The findings, then the inputs with their sources, then the recommendation."""
    out = [render_text(Report(list(advice.findings)), color=color, stacks=False).rstrip("\n"), ""]
    if advice.limits is not None:
        out += _server_lines(advice.limits)
        if advice.allowance is not None:
            out.append(f"  -> {advice.allowance.explanation}")
    out += _config_lines(advice.config)
    m = advice.measured
    if m is not None:
        text = f"measured {m.checkouts} checkouts"
        if m.observed_s:
            text += f" in {m.observed_s:g} s"
        if m.checkout_rate is not None:
            text += f" ({m.checkout_rate:.2f}/s per process)"
        if m.mean_hold_s is not None:
            text += f", mean hold {m.mean_hold_s * 1000:.1f} ms"
        text += (f", peak {m.peak_checked_out} checked out, {_n(m.waits, 'wait')} "
                 f"(max {m.max_wait_ms:.0f} ms), {_n(m.timeouts, 'timeout')}")
        if m.processes > 1:
            text += f", {m.processes} processes"
        out.append(text)
    r = advice.recommendation
    out.append("recommended")
    out.append(f"  {r.create_engine_call()}")
    n = advice.config.instances * advice.config.workers
    shape = f"{n} process{'' if n == 1 else 'es'}"
    line = (f"  {r.per_process} connection{'' if r.per_process == 1 else 's'} per process, "
            f"{r.total} for {shape}")
    if r.max_instances is not None:
        w = advice.config.workers
        line += (f"; the server can take {r.max_instances} instance(s) of "
                 f"{w} worker{'' if w == 1 else 's'}")
        if r.max_instances_current is not None:
            line += f" ({r.max_instances_current} with the current pool)"
    out.append(line)
    out.append(f"  basis: {r.basis}")
    out += [f"  - {reason}" for reason in r.reasons]
    if advice.notes:
        out.append("notes")
        out += [f"  - {n}" for n in advice.notes]
    return mask_text("\n".join(out) + "\n")
