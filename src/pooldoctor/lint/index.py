"""What one module offers the rest of the run, and what a module receives from the others.

A ``Summary`` is small and picklable: it travels from the process that checked a file back to
the one that joins the project (``project.py``); ``Externals`` goes the other way, to the second
look at the files that use a factory, closer or generator of another module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .issues import Kind


@dataclass
class Summary:
    """The top-level functions of one module, as seen from other modules."""

    module: str  # dotted name, from the __init__.py files above it
    factories: dict[str, Kind] = field(default_factory=dict)  # name -> what it returns
    # name -> for each return: (candidate absolute origins of the called function, tuple slot)
    pending: dict[str, list[tuple[tuple[str, ...], int]]] = field(default_factory=dict)
    closers: dict[str, frozenset[int]] = field(default_factory=dict)  # name -> closed params
    generators: set[str] = field(default_factory=set)  # generators with clean-up after yield
    engines: set[str] = field(default_factory=set)  # return a new engine on every call
    functions: set[str] = field(default_factory=set)  # every top-level def
    aliases: dict[str, str] = field(default_factory=dict)  # imported name -> absolute origin
    stars: list[str] = field(default_factory=list)  # modules imported with `*`
    classes: dict[str, dict[str, Kind]] = field(default_factory=dict)  # class -> factory methods
    params: dict[str, list[str]] = field(default_factory=dict)  # function -> positional params
    # calls of other modules' functions with a function as argument (values.passed_factories)
    passes: list[tuple[tuple[str, ...], int | str, tuple[str, ...]]] = field(
        default_factory=list)


@dataclass
class Externals:
    """Names of other modules of the run that one module uses, keyed by their local spelling
    (``get_dbconn``, ``database.get_dbconn``)."""

    factories: dict[str, Kind] = field(default_factory=dict)
    closers: dict[str, frozenset[int]] = field(default_factory=dict)  # by the called name
    generators: set[str] = field(default_factory=set)
    engines: set[str] = field(default_factory=set)
    plain: set[str] = field(default_factory=set)  # project functions that are not generators
    classes: dict[str, dict[str, Kind]] = field(default_factory=dict)  # class -> factory methods
    # (function of this module, parameter) -> the factory other modules pass to it
    params: dict[tuple[str, str], Kind] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """Does it change what the rules see (beyond PD211's plain functions)?"""
        return bool(self.factories or self.closers or self.generators or self.engines
                    or self.classes or self.params)

    def names(self) -> set[str]:
        """The last part of every spelling: what the indexer must keep calls of."""
        out = set()
        for key in (*self.factories, *self.closers, *self.generators, *self.engines):
            out.add(key.rsplit(".", 1)[-1])
        for methods in self.classes.values():
            out.update(methods)
        out.update(param for _, param in self.params)
        return out
