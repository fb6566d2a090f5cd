"""Cheap stack capture and the user-frame filter.

A stack is captured as a flat tuple ``(code, lasti, code, lasti, ...)`` (each frame's code
object and the offset of the instruction running in it), from the first *user* frame outwards,
by a walk written out for the configured depth (a loop costs twice as much). ``f_lasti`` costs a
fraction of ``f_lineno`` (which decodes the line table); lines are resolved, and anything is
formatted, only when a finding is reported.

A frame is not user code when it belongs to pooldoctor, the standard library, or any library
installed in a site-packages or dist-packages folder (Django, SQLModel, Flask-SQLAlchemy,
drivers: whatever its name), unless it is the program's own project installed there (named in
``POOLDOCTOR_USER_PACKAGES``). A project installed in editable mode runs from its own folder:
it is user code. Library frames above the first user frame are skipped without counting
against the depth; those between user frames stay as context.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

from .findings import Site

Frames = tuple[Any, ...]  # flat: code, lasti, code, lasti, ... (first user frame first)

DEFAULT_DEPTH = 8

_INTERNAL_PACKAGES = (
    "pooldoctor",
    "sqlalchemy",
    "greenlet",
    "pymysql",
    "MySQLdb",
    "mysql",
    "psycopg",
    "psycopg2",
    "psycopg_pool",
    "asyncpg",
    "aiomysql",
    "aiosqlite",
    "dbutils",
    "_pytest",
    "pluggy",
    "pytest_asyncio",
    "anyio",
)


def _internal_prefixes() -> tuple[str, ...]:
    prefixes: list[str] = []
    here = os.path.dirname(os.path.abspath(__file__))
    prefixes.append(here + os.sep)
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            prefixes.append(os.path.realpath(path) + os.sep)
            prefixes.append(os.path.abspath(path) + os.sep)
    return tuple(dict.fromkeys(prefixes))


USER_PACKAGES_ENV = "POOLDOCTOR_USER_PACKAGES"  # comma-separated top-level package names


def _own_packages() -> frozenset[str]:
    """Installed packages that are the program's own code (named in :data:`USER_PACKAGES_ENV`:
    a project installed into site-packages rather than in editable mode)."""
    raw = os.environ.get(USER_PACKAGES_ENV, "")
    return frozenset(n.strip() for n in raw.split(",") if n.strip()) - {"pooldoctor"}


_PREFIXES = _internal_prefixes()
_HERE = os.path.dirname(os.path.abspath(__file__))
_USER_INSIDE = (os.path.join(_HERE, "demo", "scenarios") + os.sep,)
_SITE_DIRS = ("site-packages", "dist-packages")
_cache: dict[str, bool] = {}


def is_internal_file(filename: str) -> bool:
    """True when ``filename`` is not user code (cached per file name)."""
    try:
        return _cache[filename]
    except KeyError:
        pass
    result = _classify(filename)
    if filename != "<string>":  # judged per frame by capture(), never cached
        _cache[filename] = result
    return result


def _classify(filename: str) -> bool:
    if filename.startswith("<"):
        # exec'd user code (<string>, <stdin>) is the user's; generated wrappers
        # (<frozen ...>, <sqlalchemy generated ...>, <decorator-gen-1>) are not.
        return filename not in ("<string>", "<stdin>", "<console>")  # see is_internal_frame
    try:
        path = filename if os.path.isabs(filename) else os.path.abspath(filename)
    except OSError:  # the working folder is gone: judge the name as it is
        path = filename
    parts = path.split(os.sep)
    for marker in _SITE_DIRS:
        if marker in parts:
            i = len(parts) - 1 - parts[::-1].index(marker)
            top = parts[i + 1] if i + 1 < len(parts) else ""
            top = top[:-3] if top.endswith(".py") else top
            if top == "pooldoctor" and path.startswith(_USER_INSIDE):
                return False
            # an installed library is never a site, whatever its name; the program's own
            # project installed there (not in editable mode) is the exception
            return top not in _own_packages()
    if path.startswith(_USER_INSIDE):
        return False  # the demo's scenarios play the user's part
    return path.startswith(_PREFIXES)


def is_library_file(filename: str) -> bool:
    """True for a third-party library installed in site-packages or dist-packages that is not
    infrastructure (not pooldoctor, SQLAlchemy, a driver, greenlet, pytest): Django, SQLModel,
    a web framework. Such a frame is context, and the fallback site when no user frame is on
    the stack at all."""
    parts = os.path.abspath(filename).split(os.sep)
    for marker in _SITE_DIRS:
        if marker in parts:
            i = len(parts) - 1 - parts[::-1].index(marker)
            top = parts[i + 1] if i + 1 < len(parts) else ""
            top = top[:-3] if top.endswith(".py") else top
            return top not in _INTERNAL_PACKAGES
    return False


def judged_files() -> dict[str, bool]:
    """The cache of :func:`is_internal_file`: file name -> internal, for the files judged so
    far (a file not in it yet is judged by :func:`is_internal_frame`)."""
    return _cache


def is_internal_frame(f: FrameType) -> bool:
    """Like :func:`is_internal_file`; code generated with exec() (``<string>``) is judged by
    the module it was generated for (SQLAlchemy 2.0 builds decorators that way)."""
    filename = f.f_code.co_filename
    if filename == "<string>":
        module = f.f_globals.get("__name__") or ""
        top = module.partition(".")[0]
        if top in _INTERNAL_PACKAGES:
            return True
        origin = getattr(sys.modules.get(top), "__file__", None)  # judged by its package
        return isinstance(origin, str) and is_internal_file(origin)
    return is_internal_file(filename)


def capture(skip: int = 1, depth: int = DEFAULT_DEPTH) -> Frames:
    """Capture up to ``depth`` frames starting at the first user frame.

    Internal frames between user frames are kept (they are context); the walk continues on
    the parent greenlet when SQLAlchemy's asyncio layer runs us in a child greenlet. An asyncio
    task whose own frames are all library frames (``gather(engine.connect())``) is sited in
    the task that awaits it, else where the event loop was started.
    """
    try:
        f: FrameType | None = sys._getframe(skip + 1)
    except ValueError:
        return ()
    get = _cache.get
    boundary = _loop_boundary()
    crossed = False
    # skip internal frames to the first user frame
    while f is not None:
        internal = get(f.f_code.co_filename)
        if internal is None:
            internal = is_internal_frame(f)
        if not internal:
            break
        if f.f_code is boundary:
            crossed = True  # the running task's frames end here
        f = f.f_back
    if f is None or crossed:
        start = f if f is not None else _parent_greenlet_frame()
        f, crossed_here = _first_user_frame(start, boundary)
        if crossed or crossed_here:
            from .awaiters import awaiting_stack

            frames = awaiting_stack(depth, is_internal_frame)
            if frames:
                return frames
        if f is None:
            return ()
    return walker(depth)(f)


def _first_user_frame(f: FrameType | None,
                      boundary: CodeType | None) -> tuple[FrameType | None, bool]:
    """The first user frame at or above ``f``, and whether the walk left the running asyncio
    task's own frames to find it (it passed the event loop's frame)."""
    crossed = False
    while f is not None and is_internal_frame(f):
        crossed = crossed or f.f_code is boundary
        f = f.f_back
    return f, crossed


_boundary: list[CodeType] = []


def _loop_boundary() -> CodeType | None:
    """The code of asyncio's ``Handle._run`` (the frame below a task's outermost coroutine),
    once asyncio is imported."""
    if _boundary:
        return _boundary[0]
    ev = sys.modules.get("asyncio.events")
    run = getattr(getattr(ev, "Handle", None), "_run", None)
    code = getattr(run, "__code__", None)
    if isinstance(code, CodeType):
        _boundary.append(code)
        return code
    return None


_walkers: dict[int, Callable[[FrameType], Frames]] = {}


def walker(depth: int) -> Callable[[FrameType], Frames]:
    """A function taking a frame and returning its stack, up to ``depth`` frames (Frames).

    Written out without a loop (generated once per depth): this runs at every checkout.
    """
    fn = _walkers.get(depth)
    if fn is None:
        lines = ["def walk(f):"]
        names: list[str] = []
        for i in range(depth):
            names += [f"c{i}", f"l{i}"]
            lines.append(f"    c{i} = f.f_code; l{i} = f.f_lasti")
            if i < depth - 1:  # f_back creates the parent's frame object: not one too many
                lines.append("    f = f.f_back")
                lines.append(f"    if f is None: return ({', '.join(names)},)")
        lines.append(f"    return ({', '.join(names)},)")
        ns: dict[str, Any] = {}
        exec(compile("\n".join(lines), f"<pooldoctor stack walk {depth}>", "exec"), ns)
        fn = _walkers[depth] = ns["walk"]
    return fn


def walkers() -> dict[int, Callable[[FrameType], Frames]]:
    """The walks :func:`walker` generated so far, by depth (the hot path reads it)."""
    return _walkers


def pairs(frames: Frames) -> list[tuple[CodeType, int]]:
    """The ``(code, lasti)`` pairs of a captured stack."""
    return list(zip(frames[::2], frames[1::2]))


def thread_stack(thread_id: int, depth: int = DEFAULT_DEPTH) -> Frames:
    """Where another thread is right now: its stack from its first user frame (or ())."""
    f: FrameType | None = sys._current_frames().get(thread_id)
    while f is not None and is_internal_frame(f):
        f = f.f_back
    return walker(depth)(f) if f is not None else ()


def _parent_greenlet_frame() -> FrameType | None:
    gl = sys.modules.get("greenlet")
    if gl is None:
        return None
    try:
        cur = gl.getcurrent()
        parent = cur.parent
        while parent is not None:
            frame: FrameType | None = parent.gr_frame
            if frame is not None:
                return frame
            parent = parent.parent
    except Exception:
        return None
    return None


_lines: dict[CodeType, list[tuple[int, int, int]]] = {}


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of the instruction at byte offset ``lasti`` in ``code``."""
    table = _lines.get(code)
    if table is None:
        table = [(start, end, line) for start, end, line in code.co_lines() if line is not None]
        _lines[code] = table
    for start, end, line in table:
        if start <= lasti < end:
            return line
    return code.co_firstlineno


def site_of(frames: Frames) -> Site | None:
    """The site (first user frame) of a captured stack."""
    if not frames:
        return None
    code, lasti = frames[0], frames[1]
    return Site(code.co_filename, line_of(code, lasti), code.co_name)


def format_stack(frames: Frames) -> list[Site]:
    return [Site(code.co_filename, line_of(code, lasti), code.co_name)
            for code, lasti in pairs(frames)]


_returns: dict[tuple[CodeType, int], bool] = {}


def returns_call(code: CodeType, lasti: int) -> bool:
    """True when the call running at ``lasti`` in ``code`` hands its result back to the
    caller (``return f(...)``, or ``x = f(...)`` then ``return x``): the frame is a factory,
    and the line a person fixes is its caller's. Read from the bytecode when a finding is
    made; never raises."""
    key = (code, lasti)
    found = _returns.get(key)
    if found is None:
        try:
            found = _returns_call(code, lasti)
        except Exception:
            found = False
        _returns[key] = found
    return found


def _returns_call(code: CodeType, lasti: int) -> bool:
    import dis
    import itertools

    ins = list(dis.get_instructions(code))
    # the instruction running at lasti (lasti may point into its inline cache entries)
    at = max((i for i, x in enumerate(ins) if x.offset <= lasti), default=None)
    if at is None or at + 1 >= len(ins):
        return False
    nxt = ins[at + 1]
    if nxt.opname == "RETURN_VALUE":
        return True
    if nxt.opname == "STORE_FAST":
        name = nxt.argval
        return any(a.opname.startswith("LOAD_FAST") and a.argval == name
                   and b.opname == "RETURN_VALUE" for a, b in itertools.pairwise(ins))
    return False


def caller_of(frames: Frames) -> Site | None:
    """The first user frame after the site (who called the site's function), or None."""
    for code, lasti in pairs(frames)[1:]:
        filename = code.co_filename
        if not is_internal_file(filename) and not filename.startswith("<"):
            return Site(filename, line_of(code, lasti), code.co_name)
    return None
