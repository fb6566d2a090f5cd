"""What one module offers the rest of the run, and what a module receives from the others.

A ``Summary`` is small and picklable: it travels from the process that checked a file back to
the one that joins the project (``project.py``); ``Externals`` goes the other way, to the second
look at the files that use a factory, closer or generator of another module.
"""

from __future__ import annotations

from ..record import Record
from .issues import Kind


class Summary(Record):
    """The top-level functions of one module, as seen from other modules."""

    __slots__ = _fields = ("module", "factories", "pending", "closers", "generators", "engines",
                           "functions", "aliases", "stars")

    def __init__(self, module: str, factories: dict[str, Kind] | None = None,
                 pending: dict[str, list[tuple[tuple[str, ...], int]]] | None = None,
                 closers: dict[str, frozenset[int]] | None = None,
                 generators: set[str] | None = None, engines: set[str] | None = None,
                 functions: set[str] | None = None, aliases: dict[str, str] | None = None,
                 stars: list[str] | None = None) -> None:
        self.module = module  # dotted name, from the __init__.py files above it
        self.factories = {} if factories is None else factories  # name -> what it returns
        # name -> for each return: (candidate absolute origins of the called function, slot)
        self.pending = {} if pending is None else pending
        self.closers = {} if closers is None else closers  # name -> closed params
        # generators with clean-up after yield
        self.generators = set() if generators is None else generators
        self.engines = set() if engines is None else engines  # return a new engine on every call
        self.functions = set() if functions is None else functions  # every top-level def
        self.aliases = {} if aliases is None else aliases  # imported name -> absolute origin
        self.stars = [] if stars is None else stars  # modules imported with `*`


class Externals(Record):
    """Names of other modules of the run that one module uses, keyed by their local spelling
    (``get_dbconn``, ``database.get_dbconn``)."""

    __slots__ = _fields = ("factories", "closers", "generators", "engines", "plain")

    def __init__(self, factories: dict[str, Kind] | None = None,
                 closers: dict[str, frozenset[int]] | None = None,
                 generators: set[str] | None = None, engines: set[str] | None = None,
                 plain: set[str] | None = None) -> None:
        self.factories = {} if factories is None else factories
        self.closers = {} if closers is None else closers  # by the called name
        self.generators = set() if generators is None else generators
        self.engines = set() if engines is None else engines
        self.plain = set() if plain is None else plain  # project functions, not generators

    def __bool__(self) -> bool:
        """Does it change what the rules see (beyond PD211's plain functions)?"""
        return bool(self.factories or self.closers or self.generators or self.engines)

    def names(self) -> set[str]:
        """The last part of every spelling: what the indexer must keep calls of."""
        out = set()
        for key in (*self.factories, *self.closers, *self.generators, *self.engines):
            out.add(key.rsplit(".", 1)[-1])
        return out
