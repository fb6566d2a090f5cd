"""Factories reached through values (values.py): instances' methods, names bound to a factory,
parameters that receive one; and the look-alikes that must stay silent."""

from __future__ import annotations

from pooldoctor.lint import lint_source

HEAD = "import sqlite3\n\n"


def lines(body: str) -> list[tuple[int, str]]:
    return [(i.line, i.code) for i in lint_source(HEAD + body)]


def test_a_method_of_a_class_of_the_same_module() -> None:
    body = ("class Db:\n    def open(self):\n        return sqlite3.connect('a.db')\n\n"
            "def f():\n    db = Db()\n    conn = db.open()\n    return 1\n\n"
            "def g():\n    conn = Db().open()\n    try:\n        return conn.execute('x')\n"
            "    finally:\n        conn.close()\n")
    assert lines(body) == [(9, "PD201")]


def test_a_classmethod_called_on_the_class() -> None:
    body = ("class Db:\n    @classmethod\n    def open(cls, p):\n"
            "        return sqlite3.connect(p)\n\n"
            "def f(p):\n    conn = Db.open(p)\n    conn.execute('x')\n")
    assert lines(body) == [(9, "PD201")]


def test_a_name_bound_to_a_factory_or_a_driver() -> None:
    body = ("def get(p):\n    return sqlite3.connect(p)\n\n"
            "def f(p):\n    factory = get\n    conn = factory(p)\n    return 1\n\n"
            "def g(p):\n    opener = sqlite3.connect\n    conn = opener(p)\n    return 2\n")
    assert lines(body) == [(8, "PD201"), (13, "PD201")]


def test_a_parameter_given_a_factory_by_a_call_or_a_default() -> None:
    body = ("def get(p):\n    return sqlite3.connect(p)\n\n"
            "def run(make, p):\n    conn = make(p)\n    return conn.execute('x')\n\n"
            "def main():\n    return run(get, 'a.db')\n\n"
            "def other(p, make=get):\n    conn = make(p)\n    return 1\n")
    assert lines(body) == [(7, "PD201"), (14, "PD201")]


def test_look_alikes_stay_silent() -> None:
    body = ("class Db:\n    def __init__(self):\n        self._c = None\n"
            "    def shared(self):\n        if self._c is None:\n"
            "            self._c = sqlite3.connect('a.db')\n        return self._c\n"
            "    def close(self):\n        self._c.close()\n\n"
            "def f():\n    conn = Db().shared()\n    return conn.execute('x')\n\n"
            "def apply(fn, v):\n    out = fn(v)\n    return out\n\n"
            "def g(vs):\n    return [apply(abs, v) for v in vs]\n\n"
            "def h(make=dict):\n    d = make()\n    return d\n")
    assert lines(body) == []
