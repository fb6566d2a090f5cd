"""A real PgBouncer for the tests: started on a free local port with a config written to a
temporary folder, in front of the test PostgreSQL; stopped at the end.

Debian's ``pgbouncer`` package provides the binary (``.ci/run`` installs it). PgBouncer refuses
to run as root: as root it is started with ``-u postgres`` and its folder belongs to that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from ..conftest import REQUIRE
from ..net_faults import wait_listening


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def _missing(reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"POOLDOCTOR_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def pgbouncer(pg_url: str, pool_mode: str) -> Iterator[str]:
    """Run PgBouncer in ``pool_mode`` before ``pg_url``'s server; yields its url (same user
    and database). Its admin console is the database ``pgbouncer`` of the same url."""
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer"
                                           if os.path.exists("/usr/sbin/pgbouncer") else None)
    if binary is None:
        _missing("pgbouncer is not installed (Debian package pgbouncer)")
    u = sa.make_url(pg_url)
    user = u.username or "postgres"
    folder = tempfile.mkdtemp(prefix="pd-pgbouncer-")
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running as root and there is no postgres user to run pgbouncer as")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        run_as = ["-u", "postgres"]
    port = free_port()
    ini = os.path.join(folder, "pgbouncer.ini")
    with open(ini, "w", encoding="utf-8") as fh:
        fh.write(f"""[databases]
{u.database} = host={u.host or '127.0.0.1'} port={u.port or 5432} dbname={u.database}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
admin_users = {user}
pool_mode = {pool_mode}
default_pool_size = 10
max_client_conn = 60
ignore_startup_parameters = extra_float_digits
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
""")
    with open(os.path.join(folder, "users.txt"), "w", encoding="utf-8") as fh:
        fh.write(f'"{user}" ""\n')
    os.chmod(ini, 0o644)
    os.chmod(os.path.join(folder, "users.txt"), 0o644)
    proc = subprocess.Popen([binary, *run_as, ini], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = u.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    try:
        if not wait_listening(port, proc):
            out = proc.stdout.read() if proc.stdout and proc.poll() is not None else ""
            log = _read(os.path.join(folder, "pgbouncer.log"))
            pytest.fail(f"pgbouncer did not start: {out[-1000:]} {log[-1000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""
