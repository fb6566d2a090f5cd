"""Sites name the user's code: any installed library (in site-packages or dist-packages) is a
library whatever its name, a project outside site-packages (editable installs) is user code,
and a library's long call chain does not use up the captured depth."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pooldoctor import sites
from pooldoctor.runtime import hotpath
from pooldoctor.sites import capture, is_internal_file, pairs, site_of

C = hotpath._c

# a library whose call() goes through `depth` of its own frames before calling back
LIB = """
def call(fn, depth=12):
    if depth:
        return call(fn, depth - 1)
    return fn()
"""


def load(path: Path, name: str) -> ModuleType:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LIB)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def forget() -> Iterator[list[str]]:
    """File names judged by a test, forgotten afterwards (the cache is process-wide)."""
    names: list[str] = []
    yield names
    for n in names:
        sites._cache.pop(n, None)


@pytest.mark.parametrize("folder", ["site-packages", "dist-packages"])
@pytest.mark.parametrize("name", ["django", "sqlmodel", "flask_sqlalchemy", "someorm"])
def test_an_installed_library_is_never_a_site(tmp_path: Path, folder: str, name: str,
                                              forget: list[str]) -> None:
    lib = load(tmp_path / "lib" / "python3" / folder / name / "query.py", f"_t_{name}")
    forget.append(lib.__file__ or "")
    assert is_internal_file(lib.__file__ or "")

    def user() -> Any:
        return lib.call(lambda: capture(0, 8))  # the lambda is this file's: user code

    frames = user()
    names = [code.co_name for code, _ in pairs(frames)]
    # the first user frame is the lambda; then the library's chain (context), kept
    assert names[0] == "<lambda>" and names[1:4] == ["call", "call", "call"]


def test_the_first_user_frame_behind_a_deep_library_chain(tmp_path: Path,
                                                          forget: list[str]) -> None:
    """Library frames before the first user frame are skipped without counting: a 13-frame
    chain (more than the default depth of 8) still reaches the user's line."""
    lib = load(tmp_path / "site-packages" / "deeplib" / "__init__.py", "_t_deeplib")
    forget.append(lib.__file__ or "")
    is_internal_file(lib.__file__ or "")

    def open_connection() -> Any:  # stands for the driver's connect(): a library frame
        return lib.call(lambda: capture(0, 3), depth=0)

    lib2 = load(tmp_path / "site-packages" / "orm" / "__init__.py", "_t_orm")
    forget.append(lib2.__file__ or "")
    is_internal_file(lib2.__file__ or "")
    line = sys._getframe().f_lineno + 1
    frames = lib2.call(lambda: lib.call(lambda: capture(1, 2)))  # the user's ORM call
    site = site_of(frames)
    assert site is not None and site.file == __file__ and site.line == line
    assert open_connection()  # a user frame behind one library frame


def test_a_project_outside_site_packages_is_user_code(tmp_path: Path,
                                                      forget: list[str]) -> None:
    """An editable install runs from the project's own folder: its frames are sites, even
    under the name of a well-known package."""
    lib = load(tmp_path / "src" / "sqlalchemy_utils_fork" / "query.py", "_t_editable")
    forget.append(lib.__file__ or "")
    assert not is_internal_file(lib.__file__ or "")
    frames = lib.call(lambda: capture(0, 4), depth=0)
    assert pairs(frames)[1][0].co_filename == lib.__file__  # call() is a site-worthy frame


def test_the_programs_own_installed_package_is_user_code(tmp_path: Path, forget: list[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "site-packages" / "myshop" / "orders.py"
    path.parent.mkdir(parents=True)
    path.write_text("")
    other = tmp_path / "site-packages" / "django" / "db.py"
    other.parent.mkdir(parents=True)
    other.write_text("")
    forget.extend([str(path), str(other)])
    monkeypatch.setenv(sites.USER_PACKAGES_ENV, "myshop, other")
    assert not is_internal_file(str(path))
    assert is_internal_file(str(other))


def test_exec_generated_code_is_judged_by_its_package(tmp_path: Path,
                                                      forget: list[str]) -> None:
    lib = load(tmp_path / "site-packages" / "genlib" / "__init__.py", "genlib")
    forget.append(lib.__file__ or "")
    sys.modules["genlib"] = lib
    try:
        ns: dict[str, Any] = {"__name__": "genlib.generated", "sys": sys}
        exec("def here():\n    return sys._getframe()\n", ns)
        assert sites.is_internal_frame(ns["here"]())
        ns = {"__name__": "_t_user_module.gen", "sys": sys}  # a module with no file
        exec("def here():\n    return sys._getframe()\n", ns)
        assert not sites.is_internal_frame(ns["here"]())
    finally:
        del sys.modules["genlib"]


@pytest.mark.skipif(C is None, reason="pooldoctor._speedups is not built or is off")
def test_c_and_python_agree_behind_a_library(tmp_path: Path, forget: list[str]) -> None:
    lib = load(tmp_path / "site-packages" / "agree" / "__init__.py", "_t_agree")
    forget.append(lib.__file__ or "")
    is_internal_file(lib.__file__ or "")
    is_internal_file(__file__)

    def both() -> tuple[Any, Any]:
        f = sys._getframe(1)  # call()'s frame: a library's
        return C.user_stack(f, 8), hotpath.user_stack_py(f, 8)  # type: ignore[union-attr]

    def user() -> tuple[Any, Any]:
        return lib.call(lambda: lib.call(both, depth=2), depth=10)

    c, py = user()
    assert c == py
    assert pairs(c)[0][0].co_name == "<lambda>"


ALIB = """
import sys

async def fetch(capture):
    return capture(0, 4)
"""


def test_an_asyncio_task_of_library_frames_is_sited_in_the_task_awaiting_it(
        tmp_path: Path, forget: list[str]) -> None:
    """gather()/wait_for() run a library's coroutine in a task of its own: the site is the
    user's await in the task that waits for it; with no such task, where the loop started."""
    import asyncio

    path = tmp_path / "site-packages" / "aiolib" / "__init__.py"
    path.parent.mkdir(parents=True)
    path.write_text(ALIB)
    forget.append(str(path))
    ns: dict[str, Any] = {}
    exec(compile(ALIB, str(path), "exec"), ns)
    fetch = ns["fetch"]
    lines: dict[str, int] = {}

    async def user() -> tuple[Any, Any]:
        lines["gather"] = sys._getframe().f_lineno + 1
        (a,) = await asyncio.gather(fetch(capture))
        lines["wait_for"] = sys._getframe().f_lineno + 1
        b = await asyncio.wait_for(asyncio.ensure_future(fetch(capture)), 5)
        return a, b

    a, b = asyncio.run(user())
    for frames, key in ((a, "gather"), (b, "wait_for")):
        site = site_of(frames)
        assert site is not None and site.function == "user" and site.line == lines[key]
    line = sys._getframe().f_lineno + 1
    alone = asyncio.run(fetch(capture))  # nobody awaits the task: the loop's starting line
    site = site_of(alone)
    assert site is not None and site.line == line and site.file == __file__
