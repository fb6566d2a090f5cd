"""The user's frame for an asyncio task that has none of its own.

``asyncio.wait_for(engine.connect(), ...)`` (before Python 3.12) and
``asyncio.gather(engine.connect(), ...)`` run SQLAlchemy's coroutine in a task of its own:
that task's frames are all library frames, and the user's line is in the task that awaits it.
This module finds that task (it awaits the task itself, or a future the task's done-callbacks
resolve: gather's, wait_for's) and returns its stack from its innermost user frame. Used only
on rare paths (a checkout that timed out, an asyncio site otherwise unknown): it looks at every
task of the loop.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

Frames = tuple[Any, ...]


def _linked(task: Any) -> list[Any]:
    """The futures ``task``'s done-callbacks resolve (and the task itself)."""
    out = [task]
    for cb, _ctx in list(getattr(task, "_callbacks", None) or ()):
        found: list[Any] = []
        if isinstance(cb, functools.partial):
            found.extend(cb.args)
            cb = cb.func
        owner = getattr(cb, "__self__", None)
        if owner is not None:
            found.append(owner)
        for cell in getattr(cb, "__closure__", None) or ():
            try:
                found.append(cell.cell_contents)
            except ValueError:  # an empty cell
                continue
        out.extend(x for x in found if hasattr(x, "add_done_callback"))
    return out


def _chain(coro: Any) -> list[FrameType]:
    """The frames of a suspended coroutine chain, outermost first."""
    frames: list[FrameType] = []
    obj = coro
    for _ in range(200):
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        nxt = getattr(obj, "cr_await", None)
        if nxt is None:
            nxt = getattr(obj, "gi_yieldfrom", None)
        if nxt is None:
            break
        obj = nxt
    return frames


def awaiting_stack(depth: int, internal: Callable[[FrameType], bool]) -> Frames:
    """The stack of the task awaiting the current task, from its innermost user frame
    (``()`` when there is no such task or it has no user frame either)."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return ()
    try:
        task = aio.current_task()
    except RuntimeError:
        return ()
    seen: set[int] = set()
    for _ in range(8):  # a task awaited by a task awaited by ...
        if task is None or id(task) in seen:
            return ()
        seen.add(id(task))
        linked = _linked(task)
        awaiter = None
        for other in aio.all_tasks(task.get_loop()):
            if other is task:
                continue
            awaited = getattr(other, "_fut_waiter", None)  # what the task waits for now
            if awaited is not None and any(awaited is x for x in linked):
                awaiter = other
                frames = _chain(other.get_coro())
                user = [f for f in frames if not internal(f)]
                if user:
                    inner = frames.index(user[-1])
                    out: list[Any] = []
                    for f in reversed(frames[: inner + 1]):
                        out += [f.f_code, f.f_lasti]
                        if len(out) >= 2 * depth:
                            break
                    return tuple(out)
                break
        task = awaiter  # that task has no user frame either: who awaits it?
    return ()
