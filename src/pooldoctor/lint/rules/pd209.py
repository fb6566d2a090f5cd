"""PD209: a password written in a database URL or a ``connect(password=...)`` call."""

from __future__ import annotations

import ast

from ...lazyre import lazy
from ..context import ModuleContext, is_test_module
from ..resources import DRIVERS, ENGINE_FACTORIES
from ._util import string_value

CODE = "PD209"
_SCHEMES = ("postgres", "postgresql", "mysql", "mariadb", "mssql", "oracle", "cockroachdb",
            "redshift", "snowflake", "db2", "sybase", "firebird", "clickhouse", "timescale",
            "mongodb", "redis", "sqlserver", "pgsql", "psql")
_URL = lazy(r"(?P<scheme>[A-Za-z][A-Za-z0-9]*)(?:\+[A-Za-z0-9_]+)?://"
            r"(?P<user>[^:/@\s\0]*):(?P<pw>[^@\s/]*)@")
_URL_END = lazy(r"[\s'\"]")
_PASSWORD_KEYS = frozenset({"password", "passwd", "pwd", "pass"})
_CONNECT_CALLS = frozenset(DRIVERS) | ENGINE_FACTORIES | {
    "sqlalchemy.URL.create", "sqlalchemy.engine.URL.create", "sqlalchemy.engine.url.URL.create",
    "asyncpg.create_pool", "aiomysql.create_pool", "psycopg2.pool.SimpleConnectionPool",
    "psycopg2.pool.ThreadedConnectionPool", "mysql.connector.pooling.MySQLConnectionPool",
}


# words that stand for a password in documentation, examples and test expectations
_PLACEHOLDER_WORDS = frozenset({
    "password", "passwd", "pwd", "placeholder", "redacted", "masked", "hidden",
    "your_password", "yourpassword", "your-password", "mypassword", "my_password",
    "dbpassword", "db_password", "db-password",
})
_MASK_CHARS = frozenset("*x.?#•")


def placeholder(pw: str) -> bool:
    """Not a real password: empty, a template field, an environment reference, a mask
    (``***``, ``???``, ``xxxx``), or a word that names the password instead of being one."""
    if not pw or "\0" in pw:
        return True
    if pw.startswith(("$", "%", "{", "<", "[")) or set(pw.lower()) <= _MASK_CHARS:
        return True
    return pw.lower() in _PLACEHOLDER_WORDS


def check(ctx: ModuleContext) -> None:
    # in test code a URL is test data (parsing, masking, expectations) unless it is given to a
    # connect()/create_engine() call
    connected = _connect_arguments(ctx) if is_test_module(ctx.path) else None
    for node in ctx.strings:
        if connected is not None and id(node) not in connected:
            continue
        text = string_value(node)
        if text is None:
            continue
        for m in _URL.finditer(text):
            if m.group("scheme").lower() in _SCHEMES and not placeholder(m.group("pw")):
                from ...urls import mask_text  # only with a finding: no URL library to start

                url = _URL_END.split(text[m.start():], maxsplit=1)[0]
                shown = mask_text(url.replace("\0", "{...}"))
                ctx.report(CODE, node, f"password written in the database url {shown!r}; read "
                           "it from the environment or a secret store")
                break
    for cs in ctx.calls:
        call = cs.node
        q = ctx.qualname(call.func)
        if q is None or q not in _CONNECT_CALLS:
            continue
        for k in call.keywords:
            if k.arg in _PASSWORD_KEYS and _literal_password(k.value):
                ctx.report(CODE, k.value, f"password written in {q.rsplit('.', 1)[-1]}"
                           f"({k.arg}=...); read it from the environment or a secret store",
                           cs.func.name if cs.func else None)
            elif k.arg == "connect_args" and isinstance(k.value, ast.Dict):
                _check_dict(ctx, k.value)


def _connect_arguments(ctx: ModuleContext) -> set[int]:
    """id() of the strings given directly to a connect()/create_engine() call."""
    out: set[int] = set()
    for cs in ctx.calls:
        if ctx.qualname(cs.node.func) in _CONNECT_CALLS:
            out.update(id(a) for a in cs.node.args)
            out.update(id(k.value) for k in cs.node.keywords)
    return out


def _check_dict(ctx: ModuleContext, d: ast.Dict) -> None:
    for key, value in zip(d.keys, d.values):
        if isinstance(key, ast.Constant) and key.value in _PASSWORD_KEYS \
                and _literal_password(value):
            ctx.report(CODE, value, f"password written in connect_args[{key.value!r}]; read it "
                       "from the environment or a secret store")


def _literal_password(node: ast.expr) -> bool:
    text = string_value(node)
    return text is not None and not placeholder(text)
