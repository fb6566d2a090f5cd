"""What one module offers the rest of the run, and what a module receives from the others.

A ``Summary`` is small and picklable: it travels from the process that checked a file back to
the one that joins the project (``project.py``); ``Externals`` goes the other way, to the second
look at the files that use a factory, closer or generator of another module.
"""

from __future__ import annotations

from .issues import Kind


class Summary:
    """The top-level functions of one module, as seen from other modules (a plain class, not a
    dataclass: a one-file run imports it and pays for every generated method)."""

    def __init__(self, module: str) -> None:
        self.module = module  # dotted name, from the __init__.py files above it
        self.factories: dict[str, Kind] = {}  # name -> what it returns
        # name -> for each return: (candidate absolute origins of the called function, slot)
        self.pending: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        self.closers: dict[str, frozenset[int]] = {}  # name -> closed params
        self.generators: set[str] = set()  # generators with clean-up after yield
        self.engines: set[str] = set()  # return a new engine on every call
        self.functions: set[str] = set()  # every top-level def
        self.aliases: dict[str, str] = {}  # imported name -> absolute origin
        self.stars: list[str] = []  # modules imported with `*`
        self.classes: dict[str, dict[str, Kind]] = {}  # class -> its factory methods
        # class -> methods that keep the resource they open on self and return it (selfheld.py)
        self.owned: dict[str, dict[str, Kind]] = {}
        self.params: dict[str, list[str]] = {}  # function -> positional parameters
        # calls of other modules' functions with a function as argument (values.py)
        self.passes: list[tuple[tuple[str, ...], int | str, tuple[str, ...]]] = []


class Externals:
    """Names of other modules of the run that one module uses, keyed by their local spelling
    (``get_dbconn``, ``database.get_dbconn``)."""

    def __init__(self) -> None:
        self.factories: dict[str, Kind] = {}
        self.closers: dict[str, frozenset[int]] = {}  # by the called name
        self.generators: set[str] = set()
        self.engines: set[str] = set()
        self.plain: set[str] = set()  # project functions that are not generators
        self.classes: dict[str, dict[str, Kind]] = {}  # class -> its factory methods
        self.owned: dict[str, dict[str, Kind]] = {}  # class -> its owning methods
        # (function of this module, parameter) -> the factory other modules pass to it
        self.params: dict[tuple[str, str], Kind] = {}

    def __bool__(self) -> bool:
        """Does it change what the rules see (beyond PD211's plain functions)?"""
        return bool(self.factories or self.closers or self.generators or self.engines
                    or self.classes or self.owned or self.params)

    def names(self) -> set[str]:
        """The last part of every spelling: what the indexer must keep calls of."""
        out = set()
        for key in (*self.factories, *self.closers, *self.generators, *self.engines):
            out.add(key.rsplit(".", 1)[-1])
        for methods in (*self.classes.values(), *self.owned.values()):
            out.update(methods)
        out.update(param for _, param in self.params)
        return out
