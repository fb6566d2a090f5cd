"""`pooldoctor demo`: short scenarios of each failure on an embedded SQLite database.

A scenario is a module in ``pooldoctor.demo.scenarios`` with:

- ``TITLE``: one line; ``EXPECT``: the codes it must produce (the demo checks them);
- ``OPTIONS``: keyword arguments for ``pooldoctor.instrument()`` (small thresholds);
- ``main(workdir: str) -> None``: the program, run in its own process under the guard, with a
  SQLite database file in ``workdir``.
"""
