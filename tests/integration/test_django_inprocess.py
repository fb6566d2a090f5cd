"""Django in this process, on PostgreSQL (MariaDB needs PyMySQL installed as MySQLdb, which
would change this process for other tests: test_django.py runs it in a subprocess).

The hold of Django's connection names the user's ORM call and is marked as Django's; atomic()
is its transaction (PD107); a thread that ends with its connection is PD110; a hook that fails
never breaks the ORM call.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import pooldoctor
from pooldoctor.guard import GUARD
from tests.conftest import PG_URL, need_server
from tests.raw_helpers import codes, wait_for

pytest.importorskip("django")


@pytest.fixture(scope="module")
def django_pg() -> Iterator[Any]:
    """Django set up on PostgreSQL with a table of its own; yields the model."""
    need_server(PG_URL)
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "test",
                                   "USER": "postgres", "HOST": "127.0.0.1", "PORT": 5432,
                                   "CONN_MAX_AGE": None}},
            INSTALLED_APPS=[], USE_TZ=True)
        django.setup()
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("Django is set up for another database in this process")
    from django.db import connection, models

    table = f"pd_dji_{uuid.uuid4().hex[:12]}"
    Item = type("Item", (models.Model,), {  # a model class, made here
        "__module__": __name__, "name": models.CharField(max_length=20),
        "Meta": type("Meta", (), {"app_label": "pdtest", "db_table": table})})
    with connection.schema_editor() as editor:
        editor.create_model(Item)
    connection.close()
    try:
        yield Item
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(Item)
        connection.close()


def django_holds() -> list[Any]:
    return [h for h in GUARD.ledger.holds() if h.keeper == "django" and not h.ended]


def test_the_connection_is_djangos_and_sited_at_the_orm_call(django_pg: Any,
                                                              guard: object) -> None:
    from django.db import connection

    pooldoctor.instrument(log=False, exit_check=False, leak_threshold=0.05)
    try:
        line = sys._getframe().f_lineno + 1
        django_pg.objects.count()
        (h,) = django_holds()
        site = h.describe()["site"]
        assert (site["file"], site["line"]) == (__file__, line)
        deadline = time.monotonic() + 5
        while h.age() < 0.1 and time.monotonic() < deadline:  # past the leak threshold
            time.sleep(0.01)
        GUARD.tick()
        GUARD.tick()  # twice: a live thread's connection is not a leak
        assert codes() == [] and GUARD.check_exit() == []
    finally:
        connection.close()
    assert django_holds() == []


def test_atomic_is_the_holds_transaction(django_pg: Any, guard: object) -> None:
    from django.db import connection, transaction

    pooldoctor.instrument(log=False, exit_check=False, transaction_threshold=0.05)
    try:
        django_pg.objects.count()
        (h,) = django_holds()
        line = sys._getframe().f_lineno + 1
        with transaction.atomic():
            django_pg.objects.create(name="x")
            assert h.txn_since is not None
            f = wait_for("PD107")
        assert f.site is not None and f.site.line == line and f.site.file == __file__
        assert h.txn_since is None  # committed
    finally:
        connection.close()


def test_a_thread_that_ends_with_its_connection_is_pd110(django_pg: Any,
                                                          guard: object) -> None:
    pooldoctor.instrument(log=False, exit_check=False)
    kept: list[Any] = []
    line = 0

    def work() -> None:
        nonlocal line
        from django.db import connection

        line = sys._getframe().f_lineno + 1
        django_pg.objects.count()
        kept.append(connection.connection)  # the driver's connection outlives the thread

    t = threading.Thread(target=work, name="orm-worker")
    t.start()
    t.join()
    f = wait_for("PD110")
    assert f.site is not None and f.site.line == line
    assert "'orm-worker'" in f.message and "Django keeps one per thread" in f.message
    kept[0].close()


def test_a_failing_hook_never_breaks_the_orm_call(django_pg: Any, guard: object,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db import connection, transaction

    from pooldoctor.runtime.drivers import djangodb

    pooldoctor.instrument(log=False, exit_check=False)

    def boom(conn: Any) -> Any:
        raise RuntimeError("hook failure")

    monkeypatch.setattr(djangodb, "live_hold", boom)
    before = GUARD.internal_errors
    try:
        assert django_pg.objects.count() >= 0
        with transaction.atomic():
            django_pg.objects.create(name="y")
        assert GUARD.internal_errors > before
    finally:
        connection.close()


LIBVIEW = """
def serve(model, keep):
    from django.db import connection
    model.objects.count()  # line 4: the library's ORM call
    keep.append(connection.connection)  # outlives the thread
"""


def test_a_connection_opened_with_no_user_frame_is_still_tracked(
        django_pg: Any, guard: object, tmp_path: Any) -> None:
    """A generic view (library code only, run by a server thread) opens Django's connection:
    the hold is sited at the library's line, and its thread's end is PD110."""
    import importlib.util

    path = tmp_path / "site-packages" / "genericviews" / "__init__.py"
    path.parent.mkdir(parents=True)
    path.write_text(LIBVIEW)
    spec = importlib.util.spec_from_file_location("_t_genericviews", path)
    assert spec is not None and spec.loader is not None
    lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lib)
    pooldoctor.instrument(log=False, exit_check=False)
    kept: list[Any] = []
    t = threading.Thread(target=lib.serve, args=(django_pg, kept))  # no user frame in it
    t.start()
    t.join()
    f = wait_for("PD110")
    assert f.site is not None and (f.site.file, f.site.line) == (str(path), 4)
    kept[0].close()
