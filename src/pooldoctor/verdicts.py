"""What the guard says about one hold: held too long (PD101, with where its thread is now),
held by a thread that has ended (PD110), a long transaction (PD107)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .findings import Finding, Site
from .ledger import CHECKOUT, Hold
from .sites import format_stack, site_of, thread_stack

if TYPE_CHECKING:
    from .guard import Guard


def fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"


def what_held(h: Hold) -> str:
    return "connection checked out" if h.kind == CHECKOUT else "connection open"


def short(h: Hold) -> str:
    return short_frames(h.frames)


def short_frames(frames: Any) -> str:
    site: Site | None = site_of(frames)
    return site.short() if site else "an unknown site"


def held_too_long(g: Guard, h: Hold, age: float) -> Finding:
    """PD101 for ``h``, with where its thread is now (when that thread is alive)."""
    o = g.options
    details: dict[str, Any] = {"threshold_s": o.leak_threshold}
    where_now = now_at(g, h, details)
    return g.finding_for(
        "PD101", h,
        f"{what_held(h)} for {fmt_s(age)} at {short(h)} "
        f"(threshold {o.leak_threshold:g} s){where_now}", **details)


def now_at(g: Guard, h: Hold, details: dict[str, Any]) -> str:
    """"; the thread is now at F:L in fn" for a sync holder whose thread is alive (and
    its stack in ``details["thread_now"]``), else ""."""
    if h.task is not None or h.pid != g.pid or h.owner_ended():
        return ""  # a task's thread runs the loop; an ended thread is nowhere
    t = h.owner
    if t is not None and t.ident != h.thread_id:
        return ""
    stack = thread_stack(h.thread_id, g.options.stack_depth)
    if not stack:
        return ""
    details["thread_now"] = [s.to_dict() for s in format_stack(stack)]
    return f"; the thread is now at {short_frames(stack)}"


def ended_thread(g: Guard, h: Hold, when: str = "") -> Finding:
    """PD110: ``h``'s owning thread has ended; nobody can give the connection back."""
    noun = "checked out" if h.kind == CHECKOUT else "opened"
    keeper = f" ({h.keeper[:1].upper()}{h.keeper[1:]} keeps one per thread)" if h.keeper else ""
    return g.finding_for(
        "PD110", h,
        f"connection {noun} at {short(h)} by thread {h.thread_name!r}, which has ended "
        f"without {'returning' if h.kind == CHECKOUT else 'closing'} it{keeper}; "
        f"held {fmt_s(h.age())}{when}",
        thread_ended=True)


def long_transaction(g: Guard, h: Hold, age: float) -> Finding:
    """PD107 for ``h``: where the transaction began, and where its thread is now."""
    o = g.options
    if h.txn_frames:
        frames, where = h.txn_frames, f"begun at {short_frames(h.txn_frames)}"
    else:
        frames, where = h.frames, f"on the connection checked out at {short(h)}"
    details: dict[str, Any] = {"threshold_s": o.transaction_threshold}
    where_now = now_at(g, h, details).replace("; the thread", "; its thread")
    return g.finding_for(
        "PD107", h,
        f"transaction open for {fmt_s(age)} {where} (threshold "
        f"{o.transaction_threshold:g} s){where_now}",
        frames=frames, **details)
