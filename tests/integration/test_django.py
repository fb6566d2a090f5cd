"""Django under the guard, on real PostgreSQL and MariaDB: the connection Django keeps per
thread is not a leak while its thread lives (whatever CONN_MAX_AGE); a thread that ends
without closing it is PD110 at the user's ORM call; a long atomic() block is PD107.

Each scenario is a small program (a settings module made here, a model with a table of its
own) run by `pooldoctor run --leak-threshold 1` in a subprocess; MariaDB is reached through
PyMySQL standing in for MySQLdb (``install_as_MySQLdb``), as many Django projects do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("django")

PROGRAM = '''
import sys, threading, time
from concurrent.futures import ThreadPoolExecutor

backend, max_age, mode, table = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
import django
from django.conf import settings

if backend == "mysql":
    import pymysql
    pymysql.version_info = (2, 2, 1, "final", 0)  # Django asks mysqlclient's version
    pymysql.install_as_MySQLdb()
    db = {"ENGINE": "django.db.backends.mysql", "NAME": "test", "USER": "root",
          "HOST": "127.0.0.1", "PORT": 3306}
else:
    db = {"ENGINE": "django.db.backends.postgresql", "NAME": "test", "USER": "postgres",
          "HOST": "127.0.0.1", "PORT": 5432}
    if mode == "pool":
        db["OPTIONS"] = {"pool": {"min_size": 1, "max_size": 4, "timeout": 10}}
db["CONN_MAX_AGE"] = None if max_age == "None" else int(max_age)
if mode == "pool":
    db["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with its pool
settings.configure(DATABASES={"default": db}, INSTALLED_APPS=[], USE_TZ=True)
django.setup()
from django.db import connection, models, transaction


class Item(models.Model):
    name = models.CharField(max_length=20)

    class Meta:
        app_label = "pdtest"
        db_table = table


with connection.schema_editor() as editor:
    editor.create_model(Item)
try:
    def work(i):
        try:
            return Item.objects.filter(pk=i).count()  # ORM
        finally:
            if mode != "leak":
                connection.close()

    Item.objects.create(name="main")  # the main thread's connection: kept, not a leak
    t = threading.Thread(target=work, args=(1,), name="lone")
    t.start()
    t.join()
    with ThreadPoolExecutor(3, thread_name_prefix="orm") as ex:
        list(ex.map(work, range(6)))
    if mode == "many":  # more and more live threads, each with its own connection
        stop = threading.Event()

        def keep(i):
            Item.objects.filter(pk=i).count()  # MANY
            stop.wait(10)
            connection.close()

        many = [threading.Thread(target=keep, args=(i,)) for i in range(11)]
        for th in many:
            th.start()
        time.sleep(1.3)
        stop.set()
        for th in many:
            th.join()
    elif mode == "leak":
        with transaction.atomic():  # ATOMIC
            Item.objects.create(name="slow")
            time.sleep(1.3)  # past both thresholds, inside the transaction
    elif mode == "exit":  # an executor's workers keep theirs until the interpreter ends them
        bg = ThreadPoolExecutor(2, thread_name_prefix="bg")
        list(bg.map(lambda i: Item.objects.filter(pk=i).count(), range(4)))
    elif mode == "testcase":  # TestCase's class-wide atomic() is not the user's transaction
        import unittest
        from django.test import TestCase

        class Slow(TestCase):
            def test_slow(self):
                Item.objects.create(name="t")
                time.sleep(1.3)

        result = unittest.TextTestRunner().run(
            unittest.defaultTestLoader.loadTestsFromTestCase(Slow))
        assert result.wasSuccessful()
    else:
        time.sleep(1.3)  # the main thread's connection stays open past the threshold
finally:
    with connection.schema_editor() as editor:
        editor.delete_model(Item)
'''


def run(tmp_path: Path, backend: str, max_age: str, mode: str) -> dict[str, Any]:
    prog = tmp_path / "djprog.py"
    prog.write_text(textwrap.dedent(PROGRAM))
    report = tmp_path / "report.json"
    table = f"pd_dj_{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    out = subprocess.run(
        [sys.executable, "-m", "pooldoctor.cli", "run", "-q", "--leak-threshold", "1",
         "--transaction-threshold", "1", "--report", str(report), "--",
         sys.executable, str(prog), backend, max_age, mode, table],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(report.read_text())
    data["_prog"] = prog
    return data


def line_of(path: Path, marker: str) -> int:
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if text.rstrip().endswith(f"# {marker}"):
            return n
    raise AssertionError(marker)


@pytest.fixture(params=["postgresql", "mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    from tests.conftest import MYSQL_URL, PG_URL, need_server

    need_server(PG_URL if request.param == "postgresql" else MYSQL_URL)
    return str(request.param)


@pytest.mark.parametrize("max_age", ["0", "None"])
def test_threads_that_end_without_close_are_pd110_at_the_orm_call(
        tmp_path: Path, backend: str, max_age: str) -> None:
    data = run(tmp_path, backend, max_age, "leak")
    prog = data["_prog"]
    by_code = {f["code"]: f for f in data["findings"]}
    assert set(by_code) == {"PD110", "PD107"}, data["findings"]  # no PD101, PD102, PD105
    f = by_code["PD110"]
    assert f["site"]["file"] == str(prog) and f["site"]["line"] == line_of(prog, "ORM")
    assert f["count"] == 4  # the lone thread and the executor's three workers
    assert "Django keeps one per thread" in f["message"]
    assert f["details"]["thread"] in {"lone", "orm_0", "orm_1", "orm_2"}
    assert not any("django" in s["file"].split(os.sep) for s in f["stack"][:1])
    t = by_code["PD107"]
    assert t["site"]["line"] == line_of(prog, "ATOMIC") and t["count"] == 1


@pytest.mark.parametrize("mode", ["clean", "testcase", "exit"])
def test_threads_that_close_and_a_kept_main_connection_report_nothing(
        tmp_path: Path, backend: str, mode: str) -> None:
    data = run(tmp_path, backend, "None", mode)
    assert data["findings"] == []


def test_a_growing_number_of_threads_holding_one_is_pd108(tmp_path: Path) -> None:
    from tests.conftest import PG_URL, need_server

    need_server(PG_URL)
    data = run(tmp_path, "postgresql", "None", "many")
    (f,) = data["findings"]  # live threads: no PD101, PD105 or PD110
    assert f["code"] == "PD108" and f["site"]["line"] == line_of(data["_prog"], "MANY")


def test_djangos_own_pool_counts_nothing_twice(tmp_path: Path) -> None:
    """Django 5.1's pool lends psycopg_pool connections: no raw hold of ours for them."""
    pytest.importorskip("psycopg_pool")
    from tests.conftest import PG_URL, need_server

    need_server(PG_URL)
    data = run(tmp_path, "postgresql", "0", "pool")
    assert data["findings"] == []


def test_the_guard_does_not_import_django(tmp_path: Path) -> None:
    code = ("import sys, pooldoctor; pooldoctor.instrument(log=False); "
            "import sqlite3; sqlite3.connect(':memory:').close(); "
            "print('django' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "False"
